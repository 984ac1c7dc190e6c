//! The federation's wire format, with no I/O: what goes inside the XMPP
//! stanzas that fedwatt nodes and Quoalise clients exchange.
//!
//! - Quoalise v0 (`urn:quoalise:0`): `<quoalise><data><meta/><sensml/></data></quoalise>`
//!   payloads, the ad-hoc commands (XEP-0050) `get_history`, `subscribe`
//!   and `unsubscribe` with their data forms (XEP-0004), and the
//!   `<upstream-error/>` error extension.
//! - fedwatt's extensions (`urn:fedwatt:0`), which a Quoalise client may
//!   ignore: the catalogue command, the push header (sequence number,
//!   grant, retention), revocation notices, paging of long histories, and
//!   SenML CBOR in one element for peers that ask for it (`<accept
//!   encoding="cbor"/>` in their command), since an XMPP server's cost grows
//!   with the number of XML elements a stanza holds.
//!
//! Everything parsed here comes from another organisation: nothing is
//! unwrapped, every refusal says what is wrong.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod command;
mod data;
mod ext;

pub use command::{CATALOGUE_NODE, completed};
pub use command::{CommandRequest, Request};
pub use data::{Data, Encoding, Meta, data_element, parse_quoalise, quoalise_element};
pub use ext::{
    CatalogueEntry, PushHeader, RECEIVED_MAX, catalogue_element, page_element, parse_catalogue,
    parse_page, parse_received, parse_revoked, parse_terms, received_element, revoked_element,
    terms_element, upstream_error,
};
pub use minidom::Element;

/// Quoalise's namespace.
pub const NS: &str = "urn:quoalise:0";
/// fedwatt's extensions.
pub const FEDWATT_NS: &str = "urn:fedwatt:0";
/// XEP-0050 ad-hoc commands.
pub const COMMANDS_NS: &str = "http://jabber.org/protocol/commands";
/// XEP-0004 data forms.
pub const DATA_FORMS_NS: &str = "jabber:x:data";
/// XEP-0184 message delivery receipts.
pub const RECEIPTS_NS: &str = "urn:xmpp:receipts";
/// XEP-0334 message processing hints.
pub const HINTS_NS: &str = "urn:xmpp:hints";

/// What is wrong with a payload a peer sent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A required element or attribute is missing or malformed.
    #[error("{0}")]
    Malformed(String),
    /// The SenML inside is invalid.
    #[error("SenML: {0}")]
    Senml(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

fn malformed<T>(what: impl Into<String>) -> Result<T> {
    Err(Error::Malformed(what.into()))
}

/// An attribute name; only called with the crate's own constant names.
fn attr_name(name: &str) -> minidom::rxml::NcName {
    match minidom::rxml::NcName::try_from(name) {
        Ok(n) => n,
        // Unreachable with the names this crate uses; a test covers them all.
        Err(_) => minidom::rxml::NcName::try_from("invalid").unwrap_or_else(|_| unreachable!()),
    }
}

/// Builds an element with attributes (those whose value is `None` are left out).
fn element(name: &str, ns: &str, attrs: &[(&str, Option<&str>)]) -> minidom::ElementBuilder {
    let mut b = Element::builder(name, ns);
    for (k, v) in attrs {
        if let Some(v) = v {
            b = b.attr(attr_name(k), *v);
        }
    }
    b
}
