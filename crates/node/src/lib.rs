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
//! - At shutdown every component is told at once, and given
//!   [`STOP_WITHIN`] to finish what it holds (the federation signs its last
//!   audit checkpoint then).
//!
//! What it is *not*: it knows no component (they depend on it, never the
//! reverse) and reads no configuration file.

mod purge;
mod secret;
mod status;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use store::Store;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

pub use purge::Purge;
pub use secret::secret;
pub use status::{Status, StatusBoard};

/// A boxed future that can run on any of the runtime's threads.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Why a component stopped the node.
pub type Failure = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How long the runner waits for a component to say it is ready before it
/// starts the next one anyway (with a warning).
pub const READY_WITHIN: Duration = Duration::from_secs(10);

/// How long the components have, together, to finish after shutdown is
/// requested; those still running then are cancelled.
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
        async move {
            // A dropped sender means the node is gone: stop too.
            let _ = signal.wait_for(|stop| *stop).await;
        }
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
    /// them fails; then stops them all. Returns the error of the component
    /// that failed, named.
    pub async fn run(self, stop: impl Future<Output = ()> + Send) -> Result<(), String> {
        let (request_stop, stopped) = watch::channel(false);
        let mut running: JoinSet<(&'static str, Result<(), Failure>)> = JoinSet::new();
        let mut failure = None;
        for component in self.components {
            let name = component.name();
            let (ready, is_ready) = oneshot::channel();
            let cx = Context {
                store: self.store.clone(),
                shutdown: Shutdown(stopped.clone()),
                status: self.status.clone(),
                ready: Some(ready),
            };
            running.spawn(async move { (name, component.run(cx).await) });
            tokio::select! {
                // Ready, or ended before saying so.
                _ = is_ready => {}
                () = tokio::time::sleep(READY_WITHIN) => {
                    tracing::warn!("{name} did not say it was ready within {READY_WITHIN:?}; starting the next components");
                }
            }
            if let Some(Some(failed)) = running.try_join_next().map(ended) {
                failure = Some(failed);
                break;
            }
        }
        if failure.is_none() {
            tokio::pin!(stop);
            failure = loop {
                tokio::select! {
                    () = &mut stop => break None,
                    joined = running.join_next() => match joined.map(ended) {
                        Some(Some(failed)) => break Some(failed),
                        Some(None) => continue,
                        // Every component ended by itself.
                        None => break None,
                    },
                }
            };
        }
        tracing::info!("shutting down");
        let _ = request_stop.send(true);
        let deadline = tokio::time::sleep(STOP_WITHIN);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                joined = running.join_next() => match joined.map(ended) {
                    Some(Some(failed)) => {
                        if failure.is_none() {
                            failure = Some(failed);
                        }
                    }
                    Some(None) => {}
                    None => break,
                },
                () = &mut deadline => {
                    tracing::warn!("{} component(s) still running {STOP_WITHIN:?} after shutdown: cancelled", running.len());
                    running.abort_all();
                    break;
                }
            }
        }
        match failure {
            Some(failed) => Err(failed),
            None => Ok(()),
        }
    }
}

/// A component's end: `Some(message)` if it failed (logged here).
fn ended(
    joined: Result<(&'static str, Result<(), Failure>), tokio::task::JoinError>,
) -> Option<String> {
    let message = match joined {
        Ok((_, Ok(()))) => return None,
        Ok((name, Err(e))) => format!("{name}: {e}"),
        Err(e) if e.is_cancelled() => return None,
        Err(e) => format!("a component panicked: {e}"),
    };
    tracing::error!("{message}");
    Some(message)
}

#[cfg(test)]
mod tests;
