//! The node's XMPP session: answers commands, sends the outbox, takes in
//! pushes, receipts and revocation notices.
//!
//! One task owns the XMPP client and does nothing slow: each incoming
//! stanza is served on its own task (the store on a blocking thread) and
//! its answer comes back through a channel ([`dispatch`]); the outbox
//! sender is another task, woken by the store when a commit queues pushes
//! ([`outbox`]); pushes received are stored by batches and acknowledged
//! ([`inbox`]); audit checkpoints and the inbox's pruning run on timers
//! ([`upkeep`]).

mod dispatch;
mod inbox;
mod outbox;
mod upkeep;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use quoalise::Element;
use store::{SigningKey, Store};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::Jid;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::presence::Presence;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType};
use tokio_xmpp::stanzastream::{Event, StanzaStream, StreamEvent};
use tokio_xmpp::xmlstream::Timeouts;

use crate::connect::Connector;
use crate::{Error, XmppConfig, iq_error, parse_full_jid};
use dispatch::{PING_NS, serve};
use inbox::Incoming;
use outbox::InFlight;

/// Stanzas waiting for a handler, at most; beyond, pushes are dropped
/// unacknowledged (and sent again by their senders).
const BACKLOG: usize = 20_000;

/// Stanzas the XMPP stream queues each way.
const STREAM_QUEUE: usize = 4096;

/// Interval of XEP-0199 pings to the server.
const KEEPALIVE: Duration = Duration::from_secs(60);

/// Incoming stanzas served at once, at most.
const CONCURRENT_STANZAS: usize = 64;

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
    /// Held (shared) by every store call running on a blocking thread; the
    /// final checkpoint takes it whole, so that it covers what they audit
    /// (a blocking call goes on when its task is aborted).
    store_calls: Arc<tokio::sync::RwLock<()>>,
}

impl Shared {
    /// Runs `call` on the store on a blocking thread, counted in
    /// `store_calls`.
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Result<T, tokio::task::JoinError> {
        let running = self.store_calls.clone().read_owned().await;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let _running = running;
            call(&store)
        })
        .await
    }
}

/// How long the last checkpoint waits for the store calls running at the
/// stop.
const STORE_CALLS_WITHIN: Duration = Duration::from_secs(2);

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
        store_calls: Arc::default(),
    });
    let sender = tokio::spawn(outbox::send_outbox(shared.clone()));
    let taker = tokio::spawn(inbox::take_in(shared.clone(), incoming));
    let acknowledger = tokio::spawn(outbox::acknowledge(shared.clone(), receipts_in));
    let receipter = tokio::spawn(inbox::send_receipts(shared.out.clone(), stored_in));
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
    // The same signal, for sends that must not outlast it.
    let mut stop_sending = shutdown.clone();
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
                    if !send_unless_stopped(&mut client, presence.into(), &mut stop_sending).await {
                        break;
                    }
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
                if !send_unless_stopped(&mut client, stanza, &mut stop_sending).await {
                    break;
                }
            }
            _ = checkpoint.tick() => upkeep::checkpoint(&shared.store, &key).await,
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
                    if !send_unless_stopped(&mut client, ping.into(), &mut stop_sending).await {
                        break;
                    }
                }
            }
            _ = prune.tick() => upkeep::prune_inbox(&shared.store).await,
            // A dropped sender is a stop too.
            () = node::stop_requested(&mut shutdown) => break,
        }
    }
    sender.abort();
    taker.abort();
    acknowledger.abort();
    receipter.abort();
    shared.status.online.store(false, Ordering::Relaxed);
    // What the store calls still running audit is covered by the last
    // checkpoint: it waits for them (not for ever).
    let quiet = tokio::time::timeout(STORE_CALLS_WITHIN, shared.store_calls.write()).await;
    if quiet.is_err() {
        tracing::warn!(
            "store calls still running {STORE_CALLS_WITHIN:?} after the stop: the last checkpoint may not cover them"
        );
    }
    upkeep::checkpoint(&shared.store, &key).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), client.close()).await;
    Ok(())
}

/// Queues `stanza` on the stream, unless the node stops first (the queue
/// may be full while the server is slow); `false` if it stopped.
async fn send_unless_stopped(
    client: &mut StanzaStream,
    stanza: Stanza,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        sent = client.send(Box::new(stanza)) => {
            drop(sent);
            true
        }
        () = node::stop_requested(shutdown) => false,
    }
}
