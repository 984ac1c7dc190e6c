//! Incoming stanzas: commands and discovery answered, messages sorted
//! into receipts (for [`outbox`](super::outbox)), revocation notices, and
//! pushes (for [`inbox`](super::inbox)).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use quoalise::{Element, FEDWATT_NS, NS, PushHeader, RECEIPTS_NS};
use tokio_xmpp::Stanza;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::Message;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType};

use super::Shared;
use super::inbox::{Incoming, receipt};
use crate::{handlers, iq_error};

const DISCO_INFO_NS: &str = "http://jabber.org/protocol/disco#info";
const DISCO_ITEMS_NS: &str = "http://jabber.org/protocol/disco#items";
pub(super) const PING_NS: &str = "urn:xmpp:ping";

/// Serves a stanza on its own task, holding `permit` until it is answered.
pub(super) fn serve(
    shared: &Arc<Shared>,
    stanza: Stanza,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
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
            let served = shared
                .blocking(move |store| handlers::serve(store, &peer, &payload))
                .await;
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

pub(super) fn element(name: &str, ns: &str, attrs: &[(&str, &str)]) -> Element {
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
        let who = peer.clone();
        match shared
            .blocking(move |store| store.erase_from_peer(&who, grant))
            .await
        {
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
