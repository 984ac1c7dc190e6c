//! Asking another node: history, subscriptions, catalogue. Used by the
//! `fedwatt peer …` commands, with the node's account and a resource of
//! their own, so that they never disturb the running node's session.
//!
//! Pushes that follow a subscription go to the node's bare JID, hence to
//! the running node (the command line sends no presence, so it receives
//! none of them).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use quoalise::{CatalogueEntry, Element, Encoding, Request};
use store::{PeerPack, Received, Store};
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType};
use tokio_xmpp::stanzastream::{Event, StanzaStream, StreamEvent};
use tokio_xmpp::xmlstream::Timeouts;

use crate::connect::Connector;
use crate::handlers::hex_sha256;
use crate::{Error, XmppConfig, iq_error, meta, parse_full_jid};

/// How long to wait for the server, then for each answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Stanzas queued each way; a session asks one thing at a time.
const QUEUE: usize = 16;

/// A short XMPP session for requests to peers.
///
/// It runs on tokio-xmpp's stanza stream and matches answers to requests
/// itself. (tokio-xmpp's `Client` could miss an answer: its worker polls
/// the stream shared with the sender with `try_lock`, and a poll made
/// while a request was being queued never woke again.)
pub struct Session {
    stream: StanzaStream,
}

/// Checks a peer's address: requests go to a node's full JID.
pub fn peer_jid(jid: &str) -> Result<(BareJid, FullJid), Error> {
    let full = FullJid::new(jid).map_err(|e| {
        Error::Config(format!(
            "peer {jid:?}: {e}; give the peer node's full JID, as fedwatt@agency.example/node"
        ))
    })?;
    Ok((full.to_bare(), full))
}

impl Session {
    /// Connects with the node's account, as resource `<resource>-cli-<pid>`.
    pub async fn open(config: &XmppConfig) -> Result<Session, Error> {
        let (bare, full) = parse_full_jid(&config.jid)?;
        let resource = format!("{}-cli-{}", full.resource(), std::process::id());
        let jid = bare
            .with_resource_str(&resource)
            .map_err(|e| Error::Config(format!("[xmpp] jid: {e}")))?;
        let connector = Connector::new(
            jid.domain().as_str(),
            config.address.as_deref(),
            config.ca_file.as_deref(),
        )?;
        let mut stream = StanzaStream::new_c2s(
            connector,
            Jid::from(jid),
            config.password.clone(),
            Timeouts::default(),
            QUEUE,
        );
        let online = tokio::time::timeout(TIMEOUT, async {
            while let Some(event) = stream.next().await {
                if let Event::Stream(StreamEvent::Reset { .. }) = event {
                    return true;
                }
            }
            false
        })
        .await;
        match online {
            Ok(true) => Ok(Session { stream }),
            Ok(false) => Err(Error::Xmpp("the connection closed".into())),
            // The stream retries on its own; why it failed is in the log.
            Err(_) => Err(Error::Xmpp(format!(
                "no session with the XMPP server after {}s (address, password, certificate?)",
                TIMEOUT.as_secs()
            ))),
        }
    }

    /// Sends `request` to `to` and returns the `<command/>` of its answer.
    pub async fn command(
        &mut self,
        to: &FullJid,
        request: &Request,
        accept: Encoding,
    ) -> Result<Element, Error> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let peer = to.to_string();
        let id = format!(
            "fedwatt-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let from_peer = Jid::from(to.clone());
        let iq = Iq::Set {
            from: None,
            to: Some(from_peer.clone()),
            id: id.clone(),
            payload: request.to_command(accept).to_element(),
        };
        // Only queued: the stream writes it, and again after a reconnection
        // if the server had not acknowledged it.
        drop(self.stream.send(Box::new(iq.into())).await);
        let answer = tokio::time::timeout(TIMEOUT, async {
            loop {
                let Some(event) = self.stream.next().await else {
                    return Err(Error::Xmpp("the connection closed".into()));
                };
                let Event::Stanza(Stanza::Iq(iq)) = event else {
                    continue;
                };
                let answers = iq.id() == id && iq.from() == Some(&from_peer);
                match iq {
                    Iq::Result { payload, .. } if answers => return Ok(Ok(payload)),
                    Iq::Error { error, .. } if answers => return Ok(Err(error)),
                    // Nothing is served here: an entity that asks this
                    // session something hears so, as RFC 6120 requires.
                    Iq::Get { from, id, .. } | Iq::Set { from, id, .. } => {
                        let refusal = iq_error(
                            from,
                            id,
                            ErrorType::Cancel,
                            DefinedCondition::ServiceUnavailable,
                            "a command-line session of a fedwatt node serves nothing",
                        );
                        drop(self.stream.send(Box::new(refusal.into())).await);
                    }
                    _ => {}
                }
            }
        })
        .await
        .map_err(|_| {
            Error::Xmpp(format!(
                "{peer} did not answer within {}s",
                TIMEOUT.as_secs()
            ))
        })??;
        match answer {
            Ok(Some(el)) if el.is("command", quoalise::COMMANDS_NS) => Ok(el),
            Ok(_) => Err(Error::BadAnswer {
                peer,
                why: "no <command/> in the answer".into(),
            }),
            Err(e) => {
                let condition = format!("{:?}", e.defined_condition);
                Err(Error::Refused {
                    peer,
                    condition: condition_name(&condition),
                    text: e.texts.values().next().cloned(),
                })
            }
        }
    }

    /// Ends the session.
    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.stream.close()).await;
    }
}

