//! The federation as a component of the node, and what it reports.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use node::{BoxFuture, Component, Context, Failure};
use store::{SigningKey, Store};

use crate::{Status, XmppConfig};

/// The node's XMPP session: commands served, pushes sent and taken in,
/// audit checkpoints signed.
pub struct Federation {
    config: XmppConfig,
    key: SigningKey,
    checkpoint_every: Duration,
}

impl Federation {
    /// The session of `config` (checked: its JID, its CA file), signing
    /// audit checkpoints with `key` every `checkpoint_every` (when the
    /// trail grew) and at the end.
    pub fn new(
        config: XmppConfig,
        key: SigningKey,
        checkpoint_every: Duration,
    ) -> Result<Federation, crate::Error> {
        crate::check(&config)?;
        Ok(Federation {
            config,
            key,
            checkpoint_every: checkpoint_every.max(Duration::from_secs(1)),
        })
    }
}

impl Component for Federation {
    fn name(&self) -> &'static str {
        "federation"
    }

    fn run(self: Box<Self>, mut cx: Context) -> BoxFuture<Result<(), Failure>> {
        Box::pin(async move {
            let status = Arc::new(Status::default());
            cx.status.register(status.clone());
            cx.ready();
            crate::run(
                self.config,
                cx.store,
                self.key,
                self.checkpoint_every,
                status,
                cx.shutdown.watch(),
            )
            .await
            .map_err(Failure::from)
        })
    }
}

impl node::Status for Status {
    fn name(&self) -> &'static str {
        "federation"
    }

    fn health(&self, store: &Store) -> Result<serde_json::Value, store::Error> {
        Ok(serde_json::json!({
            "online": self.online.load(Ordering::Relaxed),
            "outbox": store.outbox_len()?,
        }))
    }

    fn metrics(&self, out: &mut String) {
        let online = self.online.load(Ordering::Relaxed);
        node::describe_metric(
            out,
            "fedwatt_xmpp_online",
            "gauge",
            "Whether the XMPP session is up.",
        );
        let _ = writeln!(out, "fedwatt_xmpp_online {}", u8::from(online));
        for (name, help, counter) in [
            (
                "fedwatt_pushes_sent_total",
                "Pushes sent to peers, retries included.",
                &self.pushes_sent,
            ),
            (
                "fedwatt_push_receipts_total",
                "Receipts received for pushes.",
                &self.receipts,
            ),
            (
                "fedwatt_pushes_received_total",
                "Pushes taken in from peers.",
                &self.pushes_received,
            ),
            (
                "fedwatt_commands_served_total",
                "Federation commands served.",
                &self.commands_served,
            ),
            (
                "fedwatt_commands_refused_total",
                "Federation commands refused.",
                &self.commands_refused,
            ),
        ] {
            node::describe_metric(out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", counter.load(Ordering::Relaxed));
        }
    }
}
