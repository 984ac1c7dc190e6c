//! The outbox's sender: claims due pushes, builds them outside any write
//! transaction, audits them, and sends them, keeping at most [`WINDOW`]
//! unacknowledged; and the receipts that make room again.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use quoalise::{Element, HINTS_NS, PushHeader, RECEIPTS_NS};
use serde_json::json;
use store::{Push, PushKind, Store};
use tokio::sync::mpsc;
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::message::{Id, Message};

use super::{BATCH, Shared};
use crate::handlers::{self, hex_sha256};
use crate::meta;

/// Pushes sent and not yet acknowledged, at most: beyond, the sender waits
/// for receipts, so that a slow peer is not flooded.
const WINDOW: usize = 512;

/// How often the outbox is looked at without being woken (pushes queued by
/// another process, retries).
const OUTBOX_POLL: Duration = Duration::from_millis(500);

/// The pushes sent and awaiting their receipt, by sequence number: their
/// peer, and when they were sent (or when the peer last showed progress).
#[derive(Default)]
pub(super) struct InFlight(HashMap<i64, (String, Instant)>);

impl InFlight {
    /// Forgets pushes sent longer ago than their first retry delay: they
    /// come back due from the outbox.
    fn room(&mut self) -> usize {
        let horizon = Duration::from_micros(store::retry_delay(0) as u64);
        self.0.retain(|_, (_, sent)| sent.elapsed() < horizon);
        WINDOW.saturating_sub(self.0.len())
    }

    /// Forgets acknowledged pushes. The peer's later ones are still in its
    /// queue: their clock starts again (as their retry in the outbox, see
    /// [`Store::pushes_acknowledged`]).
    fn acknowledged(&mut self, receipts: &[(String, i64)]) {
        let mut last: HashMap<&str, i64> = HashMap::new();
        for (peer, seq) in receipts {
            self.0.remove(seq);
            let l = last.entry(peer).or_insert(*seq);
            *l = (*l).max(*seq);
        }
        let now = Instant::now();
        for (seq, (to, sent)) in self.0.iter_mut() {
            if last.get(to.as_str()).is_some_and(|l| seq > l) {
                *sent = now;
            }
        }
    }
}

/// Sends due pushes whenever woken (or every [`OUTBOX_POLL`]).
pub(super) async fn send_outbox(shared: Arc<Shared>) {
    loop {
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(OUTBOX_POLL) => {}
        }
        loop {
            if !shared.status.online.load(Ordering::Relaxed) {
                break;
            }
            let room = shared
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .room();
            if room == 0 {
                break;
            }
            let limit = room.min(128);
            let built = shared.blocking(move |store| build_due(store, limit)).await;
            let (messages, claimed) = match built {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => {
                    tracing::error!("reading the outbox: {e}");
                    break;
                }
                Err(e) => {
                    tracing::error!("reading the outbox: {e}");
                    break;
                }
            };
            {
                let mut in_flight = shared
                    .in_flight
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                for (seq, peer, _) in &messages {
                    in_flight.0.insert(*seq, (peer.clone(), Instant::now()));
                }
            }
            for (_, _, message) in messages {
                if shared.out.send(Stanza::Message(message)).await.is_err() {
                    return;
                }
                shared.status.pushes_sent.fetch_add(1, Ordering::Relaxed);
            }
            if claimed < limit {
                break;
            }
        }
    }
}

/// Records receipts by batches, and makes room for more pushes.
pub(super) async fn acknowledge(shared: Arc<Shared>, mut receipts: mpsc::Receiver<(String, i64)>) {
    while let Some(first) = receipts.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match receipts.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let done = shared
            .blocking(move |store| store.pushes_acknowledged(&batch).map(|_| batch))
            .await;
        match done {
            Ok(Ok(batch)) => {
                shared
                    .status
                    .receipts
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                shared
                    .in_flight
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .acknowledged(&batch);
                shared.wake.notify_one();
            }
            // The pushes stay in the outbox and are sent again: their next
            // receipt will be recorded.
            Ok(Err(e)) => tracing::error!("recording receipts: {e}"),
            Err(e) => tracing::error!("recording receipts: {e}"),
        }
    }
}

/// A push ready to go: its sequence number, its peer, its message.
type Outgoing = (i64, String, Message);

/// What to do with a claimed push.
enum Built {
    /// Send this message, and audit these facts.
    Send(Box<Message>, serde_json::Value),
    /// Do not send it, for this reason: it is dropped with its subscription.
    Drop(String),
}

