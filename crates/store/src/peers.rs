//! The door for what peers send: packs stored tagged with their origin,
//! with their sequence number for de-duplication and an audit entry each.
//!
//! Pushes are taken in by batches, in one transaction (one commit, one
//! disk flush, for all the pushes that arrived meanwhile). The records of
//! a batch's pushes from one peer are first merged into one pack, so that a
//! day's chunk is rewritten once, not once per push. If that merged pack
//! is refused, each push is tried alone, so that one bad push cannot refuse
//! the others. A refused pack writes nothing (see `ingest::apply`), so the
//! transaction goes on safely after a refusal.

use std::collections::HashSet;

use senml::Record;

use crate::db::Db;
use crate::db::db_stream_by_id;
use crate::error::{Error, Result};
use crate::ingest::{self, StreamBatch};
use crate::model::{Metadata, parse_duration};
use crate::{Store, Time, audit, federation};

/// A push taken in from a peer, as [`Store::ingest_from_peers`] saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Stored: this many points.
    Stored(u64),
    /// Taken in before (a re-sent push): nothing was written again.
    Duplicate,
}

/// Where a pack received from a peer comes from, and under what terms.
#[derive(Debug, Clone, Copy)]
pub struct PeerPack<'a> {
    /// The peer's bare JID, as the XMPP servers authenticated it.
    pub peer: &'a str,
    /// The sender's sequence number of the push, if it is a push.
    pub seq: Option<i64>,
    /// The sender's grant it comes under.
    pub grant: i64,
    /// How long the sender lets this node keep the data.
    pub retention: Option<&'a str>,
    /// SHA-256 of the payload, hex, for the audit trail.
    pub payload_hash: &'a str,
    /// Metadata the peer sent, by stream name.
    pub metadata: &'a [(String, Metadata)],
}

impl PeerPack<'_> {
    fn check(&self) -> Result<()> {
        crate::check_bare_jid(self.peer)?;
        if let Some(retention) = self.retention {
            parse_duration(retention).map_err(|e| Error::Invalid(format!("retention: {e}")))?;
        }
        Ok(())
    }
}

impl Store {
    /// Stores a pack received from a peer, tagged with its origin, and
    /// records it in the audit trail, in one transaction. A push whose
    /// sequence number was taken in before is not stored again.
    pub fn ingest_from_peer(
        &self,
        records: &[(usize, Record)],
        from: PeerPack<'_>,
    ) -> Result<Received> {
        self.ingest_from_peers(&[(records, from)])?
            .pop()
            .unwrap_or(Ok(Received::Duplicate))
    }

