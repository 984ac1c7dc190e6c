//! fedwatt's XMPP federation: the node is an XMPP client of its
//! organisation's server, and exchanges data with other organisations'
//! nodes (and any Quoalise client) across s2s.
//!
//! - [`run`] is the node's side: it answers the Quoalise commands
//!   (`get_history`, `subscribe`, `unsubscribe`) and fedwatt's catalogue,
//!   each checked against the owners' grants at the moment it is served;
//!   sends the outbox's pushes and re-sends them until a receipt comes;
//!   takes in the pushes of the peers it subscribed to, and the peers'
//!   revocation notices.
//! - [`peer`] is the asking side, for the command line: history,
//!   subscriptions and catalogues of another node.
//!
//! The requester is always the bare JID the XMPP servers authenticated
//! (the stanza's `from`), never anything inside the payload.
//!
//! Store calls are synchronous: they run on blocking threads.

mod component;
mod connect;
mod handlers;
mod meta;
pub mod peer;
mod session;
mod settings;

use std::path::PathBuf;

use tokio_xmpp::jid::Jid;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

pub use component::Federation;
pub use session::{Status, run};
pub use settings::XmppSettings;

/// The federation's settings at run time, checked (from [`XmppSettings`],
/// the `[xmpp]` section of the configuration file).
#[derive(Debug, Clone)]
pub struct XmppConfig {
    /// The node's full JID, with its resource (`fedwatt@agency.example/node`).
    pub jid: String,
    /// Its password.
    pub password: String,
    /// `host:port` of the XMPP server; by default the domain's SRV records.
    pub address: Option<String>,
    /// A PEM file of CA certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
}

/// What can go wrong in the federation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting cannot be used.
    #[error("configuration: {0}")]
    Config(String),
    /// A setting of the configuration file is missing or cannot be read
    /// (the message names it).
    #[error("{0}")]
    Setting(String),
    /// The XMPP session failed.
    #[error("XMPP: {0}")]
    Xmpp(String),
    /// The peer answered with an error.
    #[error("{peer} answered {condition}{}", text.as_deref().map(|t| format!(": {t}")).unwrap_or_default())]
    Refused {
        /// Who answered.
        peer: String,
        /// The XMPP error condition (`not-authorized`, `item-not-found`…).
        condition: String,
        /// The peer's explanation.
        text: Option<String>,
    },
    /// The peer's answer cannot be understood.
    #[error("the answer of {peer}: {why}")]
    BadAnswer {
        /// Who answered.
        peer: String,
        /// What is wrong.
        why: String,
    },
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Checks the `[xmpp]` settings (JID, address, CA file) without connecting,
/// so that a node with bad settings stops at start-up, naming the setting.
pub fn check(config: &XmppConfig) -> Result<(), Error> {
    let (_, full) = parse_full_jid(&config.jid)?;
    connect::Connector::new(
        full.domain().as_str(),
        config.address.as_deref(),
        config.ca_file.as_deref(),
    )?;
    Ok(())
}

/// Checks a full JID (`local@domain/resource`) and splits off its bare part.
pub fn parse_full_jid(
    jid: &str,
) -> Result<(tokio_xmpp::jid::BareJid, tokio_xmpp::jid::FullJid), Error> {
    let full = tokio_xmpp::jid::FullJid::new(jid).map_err(|e| {
        Error::Config(format!(
            "[xmpp] jid {jid:?}: {e}; give the node's full JID, as fedwatt@agency.example/node"
        ))
    })?;
    if full.node().is_none() {
        return Err(Error::Config(format!(
            "[xmpp] jid {jid:?} has no local part: give an account, as fedwatt@agency.example/node"
        )));
    }
    Ok((full.to_bare(), full))
}

/// An error answer to the IQ `id` of `to`.
pub(crate) fn iq_error(
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
