//! The retention purge: points past their stream's retention are deleted
//! at intervals.

use std::time::Duration;

use crate::{BoxFuture, Component, Context, Failure};

/// Purges points past their stream's retention every `every`.
#[derive(Debug, Clone)]
pub struct Purge {
    every: Duration,
}

impl Purge {
    /// A purge every `every` (at least a second).
    pub fn every(every: Duration) -> Purge {
        Purge {
            every: every.max(Duration::from_secs(1)),
        }
    }
}

impl Component for Purge {
    fn name(&self) -> &'static str {
        "retention"
    }

    fn run(self: Box<Self>, mut cx: Context) -> BoxFuture<Result<(), Failure>> {
        Box::pin(async move {
            cx.ready();
            let mut ticks = tokio::time::interval(self.every);
            let stopped = cx.shutdown.requested();
            tokio::pin!(stopped);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    () = &mut stopped => return Ok(()),
                }
                let store = cx.store.clone();
                // A failed purge is retried at the next tick: it never
                // stops the node.
                match tokio::task::spawn_blocking(move || store.purge(store::Time::now())).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(n)) => tracing::info!("retention: purged {n} points"),
                    Ok(Err(e)) => tracing::error!("retention purge failed: {e}"),
                    Err(e) => tracing::error!("retention purge failed: {e}"),
                }
            }
        })
    }
}
