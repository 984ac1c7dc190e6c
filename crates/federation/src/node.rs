//! The node's XMPP session: answers commands, sends the outbox, takes in
//! pushes, receipts and revocation notices.
//!
//! One task owns the XMPP client and does nothing slow: each incoming
//! stanza is served on its own task (the store on a blocking thread) and
//! its answer comes back through a channel; the outbox sender is another
//! task, woken by the store when a commit queues pushes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use quoalise::{Element, FEDWATT_NS, HINTS_NS, NS, PushHeader, RECEIPTS_NS};
use serde_json::json;
use store::{PeerPack, Push, PushKind, Received, SigningKey, Store};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::{Id, Message};
use tokio_xmpp::parsers::presence::Presence;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use tokio_xmpp::xmlstream::Timeouts;
use tokio_xmpp::{Client, Event, Stanza};

use crate::connect::Connector;
use crate::handlers::{self, hex_sha256};
use crate::{Error, XmppConfig, meta, parse_full_jid};

/// Pushes sent and not yet acknowledged, at most: beyond, the sender waits
/// for receipts, so that a slow peer is not flooded.
const WINDOW: usize = 512;

/// Incoming stanzas served at once, at most.
const CONCURRENT_STANZAS: usize = 64;

/// How often the outbox is looked at without being woken (pushes queued by
/// another process, retries).
const OUTBOX_POLL: Duration = Duration::from_millis(500);

/// De-duplication entries are kept this long: far longer than any retry.
const INBOX_KEEP: i64 = 30 * 24 * 3600 * 1_000_000;

const DISCO_INFO_NS: &str = "http://jabber.org/protocol/disco#info";
const DISCO_ITEMS_NS: &str = "http://jabber.org/protocol/disco#items";
const PING_NS: &str = "urn:xmpp:ping";

/// What the federation is doing, for `/healthz` and `/metrics`.
#[derive(Debug, Default)]
pub struct Status {
    /// Connected and authenticated.
    pub online: AtomicBool,
    /// Pushes sent (retries included).
    pub pushes_sent: AtomicU64,
    /// Receipts received for pushes.
    pub receipts: AtomicU64,
    /// Pushes taken in from peers.
    pub pushes_received: AtomicU64,
    /// Commands served.
    pub commands_served: AtomicU64,
    /// Commands refused.
    pub commands_refused: AtomicU64,
}

/// The pushes sent and awaiting their receipt, by sequence number.
#[derive(Default)]
struct InFlight(HashMap<i64, Instant>);

impl InFlight {
    /// Forgets pushes sent longer ago than their first retry delay: they
    /// come back due from the outbox.
    fn room(&mut self) -> usize {
        let horizon = Duration::from_micros(store::retry_delay(0) as u64);
        self.0.retain(|_, sent| sent.elapsed() < horizon);
        WINDOW.saturating_sub(self.0.len())
    }
}

struct Shared {
    store: Store,
    status: Arc<Status>,
    out: mpsc::Sender<Stanza>,
    wake: Arc<Notify>,
    in_flight: Mutex<InFlight>,
}

