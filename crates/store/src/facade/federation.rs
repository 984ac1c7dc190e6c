//! The federation's facade: grants, subscriptions, the outbox and the
//! inbox, this node's subscriptions at peers.

use crate::db::Db;
use crate::error::{Error, Result};
use crate::model::StreamInfo;
use crate::pool::locked;
use crate::{
    Durability, Encoding, Grant, NewGrant, Push, PushKind, Store, Subscription, Time, audit,
    check_bare_jid, federation, grants,
};

impl Store {
    /// Calls `listener` after every commit that queues pushes (in this
    /// process), so that the sender need not poll.
    pub fn on_outbox(&self, listener: impl Fn() + Send + Sync + 'static) {
        locked(&self.inner.outbox_listeners).push(Box::new(listener));
    }

    pub(crate) fn outbox_changed(&self) {
        for listener in locked(&self.inner.outbox_listeners).iter() {
            listener();
        }
    }

    /// Records a grant, with its audit entry.
    pub fn add_grant(&self, grant: &NewGrant) -> Result<Grant> {
        grant.check()?;
        let now = Time::now().as_micros();
        self.write(|db| {
            let g = grants::insert_grant(db, grant, now)?;
            let detail = serde_json::to_string(&g)
                .map_err(|e| Error::Internal(format!("grant {} as JSON: {e}", g.id)))?;
            audit::append(db, now, "grant", Some(&g.grantee), &detail)?;
            Ok(g)
        })
    }

    /// Every grant, revoked ones included, by number.
    pub fn grants(&self) -> Result<Vec<Grant>> {
        self.read(grants::grants)
    }

    /// Revokes a grant: its subscriptions end and its queued pushes are
    /// dropped in the same transaction, and a revocation notice is queued
    /// for its grantee.
    pub fn revoke_grant(&self, id: i64) -> Result<Grant> {
        let now = Time::now().as_micros();
        let grant = self.write(|db| {
            let g = grants::revoke(db, id, now)?;
            let detail = serde_json::json!({"grant": id});
            audit::append(db, now, "revoke", Some(&g.grantee), &detail.to_string())?;
            Ok(g)
        })?;
        self.outbox_changed();
        Ok(grant)
    }

    /// The first grant in force at `now` that lets `peer` receive `stream`;
    /// `None` for a stream received from a peer, which is never passed on.
    pub fn grant_for(&self, peer: &str, stream: &StreamInfo, now: Time) -> Result<Option<Grant>> {
        if stream.origin.is_some() {
            return Ok(None);
        }
        Ok(self
            .read(|db| grants::active_grants(db, peer, now.as_micros()))?
            .into_iter()
            .find(|g| g.streams.matches(&stream.name)))
    }

    /// The grant numbered `id`.
    pub fn grant(&self, id: i64) -> Result<Option<Grant>> {
        self.read(|db| grants::grant(db, id))
    }

    /// The node's own streams that `peer` may receive at `now`, each with
    /// the grant that allows it.
    pub fn granted_streams(&self, peer: &str, now: Time) -> Result<Vec<(StreamInfo, Grant)>> {
        self.read(|db| {
            let grants = grants::active_grants(db, peer, now.as_micros())?;
            if grants.is_empty() {
                return Ok(Vec::new());
            }
            Ok(db
                .streams(None)?
                .into_iter()
                .filter(|(_, s)| s.origin.is_none())
                .filter_map(|(_, s)| {
                    let g = grants.iter().find(|g| g.streams.matches(&s.name))?.clone();
                    Some((s, g))
                })
                .collect())
        })
    }

    /// Subscribes `peer` to a stream under a grant: the stream's new points
    /// are pushed to it from now on.
    pub fn subscribe(
        &self,
        peer: &str,
        stream: &str,
        grant: i64,
        encoding: Encoding,
    ) -> Result<()> {
        let now = Time::now().as_micros();
        self.write(|db| {
            let (id, _) = db
                .stream(stream)?
                .ok_or_else(|| Error::NotFound(format!("no stream named {stream:?}")))?;
            federation::subscribe(db, peer, id, grant, encoding, now)
        })
    }

    /// Ends a subscription; `false` if there was none.
    pub fn unsubscribe(&self, peer: &str, stream: &str) -> Result<bool> {
        self.write(|db| match db.stream(stream)? {
            Some((id, _)) => federation::unsubscribe(db, peer, id),
            None => Ok(false),
        })
    }

    /// Every subscription, by peer and stream.
    pub fn subscriptions(&self) -> Result<Vec<Subscription>> {
        self.read(federation::subscriptions)
    }

    /// Claims up to `limit` (at most 256) pushes due at `now` and schedules
    /// their retry (see [`retry_delay`](crate::retry_delay)), in one short transaction: the
    /// caller builds them outside it, then records what became of each with
    /// [`Store::pushes_built`] before sending any.
    pub fn claim_pushes(&self, now: i64, limit: usize) -> Result<Vec<Push>> {
        // Deferred: if a power cut loses this commit, the pushes are due
        // again at once, which is what they were before it.
        self.write_with(Durability::Deferred, |db| {
            federation::claim_due(db, now, limit)
        })
    }

