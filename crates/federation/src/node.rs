//! The node's XMPP session: answers commands, sends the outbox, takes in
//! pushes, receipts and revocation notices.
//!
//! One task owns the XMPP client and does nothing slow: each incoming
//! stanza is served on its own task (the store on a blocking thread) and
//! its answer comes back through a channel; the outbox sender is another
//! task, woken by the store when a commit queues pushes.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use quoalise::{Element, FEDWATT_NS, HINTS_NS, NS, PushHeader, RECEIPTS_NS};
use serde_json::json;
use store::{PeerPack, Push, PushKind, PushOutcome, Received, SigningKey, Store};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::{Id, Message};
use tokio_xmpp::parsers::presence::Presence;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType};
use tokio_xmpp::stanzastream::{Event, StanzaStream, StreamEvent};
use tokio_xmpp::xmlstream::Timeouts;

use crate::connect::Connector;
use crate::handlers::{self, hex_sha256};
use crate::{Error, XmppConfig, iq_error, meta, parse_full_jid};

/// Pushes sent and not yet acknowledged, at most: beyond, the sender waits
/// for receipts, so that a slow peer is not flooded.
const WINDOW: usize = 512;

/// Stanzas waiting for a handler, at most; beyond, pushes are dropped
/// unacknowledged (and sent again by their senders).
const BACKLOG: usize = 20_000;

/// Stanzas the XMPP stream queues each way.
const STREAM_QUEUE: usize = 4096;

/// Interval of XEP-0199 pings to the server.
const KEEPALIVE: Duration = Duration::from_secs(60);

/// Incoming stanzas served at once, at most.
const CONCURRENT_STANZAS: usize = 64;

/// How often the outbox is looked at without being woken (pushes queued by
/// another process, retries).
const OUTBOX_POLL: Duration = Duration::from_millis(500);

/// How long a node holds its receipts for a fedwatt peer's pushes, to send
/// them together in one `<received seqs/>`. Only the sender's outbox waits
/// for them: the data is stored before.
const RECEIPT_DELAY: Duration = Duration::from_millis(100);

/// Sequence numbers in one `<received seqs/>`, at most.
const RECEIPTS_PER_MESSAGE: usize = 1024;

/// De-duplication entries are kept this long: far longer than any retry.
const INBOX_KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

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

/// The pushes sent and awaiting their receipt, by sequence number: their
/// peer, and when they were sent (or when the peer last showed progress).
#[derive(Default)]
struct InFlight(HashMap<i64, (String, Instant)>);

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

struct Shared {
    store: Store,
    status: Arc<Status>,
    out: mpsc::Sender<Stanza>,
    wake: Arc<Notify>,
    in_flight: Mutex<InFlight>,
    /// Pushes received, for the inbox task.
    inbox: mpsc::Sender<Incoming>,
    /// Receipts received, for the receipts task.
    receipts: mpsc::Sender<(String, i64)>,
    /// Pushes from fedwatt peers stored, to acknowledge together.
    stored: mpsc::Sender<(Jid, i64)>,
}

/// A push received, waiting to be stored.
struct Incoming {
    from: Jid,
    peer: String,
    id: Option<String>,
    payload: Element,
    header: Option<PushHeader>,
}