/// `NotAuthorized` → `not-authorized`.
fn condition_name(debug: &str) -> String {
    let mut out = String::new();
    for (i, c) in debug.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('-');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// What `fedwatt peer history` got.
#[derive(Debug, Clone, Default)]
pub struct HistoryOutcome {
    /// Records received.
    pub records: u64,
    /// Answers (pages) it took.
    pub pages: u64,
    /// The peer's grant they came under.
    pub grant: Option<i64>,
}

/// Asks `peer` for the history of `identifier` in `[start, end)` (ISO 8601
/// with offset), page after page, and stores what comes through the
/// store's door for peers' data, tagged with the peer.
pub async fn history(
    session: &mut Session,
    store: &Store,
    peer: &FullJid,
    identifier: &str,
    start: Option<String>,
    end: Option<String>,
) -> Result<HistoryOutcome, Error> {
    let bare = peer.to_bare().to_string();
    let mut outcome = HistoryOutcome::default();
    let mut start = start;
    loop {
        let request = Request::GetHistory {
            identifier: identifier.to_owned(),
            start_time: start.clone(),
            end_time: end.clone(),
        };
        let answer = session.command(peer, &request, Encoding::Cbor).await?;
        outcome.pages += 1;
        let bad = |why: String| Error::BadAnswer {
            peer: peer.to_string(),
            why,
        };
        let terms = quoalise::parse_terms(&answer).map_err(|e| bad(e.to_string()))?;
        let (grant, retention) = terms.unwrap_or((0, None));
        outcome.grant = Some(grant);
        let payload = answer
            .get_child("quoalise", quoalise::NS)
            .ok_or_else(|| bad("no <quoalise/> in the answer".into()))?
            .clone();
        let next = quoalise::parse_page(&answer);
        let store = store.clone();
        let who = bare.clone();
        let stored = tokio::task::spawn_blocking(move || {
            store_answer(&store, &who, &payload, grant, retention.as_deref())
        })
        .await
        .map_err(|e| Error::Xmpp(e.to_string()))??;
        outcome.records += stored;
        match next {
            Some(next) if Some(&next) != start.as_ref() => start = Some(next),
            _ => return Ok(outcome),
        }
    }
}

fn store_answer(
    store: &Store,
    peer: &str,
    payload: &Element,
    grant: i64,
    retention: Option<&str>,
) -> Result<u64, Error> {
    let now_s = store::Time::now().as_secs_f64();
    let data = quoalise::parse_quoalise(payload, now_s).map_err(|e| Error::BadAnswer {
        peer: peer.to_owned(),
        why: e.to_string(),
    })?;
    let mut records = Vec::new();
    let mut metadata = Vec::new();
    for d in data {
        if let Some((_, first)) = d.records.first() {
            metadata.push((first.name.to_string(), meta::from_quoalise(&d.meta)));
        }
        records.extend(d.records.into_iter().map(|(_, r)| r));
    }
    if records.is_empty() {
        return Ok(0);
    }
    let indexed: Vec<(usize, senml::Record)> = records.into_iter().enumerate().collect();
    let hash = hex_sha256(String::from(payload).as_bytes());
    let pack = PeerPack {
        peer,
        seq: None,
        grant,
        retention,
        payload_hash: &hash,
        metadata: &metadata,
    };
    match store.ingest_from_peer(&indexed, pack)? {
        Received::Stored(n) => Ok(n),
        Received::Duplicate => Ok(0),
    }
}

/// Subscribes to `identifier` at `peer`: its new records will be pushed to
/// this node (which must be running to take them in, or will get them
/// from its server's offline storage when it starts).
pub async fn subscribe(
    session: &mut Session,
    store: &Store,
    peer: &FullJid,
    identifier: &str,
) -> Result<Option<i64>, Error> {
    let bare = peer.to_bare().to_string();
    // Recorded first: a push may arrive before the answer does.
    store.add_remote_subscription(&bare, identifier)?;
    let request = Request::Subscribe {
        identifier: identifier.to_owned(),
    };
    match session.command(peer, &request, Encoding::Cbor).await {
        Ok(answer) => Ok(quoalise::parse_terms(&answer)
            .ok()
            .flatten()
            .map(|(grant, _)| grant)),
        Err(e) => {
            store.remove_remote_subscription(&bare, identifier)?;
            Err(e)
        }
    }
}

/// Ends a subscription at `peer`.
pub async fn unsubscribe(
    session: &mut Session,
    store: &Store,
    peer: &FullJid,
    identifier: &str,
) -> Result<(), Error> {
    let request = Request::Unsubscribe {
        identifier: identifier.to_owned(),
    };
    session.command(peer, &request, Encoding::Cbor).await?;
    store.remove_remote_subscription(&peer.to_bare().to_string(), identifier)?;
    Ok(())
}

/// The streams `peer` lets this node see.
pub async fn catalogue(
    session: &mut Session,
    peer: &FullJid,
) -> Result<Vec<CatalogueEntry>, Error> {
    let answer = session
        .command(peer, &Request::Catalogue, Encoding::Cbor)
        .await?;
    let catalogue = answer
        .get_child("catalogue", quoalise::FEDWATT_NS)
        .ok_or_else(|| Error::BadAnswer {
            peer: peer.to_string(),
            why: "no <catalogue/> in the answer".into(),
        })?;
    quoalise::parse_catalogue(catalogue).map_err(|e| Error::BadAnswer {
        peer: peer.to_string(),
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn conditions_are_named_as_xmpp_names_them() {
        assert_eq!(super::condition_name("NotAuthorized"), "not-authorized");
        assert_eq!(super::condition_name("ItemNotFound"), "item-not-found");
    }
}
