//! Pushes received: stored by batches in one transaction each, then
//! acknowledged (fedwatt peers' together, others by XEP-0184 receipts).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use quoalise::{Element, PushHeader, RECEIPTS_NS};
use serde_json::json;
use store::{PeerPack, Received, Store};
use tokio::sync::mpsc;
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::Jid;
use tokio_xmpp::parsers::message::Message;

use super::dispatch::element;
use super::{BATCH, Shared};
use crate::handlers::hex_sha256;
use crate::meta;

/// How long a node holds its receipts for a fedwatt peer's pushes, to send
/// them together in one `<received seqs/>`. Only the sender's outbox waits
/// for them: the data is stored before.
const RECEIPT_DELAY: Duration = Duration::from_millis(100);

/// Sequence numbers in one `<received seqs/>`, at most.
const RECEIPTS_PER_MESSAGE: usize = 1024;

/// A push received, waiting to be stored.
pub(super) struct Incoming {
    pub(super) from: Jid,
    pub(super) peer: String,
    pub(super) id: Option<String>,
    pub(super) payload: Element,
    pub(super) header: Option<PushHeader>,
}

/// A receipt (XEP-0184) for the message `id` from `to`.
pub(super) fn receipt(to: Jid, id: &str) -> Message {
    let mut m = Message::new(Some(to));
    m.payloads
        .push(element("received", RECEIPTS_NS, &[("id", id)]));
    m
}

/// Stores pushes by batches, then acknowledges each one stored (or refused
/// for good).
pub(super) async fn take_in(shared: Arc<Shared>, mut incoming: mpsc::Receiver<Incoming>) {
    while let Some(first) = incoming.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match incoming.try_recv() {
                Ok(i) => batch.push(i),
                Err(_) => break,
            }
        }
        let done = shared
            .blocking(move |store| {
                let acks = take_pushes(store, &batch);
                (batch, acks)
            })
            .await;
        let (batch, acks) = match done {
            Ok((batch, Ok(acks))) => (batch, acks),
            Ok((batch, Err(e))) => {
                // The store failed: no receipt, the peers send them again.
                tracing::error!("storing {} pushes: {e}", batch.len());
                continue;
            }
            Err(e) => {
                tracing::error!("storing pushes: {e}");
                continue;
            }
        };
        for (item, stored) in batch.into_iter().zip(acks) {
            if let Some(n) = stored {
                shared
                    .status
                    .pushes_received
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!("took in {n} points from {}", item.peer);
            }
            // A fedwatt peer's push (it has a header) is acknowledged with
            // others; any other with its own XEP-0184 receipt.
            if let Some(header) = &item.header {
                let _ = shared.stored.send((item.from, header.seq)).await;
            } else if let Some(id) = item.id {
                let _ = shared
                    .out
                    .send(Stanza::Message(receipt(item.from, &id)))
                    .await;
            }
        }
    }
}

/// Sends the receipts for fedwatt peers' pushes, each peer's together in
/// one `<received seqs/>` message, at most [`RECEIPT_DELAY`] after the
/// first was stored. Under load this halves the stanzas the servers carry;
/// a receipt lost on the way (or on shutdown) only means the push comes
/// again, and is dropped as a duplicate.
pub(super) async fn send_receipts(
    out: mpsc::Sender<Stanza>,
    mut stored: mpsc::Receiver<(Jid, i64)>,
) {
    let mut pending: HashMap<Jid, Vec<i64>> = HashMap::new();
    let mut due: Option<tokio::time::Instant> = None;
    loop {
        let flush_all = tokio::select! {
            got = stored.recv() => match got {
                Some((peer, seq)) => {
                    due.get_or_insert_with(|| tokio::time::Instant::now() + RECEIPT_DELAY);
                    let seqs = pending.entry(peer.clone()).or_default();
                    seqs.push(seq);
                    if seqs.len() >= RECEIPTS_PER_MESSAGE {
                        let seqs = pending.remove(&peer).unwrap_or_default();
                        if send_received(&out, peer, &seqs).await.is_err() {
                            return;
                        }
                    }
                    false
                }
                None => true,
            },
            _ = async { tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)).await },
                if due.is_some() => true,
        };
        if flush_all {
            due = None;
            for (peer, seqs) in pending.drain() {
                if send_received(&out, peer, &seqs).await.is_err() {
                    return;
                }
            }
            if stored.is_closed() && stored.is_empty() {
                return;
            }
        }
    }
}

async fn send_received(
    out: &mpsc::Sender<Stanza>,
    peer: Jid,
    seqs: &[i64],
) -> Result<(), mpsc::error::SendError<Stanza>> {
    let mut m = Message::new(Some(peer));
    m.payloads.push(quoalise::received_element(seqs));
    out.send(Stanza::Message(m)).await
}