    /// Stores packs received from peers in one transaction: one outcome per
    /// pack, in order. An `Err` outside means the store failed and nothing
    /// was stored; an `Err` inside refuses that pack alone.
    pub fn ingest_from_peers(
        &self,
        packs: &[(&[(usize, Record)], PeerPack<'_>)],
    ) -> Result<Vec<Result<Received>>> {
        let now = Time::now().as_micros();
        let tz = self.inner.timezone.clone();
        let checked: Vec<Result<()>> = packs.iter().map(|(_, from)| from.check()).collect();
        self.write(|db| {
            let mut outcomes: Vec<Option<Result<Received>>> = Vec::with_capacity(packs.len());
            let mut seen = HashSet::new();
            for ((_, from), check) in packs.iter().zip(&checked) {
                outcomes.push(match check {
                    Err(e) => Some(Err(Error::Invalid(e.to_string()))),
                    Ok(()) => match from.seq {
                        Some(seq) if !seen.insert((from.peer, seq)) => {
                            Some(Ok(Received::Duplicate))
                        }
                        Some(seq) if federation::was_received(db, from.peer, seq)? => {
                            Some(Ok(Received::Duplicate))
                        }
                        _ => None,
                    },
                });
            }
            // The packs still to store, by peer: first all together.
            let mut peers: Vec<&str> = Vec::new();
            for (i, (_, from)) in packs.iter().enumerate() {
                if outcomes[i].is_none() && !peers.contains(&from.peer) {
                    peers.push(from.peer);
                }
            }
            for peer in peers {
                let todo: Vec<usize> = (0..packs.len())
                    .filter(|&i| outcomes[i].is_none() && packs[i].1.peer == peer)
                    .collect();
                if todo.len() > 1 {
                    let merged: Vec<(usize, Record)> = todo
                        .iter()
                        .flat_map(|&i| packs[i].0.iter().cloned())
                        .collect();
                    if let Ok(mut batches) = ingest::prepare(&merged)
                        && apply(db, &mut batches, peer, now, &tz).is_ok()
                    {
                        for &i in &todo {
                            let written = packs[i].0.len() as u64;
                            record(db, packs[i].0, &packs[i].1, written, now)?;
                            outcomes[i] = Some(Ok(Received::Stored(written)));
                        }
                        continue;
                    }
                }
                for &i in &todo {
                    let (records, from) = &packs[i];
                    let outcome = match ingest::prepare(records) {
                        Ok(mut batches) => match apply(db, &mut batches, peer, now, &tz) {
                            Ok(written) => {
                                record(db, records, from, written, now)?;
                                Ok(Received::Stored(written))
                            }
                            Err(e) if e.is_caller_error() => Err(e),
                            Err(e) => return Err(e),
                        },
                        Err(e) => Err(e),
                    };
                    outcomes[i] = Some(outcome);
                }
            }
            Ok(outcomes
                .into_iter()
                .map(|o| o.unwrap_or(Ok(Received::Duplicate)))
                .collect())
        })
    }

    /// Deletes every stream received from `peer` under its grant `grant`
    /// (the peer revoked it); returns the points deleted.
    pub fn erase_from_peer(&self, peer: &str, grant: i64) -> Result<u64> {
        let now = Time::now().as_micros();
        self.write(|db| {
            let mut deleted = 0;
            let mut names = Vec::new();
            for id in federation::received_streams(db, peer, grant)? {
                if let Some((name, _)) = db_stream_by_id(db, id)? {
                    names.push(name);
                }
                deleted += federation::delete_stream(db, id)?;
            }
            let detail = serde_json::json!({"grant": grant, "streams": names, "records": deleted});
            audit::append(db, now, "erased", Some(peer), &detail.to_string())?;
            Ok(deleted)
        })
    }
}

fn apply(
    db: &mut dyn Db,
    batches: &mut [StreamBatch],
    peer: &str,
    now: i64,
    tz: &jiff::tz::TimeZone,
) -> Result<u64> {
    Ok(ingest::apply(db, batches, Some(peer), Some(peer), tz, now)?.written)
}

/// What a stored pack leaves behind: its sequence number, the streams it
/// came into under its grant, their metadata and retention, an audit entry.
fn record(
    db: &mut dyn Db,
    records: &[(usize, Record)],
    from: &PeerPack<'_>,
    written: u64,
    now: i64,
) -> Result<()> {
    if let Some(seq) = from.seq {
        federation::note_received(db, from.peer, seq, now)?;
    }
    let mut names: Vec<&str> = records.iter().map(|(_, r)| &*r.name).collect();
    names.sort_unstable();
    names.dedup();
    for name in &names {
        let Some(head) = db.find_stream(name)? else {
            continue;
        };
        federation::note_received_stream(db, head.id, from.peer, from.grant)?;
        let Some((_, info)) = db.stream(name)? else {
            continue;
        };
        // The peer's description, and its retention, which the purge enforces.
        let mut metadata = match from.metadata.iter().find(|(n, _)| n == name) {
            Some((_, m)) if m.check().is_ok() => m.clone(),
            _ => info.metadata.clone(),
        };
        metadata.retention = from
            .retention
            .map(str::to_owned)
            .or(info.metadata.retention.clone());
        if metadata != info.metadata {
            db.set_stream(head.id, &metadata, info.open)?;
        }
    }
    let detail = serde_json::json!({
        "seq": from.seq,
        "grant": from.grant,
        "streams": names,
        "records": written,
        "from": records.iter().map(|(_, r)| r.time).min(),
        "to": records.iter().map(|(_, r)| r.time).max(),
        "sha256": from.payload_hash,
    });
    audit::append(db, now, "received", Some(from.peer), &detail.to_string())
}
