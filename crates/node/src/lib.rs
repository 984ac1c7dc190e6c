//! The component contract of a fedwatt node, and the runner that starts and
//! stops its components.
//!
//! A node is a list of long-running **components**: the HTTP server, the
//! federation's XMPP session, the control loop, the node's own MQTT
//! broker, the retention purge, and later the connectors. Each implements
//! [`Component`], in the style of Vector's sources and sinks: it is built
//! from its own configuration (which lives beside it, in its own crate),
//! then [`run`](Component::run) with a [`Context`] that carries what every
//! component shares: the store, the shutdown signal and the status board
//! that `/healthz` and `/metrics` read. `fedwatt serve` only builds the
//! list; [`Node::run`] does the rest.
//!
//! ```
//! use node::{BoxFuture, Component, Context, Failure};
//!
//! /// Logs a line once a minute until the node stops.
//! struct Heartbeat;
//!
//! impl Component for Heartbeat {
//!     fn name(&self) -> &'static str {
//!         "heartbeat"
//!     }
//!
//!     fn run(self: Box<Self>, mut cx: Context) -> BoxFuture<Result<(), Failure>> {
//!         Box::pin(async move {
//!             cx.ready();
//!             let mut minutes = tokio::time::interval(std::time::Duration::from_secs(60));
//!             loop {
//!                 tokio::select! {
//!                     _ = minutes.tick() => tracing::info!("still here"),
//!                     _ = cx.shutdown.requested() => return Ok(()),
//!                 }
//!             }
//!         })
//!     }
//! }
//! ```
//!
//! Rules the runner keeps:
//! - Components start in the order of the list, each once the one before
//!   says it is ready ([`Context::ready`]), so that the broker listens
//!   before the control loop connects to it, and the HTTP API answers only
//!   once the control loop holds its kept plans.
//! - A component that fails stops the node, which then reports that
//!   component's error; one that ends without error simply ends.
//! - At shutdown (a signal, or a failure) the components are stopped in
//!   the reverse of their starting order, each given [`STOP_WITHIN`] to
//!   finish what it holds: the HTTP API drains its requests first, so that
//!   the federation's last signed audit checkpoint covers them; a
//!   component still running then is cancelled. Tasks a component spawned
//!   are its own to end.
//!
//! What it is *not*: it knows no component (they depend on it, never the
//! reverse) and reads no configuration file.

mod purge;
mod settings;
mod status;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use store::Store;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

pub use purge::Purge;
pub use settings::{secret, unset_if_empty};
pub use status::{Status, StatusBoard, describe_metric};

/// A boxed future that can run on any of the runtime's threads.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Why a component stopped the node.
pub type Failure = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How long the runner waits for a component to say it is ready before it
/// starts the next one anyway (with a warning).
pub const READY_WITHIN: Duration = Duration::from_secs(10);

/// How long each component has to finish once told to stop; one still
/// running then is cancelled.
pub const STOP_WITHIN: Duration = Duration::from_secs(5);

/// A long-running part of a node.
pub trait Component: Send + 'static {
    /// Its name, in logs and in the error that stops the node
    /// (`federation`, `control`, `http`…).
    fn name(&self) -> &'static str;

    /// Runs until `cx.shutdown` is requested, then returns. It calls
    /// [`Context::ready`] once it serves (ends of start-up that the next
    /// components depend on); an error stops the whole node.
    fn run(self: Box<Self>, cx: Context) -> BoxFuture<Result<(), Failure>>;
}

/// What a component is given to run.
pub struct Context {
    /// The node's store.
    pub store: Store,
    /// Turns when the node stops.
    pub shutdown: Shutdown,
    /// Where the component puts what `/healthz` and `/metrics` report.
    pub status: StatusBoard,
    ready: Option<oneshot::Sender<()>>,
}

impl Context {
    /// Says that the component is started: the runner starts the next
    /// one. Calling it again does nothing; a component that ends (or
    /// fails) before calling it counts as ready.
    pub fn ready(&mut self) {
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(());
        }
    }
}

/// The node's shutdown signal, as each component sees it.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A signal that never turns, for a component run on its own (a test,
    /// a one-off command): dropping the returned sender turns it.
    pub fn manual() -> (watch::Sender<bool>, Shutdown) {
        let (stop, stopped) = watch::channel(false);
        (stop, Shutdown(stopped))
    }

    /// Resolves once shutdown is requested (at once if it already was).
    /// The future owns a copy of the signal, so it can be handed to a
    /// server's graceful shutdown.
    pub fn requested(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut signal = self.0.clone();
        async move { stop_requested(&mut signal).await }
    }

    /// Whether shutdown was requested.
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// The underlying channel, for code that takes a `watch::Receiver`.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.0.clone()
    }
}

/// Resolves once `shutdown` turns true, or its sender is gone: for loops
/// that hold a `watch::Receiver` of their own (one of
/// [`Shutdown::watch`]). The future holds no borrow of the value, so it can
/// sit in a `select!` of a task that moves between threads.
pub async fn stop_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// A node: its store, its components, and the board they report to.
pub struct Node {
    store: Store,
    status: StatusBoard,
    components: Vec<Box<dyn Component>>,
}

impl Node {
    /// A node over `store`, with no component yet.
    pub fn new(store: Store) -> Node {
        Node {
            store,
            status: StatusBoard::default(),
            components: Vec::new(),
        }
    }