/// Runs the node's federation until `shutdown` turns true, signing an audit
/// checkpoint with `key` every `checkpoint_every` (when the trail grew) and
/// at the end.
pub async fn run(
    config: XmppConfig,
    store: Store,
    key: SigningKey,
    checkpoint_every: Duration,
    status: Arc<Status>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), Error> {
    let (_, full) = parse_full_jid(&config.jid)?;
    let connector = Connector::new(
        full.domain().as_str(),
        config.address.as_deref(),
        config.ca_file.as_deref(),
    )?;
    let mut client = Client::new_with_connector(
        full.clone(),
        config.password.clone(),
        connector,
        Timeouts::default(),
    );
    let (out, mut outgoing) = mpsc::channel::<Stanza>(4 * WINDOW);
    let wake = Arc::new(Notify::new());
    {
        let wake = wake.clone();
        store.on_outbox(move || wake.notify_one());
    }
    let shared = Arc::new(Shared {
        store,
        status,
        out,
        wake,
        in_flight: Mutex::new(InFlight::default()),
    });
    let sender = tokio::spawn(send_outbox(shared.clone()));
    let stanzas = Arc::new(Semaphore::new(CONCURRENT_STANZAS));
    let mut checkpoint = tokio::time::interval(checkpoint_every);
    let mut prune = tokio::time::interval(Duration::from_secs(3600));
    tracing::info!("XMPP: connecting as {full}");
    loop {
        tokio::select! {
            event = client.next() => match event {
                None => break,
                Some(Event::Online { bound_jid, resumed, .. }) => {
                    tracing::info!("XMPP: online as {bound_jid}{}", if resumed { " (session resumed)" } else { "" });
                    if !resumed {
                        // Available, so that pushes to our bare JID and the
                        // messages kept offline for us are delivered.
                        let presence = Presence::available();
                        if let Err(e) = client.send_stanza(presence.into()).await {
                            tracing::warn!("XMPP: cannot send presence: {e}");
                        }
                    }
                    shared.status.online.store(true, Ordering::Relaxed);
                    shared.wake.notify_one();
                }
                Some(Event::Disconnected(e)) => {
                    tracing::warn!("XMPP: disconnected ({e}); reconnecting");
                    shared.status.online.store(false, Ordering::Relaxed);
                }
                Some(Event::Stanza(stanza)) => {
                    let Ok(permit) = stanzas.clone().acquire_owned().await else { break };
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        if let Some(answer) = handle(&shared, stanza).await {
                            let _ = shared.out.send(answer).await;
                        }
                        drop(permit);
                    });
                }
            },
            Some(stanza) = outgoing.recv() => {
                if let Err(e) = client.send_stanza(stanza).await {
                    tracing::warn!("XMPP: a stanza could not be sent: {e}");
                }
            }
            _ = checkpoint.tick() => {
                let (store, key) = (shared.store.clone(), key.clone());
                match tokio::task::spawn_blocking(move || store.audit_checkpoint(&key)).await {
                    Ok(Ok(Some(seq))) => tracing::debug!("audit checkpoint signed at entry {seq}"),
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => tracing::error!("audit checkpoint: {e}"),
                    Err(e) => tracing::error!("audit checkpoint: {e}"),
                }
            }
            _ = prune.tick() => {
                let store = shared.store.clone();
                let before = store::now_micros() - INBOX_KEEP;
                let _ = tokio::task::spawn_blocking(move || store.prune_inbox(before)).await;
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    sender.abort();
    shared.status.online.store(false, Ordering::Relaxed);
    let store = shared.store.clone();
    let _ = tokio::task::spawn_blocking(move || store.audit_checkpoint(&key)).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), client.send_end()).await;
    Ok(())
}

/// Serves one incoming stanza; returns the answer to send, if any.
async fn handle(shared: &Arc<Shared>, stanza: Stanza) -> Option<Stanza> {
    match stanza {
        Stanza::Iq(iq) => handle_iq(shared, iq).await.map(Stanza::Iq),
        Stanza::Message(message) => handle_message(shared, message).await.map(Stanza::Message),
        Stanza::Presence(_) => None,
    }
}

fn iq_error(
    to: Option<Jid>,
    id: String,
    type_: ErrorType,
    condition: DefinedCondition,
    text: &str,
) -> Iq {
    Iq::Error {
        from: None,
        to,
        id,
        error: StanzaError::new(type_, condition, "en", text),
        payload: None,
    }
}

