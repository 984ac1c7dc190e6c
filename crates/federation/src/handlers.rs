//! The commands a peer may send, each checked against the grants at the
//! moment it is served, each written to the audit trail, served or not.

use quoalise::{CommandRequest, Element, Encoding, Request};
use senml::{Record, Value};
use serde_json::json;
use sha2::{Digest, Sha256};
use store::{Every, Grant, Store, StreamInfo, Time, TimeZone};
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::meta;

/// Records a history answer carries at most; the answer then ends with a
/// `<page next="…"/>` from which to ask for the rest.
pub(crate) const HISTORY_PAGE: usize = 10_000;

/// A refusal, as an IQ error.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub type_: ErrorType,
    pub condition: DefinedCondition,
    pub text: String,
}

impl Refusal {
    fn new(type_: ErrorType, condition: DefinedCondition, text: impl Into<String>) -> Refusal {
        Refusal {
            type_,
            condition,
            text: text.into(),
        }
    }

    fn bad_request(text: impl Into<String>) -> Refusal {
        Refusal::new(ErrorType::Modify, DefinedCondition::BadRequest, text)
    }

    fn not_authorized(text: impl Into<String>) -> Refusal {
        Refusal::new(ErrorType::Auth, DefinedCondition::NotAuthorized, text)
    }

    fn not_found(text: impl Into<String>) -> Refusal {
        Refusal::new(ErrorType::Cancel, DefinedCondition::ItemNotFound, text)
    }

    /// The condition's XMPP name, for the audit trail.
    pub fn condition_name(&self) -> &'static str {
        match self.condition {
            DefinedCondition::BadRequest => "bad-request",
            DefinedCondition::NotAuthorized => "not-authorized",
            DefinedCondition::ItemNotFound => "item-not-found",
            DefinedCondition::ServiceUnavailable => "service-unavailable",
            _ => "internal-server-error",
        }
    }

    pub fn into_stanza_error(self) -> StanzaError {
        StanzaError::new(self.type_, self.condition, "en", self.text)
    }
}

impl From<store::Error> for Refusal {
    fn from(e: store::Error) -> Refusal {
        if e.is_caller_error() {
            Refusal::bad_request(e.to_string())
        } else {
            tracing::error!("serving a command: {e}");
            Refusal::new(
                ErrorType::Wait,
                DefinedCondition::ServiceUnavailable,
                "the node's store is unavailable; try again later",
            )
        }
    }
}

/// Serves one command from `peer` (a bare JID): the `<command/>` answer,
/// or the refusal. Either way, an audit entry is written.
pub(crate) fn serve(store: &Store, peer: &str, command: &Element) -> Result<Element, Refusal> {
    let now = Time::now().as_micros();
    let parsed = CommandRequest::parse(command);
    let node = parsed.as_ref().map(|c| c.node.clone()).unwrap_or_default();
    let outcome = parsed
        .map_err(|e| Refusal::bad_request(e.to_string()))
        .and_then(|c| {
            let request = c
                .request()
                .map_err(|e| Refusal::bad_request(e.to_string()))?;
            run(store, peer, &c, &request, now)
        });
    let entry = match &outcome {
        Ok((_, facts)) => ("command", facts.clone()),
        Err(r) => (
            "refused",
            json!({"command": node, "condition": r.condition_name(), "reason": r.text}),
        ),
    };
    if let Err(e) = store.audit(&[(entry.0, Some(peer), entry.1)]) {
        // Serving without a trace is not allowed.
        tracing::error!("cannot write the audit trail: {e}");
        return Err(Refusal::from(e));
    }
    outcome.map(|(answer, _)| answer)
}

/// The grant that covers `name` for `peer` now, or the refusal: item-not-found
/// when a grant covers the name but no such stream exists, not-authorized
/// otherwise (so that a peer without a grant learns nothing, not even
/// whether a stream exists).
fn granted(
    store: &Store,
    peer: &str,
    name: &str,
    now: i64,
) -> Result<(StreamInfo, Grant), Refusal> {
    let stream = store.stream(name)?;
    if let Some(stream) = stream {
        if let Some(grant) = store.grant_for(peer, &stream, Time::from_micros(now))? {
            return Ok((stream, grant));
        }
        return Err(Refusal::not_authorized(format!(
            "no grant lets {peer} receive {name}"
        )));
    }
    let covered = store
        .grants()?
        .iter()
        .any(|g| g.grantee == peer && g.allows(name, now));
    if covered {
        Err(Refusal::not_found(format!(
            "there is no stream named {name}"
        )))
    } else {
        Err(Refusal::not_authorized(format!(
            "no grant lets {peer} receive {name}"
        )))
    }
}