    /// The board the components report to (the HTTP API reads it).
    pub fn status(&self) -> StatusBoard {
        self.status.clone()
    }

    /// Adds a component, started after those added before it.
    pub fn add(&mut self, component: impl Component) {
        self.components.push(Box::new(component));
    }

    /// The names of the components, in starting order.
    pub fn names(&self) -> Vec<&'static str> {
        self.components.iter().map(|c| c.name()).collect()
    }

    /// Runs every component until `stop` resolves (a signal) or one of
    /// them fails; then stops them in the reverse of their starting order,
    /// each given [`STOP_WITHIN`]: the HTTP API drains its requests before
    /// the federation signs its last checkpoint, and the control loop says
    /// goodbye to the node's own broker before the broker stops. Returns
    /// the error of the component that failed, named.
    pub async fn run(self, stop: impl Future<Output = ()> + Send) -> Result<(), String> {
        let mut running: JoinSet<(usize, Result<(), Failure>)> = JoinSet::new();
        let mut started: Vec<Started> = Vec::new();
        let mut failure = None;
        // Polled from the start: a signal during start-up stops the node
        // as cleanly as one later.
        tokio::pin!(stop);
        let mut stop_requested = false;
        'starting: for (index, component) in self.components.into_iter().enumerate() {
            let name = component.name();
            let (ready, mut is_ready) = oneshot::channel();
            let (request_stop, stopped) = watch::channel(false);
            let cx = Context {
                store: self.store.clone(),
                shutdown: Shutdown(stopped),
                status: self.status.clone(),
                ready: Some(ready),
            };
            let task = running.spawn(async move { (index, component.run(cx).await) });
            started.push(Started {
                name,
                request_stop,
                task,
                ended: false,
            });
            let deadline = tokio::time::sleep(READY_WITHIN);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    said = &mut is_ready => {
                        if said.is_err() {
                            // It dropped its context: it has ended, or is
                            // ending. Its outcome decides what comes next.
                            while !started[index].ended {
                                let Some(joined) = running.join_next().await else { break };
                                if let Some(failed) = end(&mut started, joined, false) {
                                    failure.get_or_insert(failed);
                                }
                            }
                        }
                        break;
                    }
                    () = &mut deadline => {
                        tracing::warn!("{name} did not say it was ready within {READY_WITHIN:?}; starting the next components");
                        break;
                    }
                    () = &mut stop => {
                        stop_requested = true;
                        break 'starting;
                    }
                    Some(joined) = running.join_next() => {
                        if let Some(failed) = end(&mut started, joined, false) {
                            failure.get_or_insert(failed);
                        }
                    }
                }
                if failure.is_some() {
                    break 'starting;
                }
            }
            if failure.is_some() {
                break;
            }
        }
        if failure.is_none() && !stop_requested {
            failure = loop {
                tokio::select! {
                    () = &mut stop => break None,
                    joined = running.join_next() => match joined {
                        Some(joined) => match end(&mut started, joined, false) {
                            Some(failed) => break Some(failed),
                            None => continue,
                        },
                        // Every component ended by itself.
                        None => break None,
                    },
                }
            };
        }
        tracing::info!("shutting down");
        for index in (0..started.len()).rev() {
            if started[index].ended {
                continue;
            }
            let _ = started[index].request_stop.send(true);
            let deadline = tokio::time::sleep(STOP_WITHIN);
            tokio::pin!(deadline);
            while !started[index].ended {
                tokio::select! {
                    joined = running.join_next() => match joined {
                        Some(joined) => {
                            if let Some(failed) = end(&mut started, joined, true) {
                                failure.get_or_insert(failed);
                            }
                        }
                        None => break,
                    },
                    () = &mut deadline => {
                        let late = &mut started[index];
                        tracing::warn!("{} still running {STOP_WITHIN:?} after it was told to stop: cancelled", late.name);
                        late.task.abort();
                        late.ended = true;
                    }
                }
            }
        }
        match failure {
            Some(failed) => Err(failed),
            None => Ok(()),
        }
    }
}

/// A component the runner started.
struct Started {
    name: &'static str,
    request_stop: watch::Sender<bool>,
    task: tokio::task::AbortHandle,
    ended: bool,
}

/// Notes a component's end; `Some(message)` if it failed (logged here).
/// One that ends without error before it was told to stop is logged too:
/// the node goes on without it.
fn end(
    started: &mut [Started],
    joined: Result<(usize, Result<(), Failure>), tokio::task::JoinError>,
    stopping: bool,
) -> Option<String> {
    let (index, outcome) = match joined {
        Ok((index, outcome)) => (index, outcome),
        Err(e) => {
            // A panic or a cancellation: find whose task it was.
            let id = e.id();
            let index = started.iter().position(|s| s.task.id() == id)?;
            started[index].ended = true;
            if e.is_cancelled() {
                return None;
            }
            let message = format!("{} panicked: {e}", started[index].name);
            tracing::error!("{message}");
            return Some(message);
        }
    };
    let component = &mut started[index];
    component.ended = true;
    match outcome {
        Ok(()) if stopping || *component.request_stop.borrow() => None,
        Ok(()) => {
            tracing::warn!(
                "{} ended by itself; the node goes on without it",
                component.name
            );
            None
        }
        Err(e) => {
            let message = format!("{}: {e}", component.name);
            tracing::error!("{message}");
            Some(message)
        }
    }
}

#[cfg(test)]
mod tests;