/// Pushes (or receipts) stored in one transaction at most: one commit, one
/// disk flush, for all that arrived while the previous batch was written.
const BATCH: usize = 256;

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
    // The stanza stream itself, not tokio-xmpp's `Client`: sending only
    // queues (it never waits for the write), and deep queues both ways let
    // the stream keep reading while this loop is busy. A client that stops
    // reading its socket while its server stops reading until it does
    // deadlocks with it.
    let mut client = StanzaStream::new_c2s(
        connector,
        Jid::from(full.clone()),
        config.password.clone(),
        Timeouts::default(),
        STREAM_QUEUE,
    );
    let mut next_ping: u64 = 0;
    let (out, mut outgoing) = mpsc::channel::<Stanza>(256);
    let wake = Arc::new(Notify::new());
    {
        let wake = wake.clone();
        store.on_outbox(move || wake.notify_one());
    }
    let (inbox, incoming) = mpsc::channel(4 * BATCH);
    let (receipts, receipts_in) = mpsc::channel(4 * BATCH);
    let (stored, stored_in) = mpsc::channel(4 * BATCH);
    let shared = Arc::new(Shared {
        store,
        status,
        out,
        wake,
        in_flight: Mutex::new(InFlight::default()),
        inbox,
        receipts,
        stored,
    });
    let sender = tokio::spawn(send_outbox(shared.clone()));
    let taker = tokio::spawn(take_in(shared.clone(), incoming));
    let acknowledger = tokio::spawn(acknowledge(shared.clone(), receipts_in));
    let receipter = tokio::spawn(send_receipts(shared.out.clone(), stored_in));
    let stanzas = Arc::new(Semaphore::new(CONCURRENT_STANZAS));
    let mut checkpoint = tokio::time::interval(checkpoint_every);
    let mut prune = tokio::time::interval(Duration::from_secs(3600));
    // XEP-0199 keep-alive: a silent connection that a NAT or a proxy cut is
    // noticed, and the session re-established.
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    let server = Jid::from(full.domain().to_owned());
    tracing::info!("XMPP: connecting as {full}");
    // Stanzas read while every handler was busy. The loop never stops
    // reading: a client that stops reading its socket can deadlock with its
    // server, each waiting for the other to read before it reads again.
    let mut backlog: VecDeque<Stanza> = VecDeque::new();
    loop {
        while !backlog.is_empty() {
            let Ok(permit) = stanzas.clone().try_acquire_owned() else {
                break;
            };
            if let Some(stanza) = backlog.pop_front() {
                serve(&shared, stanza, permit);
            }
        }
        tokio::select! {
            event = client.next() => match event {
                None => break,
                Some(Event::Stream(StreamEvent::Reset { bound_jid, .. })) => {
                    tracing::info!("XMPP: online as {bound_jid}");
                    // Available, so that pushes to our bare JID and the
                    // messages kept offline for us are delivered.
                    let mut presence = Presence::available();
                    presence.id = Some("presence".into());
                    drop(client.send(Box::new(presence.into())).await);
                    shared.status.online.store(true, Ordering::Relaxed);
                    shared.wake.notify_one();
                }
                Some(Event::Stream(StreamEvent::Resumed)) => {
                    tracing::info!("XMPP: session resumed");
                    shared.status.online.store(true, Ordering::Relaxed);
                    shared.wake.notify_one();
                }
                Some(Event::Stream(StreamEvent::Suspended)) => {
                    tracing::warn!("XMPP: disconnected; reconnecting");
                    shared.status.online.store(false, Ordering::Relaxed);
                }
                Some(Event::Stanza(stanza)) => {
                    if backlog.len() < BACKLOG {
                        backlog.push_back(stanza);
                    } else {
                        // Flooded: a push is dropped unacknowledged (its
                        // sender will send it again), a command refused.
                        tracing::warn!("{BACKLOG} stanzas waiting: one is turned away");
                        if let Stanza::Iq(Iq::Set { from, id, .. }) = stanza {
                            let _ = shared.out.try_send(Stanza::Iq(iq_error(from, id, ErrorType::Wait,
                                DefinedCondition::ResourceConstraint, "the node is busy; try again")));
                        }
                    }
                }
            },
            Ok(permit) = stanzas.clone().acquire_owned(), if !backlog.is_empty() => {
                if let Some(stanza) = backlog.pop_front() {
                    serve(&shared, stanza, permit);
                }
            }
            Some(stanza) = outgoing.recv() => {
                // Queued; the stream sends it, again after a reconnection
                // if need be (and the outbox re-sends pushes anyway).
                drop(client.send(Box::new(stanza)).await);
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
            _ = keepalive.tick() => {
                if shared.status.online.load(Ordering::Relaxed) {
                    // The answer is not awaited: a dead connection shows as
                    // a failed write, or as the stream's own timeout.
                    next_ping += 1;
                    let ping = Iq::Get {
                        from: None,
                        to: Some(server.clone()),
                        id: format!("ping-{next_ping}"),
                        payload: Element::bare("ping", PING_NS),
                    };
                    drop(client.send(Box::new(ping.into())).await);
                }
            }
            _ = prune.tick() => {
                let store = shared.store.clone();
                let before = store::Time::now() - INBOX_KEEP;
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
    taker.abort();
    acknowledger.abort();
    receipter.abort();
    shared.status.online.store(false, Ordering::Relaxed);
    let store = shared.store.clone();
    let _ = tokio::task::spawn_blocking(move || store.audit_checkpoint(&key)).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), client.close()).await;
    Ok(())
}

/// Serves a stanza on its own task, holding `permit` until it is answered.
fn serve(shared: &Arc<Shared>, stanza: Stanza, permit: tokio::sync::OwnedSemaphorePermit) {
    let shared = shared.clone();
    tokio::spawn(async move {
        if let Some(answer) = handle(&shared, stanza).await {
            let _ = shared.out.send(answer).await;
        }
        drop(permit);
    });
}

/// Serves one incoming stanza; returns the answer to send, if any.
async fn handle(shared: &Arc<Shared>, stanza: Stanza) -> Option<Stanza> {
    match stanza {
        Stanza::Iq(iq) => {
            tracing::debug!("iq {:?} from {:?}", iq.id(), iq.from());
            let answer = handle_iq(shared, iq).await;
            tracing::debug!("answering {:?}", answer.as_ref().map(Iq::id));
            answer.map(Stanza::Iq)
        }
        Stanza::Message(message) => handle_message(shared, message).await.map(Stanza::Message),
        Stanza::Presence(_) => None,
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
    // A receipt for one of our pushes (XEP-0184, from any client)…
    if let Some(received) = message
        .payloads
        .iter()
        .find(|p| p.is("received", RECEIPTS_NS))
    {
        let seq = received
            .attr("id")
            .and_then(|id| id.strip_prefix("fw-"))
            .and_then(|s| s.parse::<i64>().ok())?;
        let _ = shared.receipts.send((peer, seq)).await;
        return None;
    }
    // …or receipts for many (from a fedwatt node).
    if let Some(received) = message
        .payloads
        .iter()
        .find(|p| p.is("received", FEDWATT_NS))
    {
        match quoalise::parse_received(received) {
            Ok(seqs) => {
                for seq in seqs {
                    let _ = shared.receipts.send((peer.clone(), seq)).await;
                }
            }
            Err(e) => tracing::warn!("receipts from {peer} are malformed: {e}"),
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
    let _ = shared
        .inbox
        .send(Incoming {
            from,
            peer,
            id,
            payload,
            header,
        })
        .await;
    None
}

/// Records receipts by batches, and makes room for more pushes.
async fn acknowledge(shared: Arc<Shared>, mut receipts: mpsc::Receiver<(String, i64)>) {
    while let Some(first) = receipts.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match receipts.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let store = shared.store.clone();
        let done =
            tokio::task::spawn_blocking(move || store.pushes_acknowledged(&batch).map(|_| batch))
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

/// Stores pushes by batches, then acknowledges each one stored (or refused
/// for good).
async fn take_in(shared: Arc<Shared>, mut incoming: mpsc::Receiver<Incoming>) {
    while let Some(first) = incoming.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match incoming.try_recv() {
                Ok(i) => batch.push(i),
                Err(_) => break,
            }
        }
        let store = shared.store.clone();
        let done = tokio::task::spawn_blocking(move || {
            let acks = take_pushes(&store, &batch);
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
async fn send_receipts(out: mpsc::Sender<Stanza>, mut stored: mpsc::Receiver<(Jid, i64)>) {
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

/// A push ready to go: its sequence number, its peer, its message.
type Outgoing = (i64, String, Message);

/// Claims up to `limit` due pushes and builds their messages, checking each
/// against its grant now, in one transaction with their audit entries.
/// Returns the messages and how many rows were claimed.
fn build_due(store: &Store, limit: usize) -> Result<(Vec<Outgoing>, usize), store::Error> {
    let now = store::Time::now().as_micros();
    store.send_pushes(now, limit, &mut |push| build_push(store, push, now))
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

fn build_push(store: &Store, push: &Push, now: i64) -> Result<PushOutcome<Outgoing>, store::Error> {
    let drop = |why: &str| Ok(PushOutcome::Drop(why.to_owned()));
    match &push.kind {
        PushKind::Revoked => {
            let Some(m) = push_message(push, vec![quoalise::revoked_element(push.grant, push.seq)])
            else {
                return drop("the grantee is not a valid JID");
            };
            let facts =
                json!({"seq": push.seq, "revoked": push.grant, "attempt": push.attempts + 1});
            Ok(PushOutcome::Send((push.seq, push.peer.clone(), m), facts))
        }
        PushKind::Data { stream, from, to } => {
            let grant = store.grant(push.grant)?;
            let info = store.stream(stream)?;
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
            Ok(PushOutcome::Send((push.seq, push.peer.clone(), m), facts))
        }
    }
}