async fn handle_iq(shared: &Arc<Shared>, iq: Iq) -> Option<Iq> {
    match iq {
        Iq::Set {
            from, id, payload, ..
        } => {
            let Some(peer) = from.as_ref().map(|f| f.to_bare().to_string()) else {
                return Some(iq_error(
                    None,
                    id,
                    ErrorType::Cancel,
                    DefinedCondition::NotAllowed,
                    "no sender",
                ));
            };
            if !payload.is("command", quoalise::COMMANDS_NS) {
                return Some(iq_error(
                    from,
                    id,
                    ErrorType::Cancel,
                    DefinedCondition::ServiceUnavailable,
                    "this node answers ad-hoc commands (get_history, subscribe, unsubscribe, catalogue)",
                ));
            }
            let store = shared.store.clone();
            let served =
                tokio::task::spawn_blocking(move || handlers::serve(&store, &peer, &payload)).await;
            Some(match served {
                Ok(Ok(answer)) => {
                    shared
                        .status
                        .commands_served
                        .fetch_add(1, Ordering::Relaxed);
                    Iq::Result {
                        from: None,
                        to: from,
                        id,
                        payload: Some(answer),
                    }
                }
                Ok(Err(refusal)) => {
                    shared
                        .status
                        .commands_refused
                        .fetch_add(1, Ordering::Relaxed);
                    Iq::Error {
                        from: None,
                        to: from,
                        id,
                        error: refusal.into_stanza_error(),
                        payload: None,
                    }
                }
                Err(e) => {
                    tracing::error!("a command handler failed: {e}");
                    iq_error(
                        from,
                        id,
                        ErrorType::Wait,
                        DefinedCondition::InternalServerError,
                        "the node failed",
                    )
                }
            })
        }
        Iq::Get {
            from, id, payload, ..
        } => {
            if payload.is("ping", PING_NS) {
                return Some(Iq::Result {
                    from: None,
                    to: from,
                    id,
                    payload: None,
                });
            }
            if payload.is("query", DISCO_INFO_NS) {
                return Some(Iq::Result {
                    from: None,
                    to: from,
                    id,
                    payload: Some(disco_info(payload.attr("node"))),
                });
            }
            if payload.is("query", DISCO_ITEMS_NS)
                && payload.attr("node") == Some(quoalise::COMMANDS_NS)
            {
                return Some(Iq::Result {
                    from: None,
                    to: from,
                    id,
                    payload: Some(command_items()),
                });
            }
            Some(iq_error(
                from,
                id,
                ErrorType::Cancel,
                DefinedCondition::ServiceUnavailable,
                "not served here",
            ))
        }
        Iq::Result { .. } | Iq::Error { .. } => None,
    }
}

fn element(name: &str, ns: &str, attrs: &[(&str, &str)]) -> Element {
    let mut el = Element::bare(name, ns);
    for (k, v) in attrs {
        if let Ok(name) = tokio_xmpp::minidom::rxml::NcName::try_from(*k) {
            el.set_attr(tokio_xmpp::minidom::rxml::Namespace::NONE, name, *v);
        }
    }
    el
}

fn disco_info(node: Option<&str>) -> Element {
    let mut query = element("query", DISCO_INFO_NS, &[]);
    if let Some(node) = node {
        query = element("query", DISCO_INFO_NS, &[("node", node)]);
    }
    query.append_child(element(
        "identity",
        DISCO_INFO_NS,
        &[
            ("category", "client"),
            ("type", "bot"),
            ("name", "fedwatt node"),
        ],
    ));
    for feature in [
        DISCO_INFO_NS,
        quoalise::COMMANDS_NS,
        NS,
        FEDWATT_NS,
        RECEIPTS_NS,
        PING_NS,
    ] {
        query.append_child(element("feature", DISCO_INFO_NS, &[("var", feature)]));
    }
    query
}

/// The commands, for XEP-0050 discovery. Items name no `jid`: a requester
/// sends the command to the address it asked.
fn command_items() -> Element {
    let mut query = element("query", DISCO_ITEMS_NS, &[("node", quoalise::COMMANDS_NS)]);
    for (node, name) in [
        ("get_history", "Records of a stream in a time range"),
        ("subscribe", "Push a stream's new records"),
        ("unsubscribe", "Stop pushing a stream"),
        (quoalise::CATALOGUE_NODE, "Streams you may receive"),
    ] {
        query.append_child(element(
            "item",
            DISCO_ITEMS_NS,
            &[("node", node), ("name", name)],
        ));
    }
    query
}

/// A receipt (XEP-0184) for the message `id` from `to`.
fn receipt(to: Jid, id: &str) -> Message {
    let mut m = Message::new(Some(to));
    m.payloads
        .push(element("received", RECEIPTS_NS, &[("id", id)]));
    m
}