fn time(field: &str, text: &str) -> Result<i64, Refusal> {
    store::parse_time(text).map_err(|e| Refusal::bad_request(format!("{field}: {e}")))
}

fn run(
    store: &Store,
    peer: &str,
    command: &CommandRequest,
    request: &Request,
    now: i64,
) -> Result<(Element, serde_json::Value), Refusal> {
    let session = command.session.as_deref();
    match request {
        Request::GetHistory {
            identifier,
            start_time,
            end_time,
        } => {
            let start = start_time
                .as_deref()
                .map(|t| time("start_time", t))
                .transpose()?;
            let end = end_time
                .as_deref()
                .map(|t| time("end_time", t))
                .transpose()?;
            if let (Some(s), Some(e)) = (start, end)
                && s >= e
            {
                return Err(Refusal::bad_request("start_time must come before end_time"));
            }
            let (stream, grant) = granted(store, peer, identifier, now)?;
            let earliest = grant.history_start(now)?;
            let from = start.unwrap_or(stream.first.unwrap_or(now)).max(earliest);
            let to = end.unwrap_or(stream.last.map_or(now, |l| l + 1));
            let (records, next) = if from >= to {
                (Vec::new(), None)
            } else {
                history(store, &stream, &grant, from, to)?
            };
            let count = records.len();
            let mut meta = meta::to_quoalise(&stream);
            if let Some(every) = &grant.min_aggregation {
                meta.aggregate = Some("average".into());
                meta.sampling_interval = Some(every.clone());
            }
            let data = quoalise::data_element(&meta, records, command.accept)
                .map_err(|e| Refusal::from(store::Error::Internal(e.to_string())))?;
            let quoalise = quoalise::quoalise_element(vec![data]);
            let hash = hex_sha256(String::from(&quoalise).as_bytes());
            let mut payload = vec![
                quoalise,
                quoalise::terms_element(grant.id, grant.retention.as_deref()),
            ];
            if let Some(next) = &next {
                payload.push(quoalise::page_element(next));
            }
            let facts = json!({
                "command": "get_history", "stream": identifier, "grant": grant.id,
                "records": count, "sha256": hash, "more": next.is_some(),
            });
            Ok((quoalise::completed(&command.node, session, payload), facts))
        }
        Request::Subscribe { identifier } => {
            let (stream, grant) = granted(store, peer, identifier, now)?;
            let encoding = match command.accept {
                Encoding::Cbor => store::Encoding::Cbor,
                Encoding::Xml => store::Encoding::Xml,
            };
            store.subscribe(peer, &stream.name, grant.id, encoding)?;
            let facts = json!({"command": "subscribe", "stream": identifier, "grant": grant.id});
            Ok((
                quoalise::completed(
                    &command.node,
                    session,
                    vec![quoalise::terms_element(
                        grant.id,
                        grant.retention.as_deref(),
                    )],
                ),
                facts,
            ))
        }
        Request::Unsubscribe { identifier } => {
            let ended = store.unsubscribe(peer, identifier)?;
            let facts = json!({"command": "unsubscribe", "stream": identifier, "ended": ended});
            Ok((
                quoalise::completed(&command.node, session, Vec::new()),
                facts,
            ))
        }
        Request::Catalogue => {
            let streams = store.granted_streams(peer, Time::from_micros(now))?;
            if streams.is_empty()
                && !store
                    .grants()?
                    .iter()
                    .any(|g| g.grantee == peer && g.is_active(now))
            {
                return Err(Refusal::not_authorized(format!("no grant names {peer}")));
            }
            let entries: Vec<_> = streams
                .iter()
                .map(|(s, g)| quoalise::CatalogueEntry {
                    name: s.name.clone(),
                    unit: s.unit.clone(),
                    count: s.count,
                    first: s.first.map(|t| store::format_time(t, &TimeZone::UTC)),
                    last: s.last.map(|t| store::format_time(t, &TimeZone::UTC)),
                    grant: g.id,
                    min_aggregation: g.min_aggregation.clone(),
                    max_history: g.max_history.clone(),
                    meta: meta::to_quoalise(s),
                })
                .collect();
            let facts = json!({"command": "catalogue", "streams": entries.len()});
            Ok((
                quoalise::completed(
                    &command.node,
                    session,
                    vec![quoalise::catalogue_element(&entries)],
                ),
                facts,
            ))
        }
    }
}