/// A push parsed: its records, the metadata it carries, its payload's hash.
type Parsed = (
    Vec<(usize, senml::Record)>,
    Vec<(String, store::Metadata)>,
    String,
);

/// Reads a push, or says why it is refused.
fn parse_push(
    store: &Store,
    item: &Incoming,
    subscribed: &mut HashMap<String, Vec<String>>,
    now_s: f64,
) -> Result<Result<Parsed, String>, store::Error> {
    let data = match quoalise::parse_quoalise(&item.payload, now_s) {
        Ok(d) => d,
        Err(e) => return Ok(Err(e.to_string())),
    };
    if !subscribed.contains_key(&item.peer) {
        subscribed.insert(item.peer.clone(), store.remote_subscriptions(&item.peer)?);
    }
    let streams = &subscribed[&item.peer];
    let mut records = Vec::new();
    let mut metadata = Vec::new();
    for d in data {
        if let Some((_, r)) = d
            .records
            .iter()
            .find(|(_, r)| !streams.iter().any(|s| *s == *r.name))
        {
            return Ok(Err(format!(
                "this node did not subscribe to {} at {}",
                r.name, item.peer
            )));
        }
        if let Some((_, first)) = d.records.first() {
            metadata.push((first.name.to_string(), meta::from_quoalise(&d.meta)));
        }
        records.extend(d.records.into_iter().map(|(_, r)| r));
    }
    let hash = hex_sha256(String::from(&item.payload).as_bytes());
    Ok(Ok((
        records.into_iter().enumerate().collect(),
        metadata,
        hash,
    )))
}

/// Stores a batch of pushes in one transaction. For each: `Some(points)`
/// when stored (or a duplicate), `None` when refused for good (then
/// acknowledged all the same, so that the peer stops re-sending, with the
/// refusal in the audit trail). An `Err` means the store failed: nothing
/// is acknowledged.
fn take_pushes(store: &Store, batch: &[Incoming]) -> Result<Vec<Option<u64>>, store::Error> {
    let now_s = store::Time::now().as_secs_f64();
    let mut subscribed = HashMap::new();
    let mut refusals = Vec::new();
    let mut refuse = |item: &Incoming, why: String| {
        tracing::warn!("a push from {} is refused: {why}", item.peer);
        let seq = item.header.as_ref().map(|h| h.seq);
        refusals.push((item.peer.clone(), json!({"push": seq, "reason": why})));
    };
    // A push taken in before (sent again because its receipt was late or
    // lost) is acknowledged again without being read.
    let numbered: Vec<(&str, i64)> = batch
        .iter()
        .filter_map(|i| i.header.as_ref().map(|h| (i.peer.as_str(), h.seq)))
        .collect();
    let mut seen_before = store.received_before(&numbered)?.into_iter();
    let mut parsed = Vec::with_capacity(batch.len());
    let mut duplicates = Vec::with_capacity(batch.len());
    for item in batch {
        let duplicate = item.header.is_some() && seen_before.next() == Some(true);
        duplicates.push(duplicate);
        if duplicate {
            parsed.push(None);
            continue;
        }
        match parse_push(store, item, &mut subscribed, now_s)? {
            Ok(p) => parsed.push(Some(p)),
            Err(why) => {
                refuse(item, why);
                parsed.push(None);
            }
        }
    }
    let mut packs = Vec::new();
    let mut slots = Vec::new();
    for (i, (item, p)) in batch.iter().zip(&parsed).enumerate() {
        let Some((records, metadata, hash)) = p else {
            continue;
        };
        let header = item.header.as_ref();
        packs.push((
            records.as_slice(),
            PeerPack {
                peer: &item.peer,
                seq: header.map(|h| h.seq),
                grant: header.map_or(0, |h| h.grant),
                retention: header.and_then(|h| h.retention.as_deref()),
                payload_hash: hash,
                metadata,
            },
        ));
        slots.push(i);
    }
    let mut acks: Vec<Option<u64>> = duplicates
        .iter()
        .map(|&d| if d { Some(0) } else { None })
        .collect();
    if !packs.is_empty() {
        for (slot, outcome) in slots.into_iter().zip(store.ingest_from_peers(&packs)?) {
            match outcome {
                Ok(Received::Stored(n)) => acks[slot] = Some(n),
                Ok(Received::Duplicate) => acks[slot] = Some(0),
                Err(e) => refuse(&batch[slot], e.to_string()),
            }
        }
    }
    let entries: Vec<(&str, Option<&str>, serde_json::Value)> = refusals
        .iter()
        .map(|(peer, detail)| ("refused", Some(peer.as_str()), detail.clone()))
        .collect();
    store.audit(&entries)?;
    Ok(acks)
}