async fn handle_message(shared: &Arc<Shared>, message: Message) -> Option<Message> {
    let from = message.from.clone()?;
    let peer = from.to_bare().to_string();
    // A receipt for one of our pushes.
    if let Some(received) = message
        .payloads
        .iter()
        .find(|p| p.is("received", RECEIPTS_NS))
    {
        let seq = received
            .attr("id")
            .and_then(|id| id.strip_prefix("fw-"))
            .and_then(|s| s.parse::<i64>().ok())?;
        let store = shared.store.clone();
        let known = tokio::task::spawn_blocking(move || store.push_acknowledged(&peer, seq)).await;
        match known {
            Ok(Ok(_)) => {
                shared.status.receipts.fetch_add(1, Ordering::Relaxed);
                shared
                    .in_flight
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
                    .remove(&seq);
                shared.wake.notify_one();
            }
            Ok(Err(e)) => tracing::error!("recording the receipt of push {seq}: {e}"),
            Err(e) => tracing::error!("recording the receipt of push {seq}: {e}"),
        }
        return None;
    }
    let id = message.id.as_ref().map(|i| i.0.clone());
    // A revocation notice: erase what came under that grant.
    if let Some(revoked) = message
        .payloads
        .iter()
        .find(|p| p.is("revoked", FEDWATT_NS))
    {
        let (grant, _) = match quoalise::parse_revoked(revoked) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("a revocation notice from {peer} is malformed: {e}");
                return None;
            }
        };
        let store = shared.store.clone();
        let who = peer.clone();
        match tokio::task::spawn_blocking(move || store.erase_from_peer(&who, grant)).await {
            Ok(Ok(n)) => tracing::info!(
                "{peer} revoked its grant {grant}: {n} points received under it deleted"
            ),
            Ok(Err(e)) => {
                tracing::error!("erasing what {peer} sent under grant {grant}: {e}");
                return None; // no receipt: the notice comes again
            }
            Err(e) => {
                tracing::error!("erasing what {peer} sent under grant {grant}: {e}");
                return None;
            }
        }
        return id.map(|id| receipt(from, &id));
    }
    // A push of data.
    let payload = message
        .payloads
        .iter()
        .find(|p| p.is("quoalise", NS))?
        .clone();
    let header = match message
        .payloads
        .iter()
        .find(|p| p.is("push", FEDWATT_NS))
        .map(PushHeader::parse)
    {
        Some(Ok(h)) => Some(h),
        Some(Err(e)) => {
            tracing::warn!("a push from {peer} has a malformed header: {e}");
            return None;
        }
        None => None,
    };
    let store = shared.store.clone();
    let who = peer.clone();
    let outcome =
        tokio::task::spawn_blocking(move || take_push(&store, &who, &payload, header.as_ref()))
            .await;
    match outcome {
        Ok(Ok(Some(n))) => {
            shared
                .status
                .pushes_received
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!("took in {n} points from {peer}");
            id.map(|id| receipt(from, &id))
        }
        // Refused for good (not subscribed, invalid data): acknowledged so
        // that the peer stops re-sending; the refusal is in the audit trail.
        Ok(Ok(None)) => id.map(|id| receipt(from, &id)),
        Ok(Err(e)) => {
            // The store failed: no receipt, the peer sends it again.
            tracing::error!("storing a push from {peer}: {e}");
            None
        }
        Err(e) => {
            tracing::error!("storing a push from {peer}: {e}");
            None
        }
    }
}

/// Stores a push from `peer`: `Some(points)` when stored (or a duplicate),
/// `None` when refused for good.
fn take_push(
    store: &Store,
    peer: &str,
    payload: &Element,
    header: Option<&PushHeader>,
) -> Result<Option<u64>, store::Error> {
    let now_s = store::now_micros() as f64 / 1e6;
    let refuse = |why: String| -> Result<Option<u64>, store::Error> {
        tracing::warn!("a push from {peer} is refused: {why}");
        store.audit(&[(
            "refused",
            Some(peer),
            json!({"push": header.map(|h| h.seq), "reason": why}),
        )])?;
        Ok(None)
    };
    let data = match quoalise::parse_quoalise(payload, now_s) {
        Ok(d) => d,
        Err(e) => return refuse(e.to_string()),
    };
    let subscribed = store.remote_subscriptions(peer)?;
    let mut records = Vec::new();
    let mut metadata = Vec::new();
    for d in data {
        for (_, r) in &d.records {
            if !subscribed.iter().any(|s| *s == *r.name) {
                return refuse(format!(
                    "this node did not subscribe to {} at {peer}",
                    r.name
                ));
            }
        }
        if let Some((_, first)) = d.records.first() {
            metadata.push((first.name.to_string(), meta::from_quoalise(&d.meta)));
        }
        records.extend(d.records.into_iter().map(|(_, r)| r));
    }
    let indexed: Vec<(usize, senml::Record)> = records.into_iter().enumerate().collect();
    let hash = hex_sha256(String::from(payload).as_bytes());
    let pack = PeerPack {
        peer,
        seq: header.map(|h| h.seq),
        grant: header.map_or(0, |h| h.grant),
        retention: header.and_then(|h| h.retention.as_deref()),
        payload_hash: &hash,
        metadata: &metadata,
    };
    match store.ingest_from_peer(&indexed, pack) {
        Ok(Received::Stored(n)) => Ok(Some(n)),
        Ok(Received::Duplicate) => Ok(Some(0)),
        Err(e) if e.is_caller_error() => refuse(e.to_string()),
        Err(e) => Err(e),
    }
}