/// The records of `stream` in `[from, to)` as `grant` lets them out: raw,
/// or means of its minimum aggregation period; at most [`HISTORY_PAGE`],
/// with the time to ask from for the rest.
pub(crate) fn history(
    store: &Store,
    stream: &StreamInfo,
    grant: &Grant,
    from: i64,
    to: i64,
) -> Result<(Vec<Record>, Option<String>), Refusal> {
    let names = [stream.name.clone()];
    let mut records = Vec::new();
    if let Some(every) = &grant.min_aggregation {
        let every = Every::parse(every).map_err(|e| {
            Refusal::from(store::Error::Setting {
                what: format!("min aggregation {every} of grant {}", grant.id),
                detail: e,
            })
        })?;
        // Means of whole periods only: a push of one new point, or a range
        // cut mid-period, answers the mean of every point of the periods it
        // touches, never of a part of one (which would replace the whole
        // period's mean at the receiver). A period that starts before the
        // grant's history depth is left out.
        let bounds =
            store::buckets(from, to, every, &TimeZone::UTC).map_err(Refusal::bad_request)?;
        let earliest = grant.history_start(Time::now().as_micros())?;
        let first = bounds.iter().copied().find(|&b| b >= earliest);
        let (Some(from), Some(&to)) = (first, bounds.last()) else {
            return Ok((Vec::new(), None));
        };
        if from >= to {
            return Ok((Vec::new(), None));
        }
        let aggregate = store.aggregate(
            &names,
            Time::from_micros(from),
            Time::from_micros(to),
            every,
            &TimeZone::UTC,
        )?;
        let name: senml::Text = stream.name.as_str().into();
        let unit = stream.unit.as_deref().map(Into::into);
        for (_, partials) in &aggregate.series {
            for (i, partial) in partials.iter().enumerate() {
                if let Some(p) = partial
                    && p.count > 0
                {
                    records.push(
                        Record::new(
                            name.clone(),
                            aggregate.bounds[i],
                            Some(Value::Number(p.sum / p.count as f64)),
                        )
                        .with_unit(unit.clone()),
                    );
                }
            }
        }
    } else {
        let (from, to) = (Time::from_micros(from), Time::from_micros(to));
        store.scan_records(&names, from, to, HISTORY_PAGE as u64 + 1, &mut |_, r| {
            records.push(r);
            true
        })?;
    }
    let next = if records.len() > HISTORY_PAGE {
        let next = records[HISTORY_PAGE].time;
        records.truncate(HISTORY_PAGE);
        Some(store::format_time(next, &TimeZone::UTC))
    } else {
        None
    };
    Ok((records, next))
}

pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aggregated_grant_answers_means_of_whole_periods() {
        let dir = std::env::temp_dir().join(format!("fedwatt-handlers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(None, &dir, "UTC").unwrap();
        let name = "urn:dev:prm:1_consumption/power/active/raw";
        // 10:00 and 10:30 of 2024-01-08, 100 W and 300 W.
        let pack =
            format!(r#"[{{"bn":"{name}","bu":"W","bt":1704708000,"v":100}},{{"t":1800,"v":300}}]"#);
        let records =
            senml::resolve_slice_indexed(pack.as_bytes(), senml::Format::Json, 0.0).unwrap();
        store.ingest(&records, None).unwrap();
        let grant = store
            .add_grant(&store::NewGrant {
                grantee: "n@b.example".into(),
                streams: "*".parse().unwrap(),
                purpose: None,
                from: None,
                until: None,
                max_history: None,
                min_aggregation: Some("PT1H".into()),
                retention: None,
            })
            .unwrap();
        let info = store.stream(name).unwrap().unwrap();
        // Only the 10:30 point is new, as in a push: the hour's mean is sent.
        let at_1030 = 1_704_709_800_000_000;
        let (records, next) = history(&store, &info, &grant, at_1030, at_1030 + 1).unwrap();
        assert_eq!(next, None);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].time, 1_704_708_000_000_000);
        assert_eq!(records[0].value, Some(Value::Number(200.0)));
    }
}