/// Claims up to `limit` due pushes (a short transaction), builds their
/// messages, checking each against its grant now, on read connections and
/// outside any write transaction, then records their audit entries in
/// another short one. Returns the messages, and how many rows were claimed.
///
/// A store error while building leaves the claimed pushes to come back due
/// after their retry delay, as if they had been sent and lost.
fn build_due(store: &Store, limit: usize) -> Result<(Vec<Outgoing>, usize), store::Error> {
    let now = store::Time::now().as_micros();
    let pushes = store.claim_pushes(now, limit)?;
    let mut looked_up = LookedUp::default();
    let built = pushes
        .iter()
        .map(|push| build_push(store, &mut looked_up, push, now))
        .collect::<Result<Vec<_>, _>>()?;
    let mut sent = Vec::with_capacity(pushes.len());
    let mut dropped = Vec::new();
    let mut messages = Vec::with_capacity(pushes.len());
    for (push, built) in pushes.iter().zip(built) {
        match built {
            Built::Send(message, facts) => {
                sent.push((push, facts));
                messages.push((push.seq, push.peer.clone(), *message));
            }
            Built::Drop(why) => dropped.push((push, why)),
        }
    }
    let dropped: Vec<(&Push, &str)> = dropped.iter().map(|(p, why)| (*p, why.as_str())).collect();
    let may_go = store.pushes_built(&sent, &dropped)?;
    // Those revoked (or acknowledged) while they were built stay here.
    let mut may_go = may_go.into_iter();
    messages.retain(|_| may_go.next().unwrap_or(false));
    Ok((messages, pushes.len()))
}

fn push_message(push: &Push, payloads: Vec<Element>) -> Option<Message> {
    let to = BareJid::new(&push.peer).ok()?;
    let mut m = Message::new(Some(Jid::from(to)));
    m.id = Some(Id(format!("fw-{}", push.seq)));
    m.payloads = payloads;
    // Ask for a receipt, and for servers to keep it for an offline peer.
    m.payloads.push(Element::bare("request", RECEIPTS_NS));
    m.payloads.push(Element::bare("store", HINTS_NS));
    Some(m)
}

/// The grants and streams a batch of pushes needs, each read once: the
/// pushes of one busy stream share both. (A revocation meanwhile is caught
/// by [`Store::pushes_built`], which sends nothing whose row it took.)
#[derive(Default)]
struct LookedUp {
    grants: HashMap<i64, Option<store::Grant>>,
    streams: HashMap<String, Option<store::StreamInfo>>,
}

/// What `map` holds for `key`, read with `read` the first time.
fn once<K, Q, V, E>(
    map: &mut HashMap<K, V>,
    key: &Q,
    read: impl FnOnce() -> Result<V, E>,
) -> Result<V, E>
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: ToOwned<Owned = K> + std::hash::Hash + Eq + ?Sized,
    V: Clone,
{
    if let Some(value) = map.get(key) {
        return Ok(value.clone());
    }
    let value = read()?;
    map.insert(key.to_owned(), value.clone());
    Ok(value)
}

fn build_push(
    store: &Store,
    looked_up: &mut LookedUp,
    push: &Push,
    now: i64,
) -> Result<Built, store::Error> {
    let drop = |why: &str| Ok(Built::Drop(why.to_owned()));
    match &push.kind {
        PushKind::Revoked => {
            let Some(m) = push_message(push, vec![quoalise::revoked_element(push.grant, push.seq)])
            else {
                return drop("the grantee is not a valid JID");
            };
            let facts =
                json!({"seq": push.seq, "revoked": push.grant, "attempt": push.attempts + 1});
            Ok(Built::Send(Box::new(m), facts))
        }
        PushKind::Data { stream, from, to } => {
            let grant = once(&mut looked_up.grants, &push.grant, || {
                store.grant(push.grant)
            })?;
            let info = once(&mut looked_up.streams, stream, || store.stream(stream))?;
            let (Some(grant), Some(info)) = (grant, info) else {
                return drop("its grant or its stream is gone");
            };
            if !grant.allows(stream, now) || info.origin.is_some() {
                return drop("its grant is no longer in force");
            }
            let records = match handlers::history(store, &info, &grant, *from, *to) {
                Ok((records, _)) if records.is_empty() => return drop("its points are gone"),
                Ok((records, _)) => records,
                Err(refusal) => return drop(&refusal.text),
            };
            let count = records.len();
            let mut meta = meta::to_quoalise(&info);
            if let Some(every) = &grant.min_aggregation {
                meta.aggregate = Some("average".into());
                meta.sampling_interval = Some(every.clone());
            }
            let encoding = match push.encoding {
                store::Encoding::Cbor => quoalise::Encoding::Cbor,
                store::Encoding::Xml => quoalise::Encoding::Xml,
            };
            let data = match quoalise::data_element(&meta, records, encoding) {
                Ok(d) => d,
                Err(e) => return drop(&e.to_string()),
            };
            let payload = quoalise::quoalise_element(vec![data]);
            let hash = hex_sha256(String::from(&payload).as_bytes());
            let header = PushHeader {
                seq: push.seq,
                grant: grant.id,
                retention: grant.retention.clone(),
            };
            let Some(m) = push_message(push, vec![payload, header.to_element()]) else {
                return drop("the subscriber is not a valid JID");
            };
            let facts = json!({
                "seq": push.seq, "stream": stream, "grant": grant.id, "records": count,
                "sha256": hash, "attempt": push.attempts + 1,
            });
            Ok(Built::Send(Box::new(m), facts))
        }
    }
}