/// Sends due pushes whenever woken (or every [`OUTBOX_POLL`]).
async fn send_outbox(shared: Arc<Shared>) {
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
            let store = shared.store.clone();
            let limit = room.min(128);
            let built = tokio::task::spawn_blocking(move || build_due(&store, limit)).await;
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
                for (seq, _) in &messages {
                    in_flight.0.insert(*seq, Instant::now());
                }
            }
            for (_, message) in messages {
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

/// Claims up to `limit` due pushes and builds their messages, checking each
/// against its grant now; writes one audit entry per push sent. Returns the
/// messages and how many rows were claimed.
fn build_due(store: &Store, limit: usize) -> Result<(Vec<(i64, Message)>, usize), store::Error> {
    let now = store::now_micros();
    let pushes = store.claim_pushes(now, limit)?;
    let claimed = pushes.len();
    let mut messages = Vec::with_capacity(claimed);
    let mut audit = Vec::with_capacity(claimed);
    for push in pushes {
        if let Some((message, facts)) = build_push(store, &push, now)? {
            audit.push(("push", Some(push.peer.clone()), facts));
            messages.push((push.seq, message));
        }
    }
    let entries: Vec<(&str, Option<&str>, serde_json::Value)> = audit
        .iter()
        .map(|(k, p, f)| (*k, p.as_deref(), f.clone()))
        .collect();
    store.audit(&entries)?;
    Ok((messages, claimed))
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

fn build_push(
    store: &Store,
    push: &Push,
    now: i64,
) -> Result<Option<(Message, serde_json::Value)>, store::Error> {
    match &push.kind {
        PushKind::Revoked => {
            let Some(m) = push_message(push, vec![quoalise::revoked_element(push.grant, push.seq)])
            else {
                store.drop_push(push, "the grantee is not a valid JID")?;
                return Ok(None);
            };
            Ok(Some((
                m,
                json!({"seq": push.seq, "revoked": push.grant, "attempt": push.attempts + 1}),
            )))
        }
        PushKind::Data { stream, from, to } => {
            let grant = store.grant(push.grant)?;
            let info = store.stream(stream)?;
            let (Some(grant), Some(info)) = (grant, info) else {
                store.drop_push(push, "its grant or its stream is gone")?;
                return Ok(None);
            };
            if !grant.allows(stream, now) || info.origin.is_some() {
                store.drop_push(push, "its grant is no longer in force")?;
                return Ok(None);
            }
            let (records, _) = match handlers::history(store, &info, &grant, *from, *to) {
                Ok(r) => r,
                Err(refusal) => {
                    store.drop_push(push, &refusal.text)?;
                    return Ok(None);
                }
            };
            if records.is_empty() {
                store.drop_push(push, "its points are gone")?;
                return Ok(None);
            }
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
                Err(e) => {
                    store.drop_push(push, &e.to_string())?;
                    return Ok(None);
                }
            };
            let payload = quoalise::quoalise_element(vec![data]);
            let hash = hex_sha256(String::from(&payload).as_bytes());
            let header = PushHeader {
                seq: push.seq,
                grant: grant.id,
                retention: grant.retention.clone(),
            };
            let Some(m) = push_message(push, vec![payload, header.to_element()]) else {
                store.drop_push(push, "the subscriber is not a valid JID")?;
                return Ok(None);
            };
            Ok(Some((
                m,
                json!({
                    "seq": push.seq, "stream": stream, "grant": grant.id, "records": count,
                    "sha256": hash, "attempt": push.attempts + 1,
                }),
            )))
        }
    }
}