    /// Records what became of pushes claimed with [`Store::claim_pushes`],
    /// in one transaction: an audit entry `push` with its facts for each
    /// one about to be `sent`, and for each one `dropped` (its grant ended,
    /// its points are gone…, with the reason) its deletion, the end of its
    /// subscription, and an audit entry `refused`. Call it before sending:
    /// a push is in the audit trail before it leaves.
    ///
    /// Returns, for each of `sent`, whether it may still go: one whose row
    /// left the outbox while it was built (its grant revoked, which drops
    /// the grant's queued pushes in the revocation's transaction, or an
    /// earlier attempt acknowledged) is neither audited nor to be sent: a
    /// push built while its grant was revoked does not leave. (One already
    /// handed to the XMPP stream when the revocation commits may still go,
    /// as it could before pushes were built outside the write lock.)
    pub fn pushes_built(
        &self,
        sent: &[(&Push, serde_json::Value)],
        dropped: &[(&Push, &str)],
    ) -> Result<Vec<bool>> {
        if sent.is_empty() && dropped.is_empty() {
            return Ok(Vec::new());
        }
        let now = Time::now().as_micros();
        // Deferred: commits are lost in order, so if a power cut loses this
        // one, it loses the receipts recorded after it too: the pushes are
        // still in the outbox, due again, and audited when sent again
        // (their receivers drop what they already have).
        self.write_with(Durability::Deferred, |db| {
            let seqs: Vec<i64> = sent.iter().map(|(push, _)| push.seq).collect();
            let queued = federation::queued(db, &seqs)?;
            let mut may_go = Vec::with_capacity(sent.len());
            for (push, facts) in sent {
                let still = queued.contains(&push.seq);
                if still {
                    audit::append(db, now, "push", Some(&push.peer), &facts.to_string())?;
                }
                may_go.push(still);
            }
            for (push, why) in dropped {
                drop_push(db, push, why, now)?;
            }
            Ok(may_go)
        })
    }

    /// Deletes pushes their peers acknowledged, with an audit entry each,
    /// in one transaction; for each, whether it was still waiting (a receipt
    /// counts only from the peer the push went to).
    ///
    /// A peer that acknowledges is taking in what it was sent, in order: the
    /// pushes sent to it after the last one it acknowledged are still in
    /// its queue, so their retry is put off by a first retry delay from
    /// now. Re-sending them would only lengthen the queue of a peer that is
    /// slow, not gone.
    pub fn pushes_acknowledged(&self, receipts: &[(String, i64)]) -> Result<Vec<bool>> {
        let now = Time::now().as_micros();
        let mut last_acknowledged: Vec<(&str, i64)> = Vec::new();
        for (peer, seq) in receipts {
            match last_acknowledged.iter_mut().find(|(p, _)| p == peer) {
                Some((_, last)) => *last = (*last).max(*seq),
                None => last_acknowledged.push((peer, *seq)),
            }
        }
        // Deferred: if a power cut loses this commit, the pushes are sent
        // again, acknowledged again, and recorded then.
        self.write_with(Durability::Deferred, |db| {
            let mut known = Vec::with_capacity(receipts.len());
            for (peer, seq) in receipts {
                let was = federation::delete_push(db, peer, *seq)?;
                if was {
                    let detail = serde_json::json!({"seq": seq});
                    audit::append(db, now, "receipt", Some(peer), &detail.to_string())?;
                }
                known.push(was);
            }
            for (peer, last) in &last_acknowledged {
                federation::postpone_retries(db, peer, *last, now + federation::retry_delay(0))?;
            }
            Ok(known)
        })
    }

    /// Which of these pushes (peer, sequence number) were taken in before,
    /// so that a re-sent push need not even be read.
    pub fn received_before(&self, pushes: &[(&str, i64)]) -> Result<Vec<bool>> {
        self.read(|db| {
            pushes
                .iter()
                .map(|(peer, seq)| federation::was_received(db, peer, *seq))
                .collect()
        })
    }

    /// [`Store::pushes_acknowledged`] for one receipt.
    pub fn push_acknowledged(&self, peer: &str, seq: i64) -> Result<bool> {
        Ok(self.pushes_acknowledged(&[(peer.to_owned(), seq)])?[0])
    }

    /// Records that this node subscribed to `stream` at `peer`, so that
    /// its pushes are taken in.
    pub fn add_remote_subscription(&self, peer: &str, stream: &str) -> Result<()> {
        check_bare_jid(peer)?;
        let now = Time::now().as_micros();
        self.write(|db| federation::add_remote_subscription(db, peer, stream, now))
    }

    /// Forgets a subscription this node made; `false` if there was none.
    pub fn remove_remote_subscription(&self, peer: &str, stream: &str) -> Result<bool> {
        self.write(|db| federation::remove_remote_subscription(db, peer, stream))
    }

    /// The streams this node subscribed to at `peer`.
    pub fn remote_subscriptions(&self, peer: &str) -> Result<Vec<String>> {
        self.read(|db| federation::remote_subscriptions(db, peer))
    }

    /// Pushes waiting for a receipt.
    pub fn outbox_len(&self) -> Result<u64> {
        self.read(federation::outbox_len)
    }

    /// Forgets de-duplication entries older than `before`.
    pub fn prune_inbox(&self, before: Time) -> Result<u64> {
        self.write(|db| federation::prune_inbox(db, before.as_micros()))
    }
}

/// Deletes a push that must not be sent, ends its subscription, and
/// audits why.
/// One already gone (its grant revoked meanwhile) is not refused again, nor
/// does it end a newer subscription.
fn drop_push(db: &mut dyn Db, push: &Push, why: &str, now: i64) -> Result<()> {
    if !federation::delete_push(db, &push.peer, push.seq)? {
        return Ok(());
    }
    if let PushKind::Data { stream, .. } = &push.kind
        && let Some((id, _)) = db.stream(stream)?
    {
        federation::unsubscribe_under(db, &push.peer, id, push.grant)?;
    }
    let detail = serde_json::json!({"seq": push.seq, "grant": push.grant, "reason": why});
    audit::append(db, now, "refused", Some(&push.peer), &detail.to_string())
}
