//! `/api/v1/me/…`: what a signed-in account owns — the grants over its
//! streams, the transfers of its streams (from the audit trail), and all
//! its records at once.

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use senml::Format;
use serde_json::{Value as Json_, json};
use store::{Account, AuditEntry, Grant, StreamInfo, Time, format_time};

use crate::grants::{covered, owns_all};
use crate::handlers::Params;
use crate::records::{RecordsQuery, Representation, streamed};
use crate::{Api, Caller, Problem};

/// The streams `account` owns, by name.
fn owned(account: &Account, streams: Vec<StreamInfo>) -> Vec<StreamInfo> {
    streams
        .into_iter()
        .filter(|s| account.owns(&s.name, s.owner.as_deref()))
        .collect()
}

pub(crate) async fn grants(State(api): State<Api>, caller: Caller) -> Result<Json<Json_>, Problem> {
    let account = caller.account()?.clone();
    api.blocking(move |store| {
        let streams = store.streams(None)?;
        let mut out = Vec::new();
        for grant in store.grants()? {
            let mine: Vec<&str> = covered(&grant, &streams)
                .into_iter()
                .filter(|s| account.owns(&s.name, s.owner.as_deref()))
                .map(|s| s.name.as_str())
                .collect();
            if mine.is_empty() {
                continue;
            }
            let mut shown = json!(grant);
            shown["streams"] = json!(mine);
            shown["pattern"] = json!(grant.streams);
            shown["revocable"] = json!(owns_all(&account, &grant, &streams));
            out.push(shown);
        }
        Ok(Json(json!({ "grants": out })))
    })
    .await
}

/// Audit entries read at most for one answer of `/me/transfers`.
const SCANNED_AT_MOST: usize = 100_000;

/// The streams an audit entry is about, among `streams`: its `stream`, its
/// `streams` (names, or a grant's pattern), or those of its grant.
fn entry_streams<'a>(
    detail: &Json_,
    grants: &[Grant],
    streams: &'a [StreamInfo],
) -> Vec<&'a StreamInfo> {
    let named = |names: &[&str]| {
        streams
            .iter()
            .filter(|s| names.contains(&s.name.as_str()))
            .collect()
    };
    if let Some(name) = detail.get("stream").and_then(Json_::as_str) {
        return named(&[name]);
    }
    match detail.get("streams") {
        Some(Json_::Array(names)) => {
            let names: Vec<&str> = names.iter().filter_map(Json_::as_str).collect();
            return named(&names);
        }
        Some(Json_::String(pattern)) => {
            if let Ok(pattern) = pattern.parse::<store::StreamPattern>() {
                return streams
                    .iter()
                    .filter(|s| pattern.matches(&s.name))
                    .collect();
            }
        }
        _ => {}
    }
    detail
        .get("grant")
        .and_then(Json_::as_i64)
        .and_then(|id| grants.iter().find(|g| g.id == id))
        .map(|g| covered(g, streams))
        .unwrap_or_default()
}

fn transfer_json(entry: &AuditEntry, detail: Json_, stream: &str) -> Json_ {
    json!({
        "seq": entry.seq,
        "time": format_time(entry.time, &jiff::tz::TimeZone::UTC),
        "kind": entry.kind,
        "peer": entry.peer,
        "stream": stream,
        "records": detail.get("records").cloned().unwrap_or(Json_::Null),
        "detail": detail,
    })
}

pub(crate) async fn transfers(
    State(api): State<Api>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Json_>, Problem> {
    let account = caller.account()?.clone();
    let params = Params::parse(query);
    let limit = match params.one("limit")? {
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| {
                Problem::bad_request(format!("limit={l:?}: give a whole number from 1 to 1000"))
            })?,
        None => 200,
    };
    api.blocking(move |store| {
        let streams = owned(&account, store.streams(None)?);
        let grants = store.grants()?;
        let mut out = Vec::new();
        let mut before = i64::MAX;
        let mut scanned = 0;
        while out.len() < limit && scanned < SCANNED_AT_MOST && !streams.is_empty() {
            let page = store.audit_entries_before(before, 1000)?;
            let Some(last) = page.last() else { break };
            before = last.seq;
            scanned += page.len();
            for entry in &page {
                let detail: Json_ = serde_json::from_str(&entry.detail).unwrap_or(Json_::Null);
                let about = entry_streams(&detail, &grants, &streams);
                if let Some(first) = about.first() {
                    out.push(transfer_json(entry, detail.clone(), &first.name));
                    if out.len() == limit {
                        break;
                    }
                }
            }
        }
        Ok(Json(json!(out)))
    })
    .await
}

pub(crate) async fn export(State(api): State<Api>, caller: Caller) -> Result<Response, Problem> {
    let account = caller.account()?.clone();
    let name = account.name.clone();
    let streams = api
        .blocking(move |store| Ok(owned(&account, store.streams(None)?)))
        .await?;
    let empty = streams.iter().all(|s| s.count == 0);
    let names: Vec<String> = streams.into_iter().map(|s| s.name).collect();
    let date = jiff::Timestamp::now()
        .to_zoned(api.store.timezone().clone())
        .date();
    let disposition = HeaderValue::from_str(&format!(
        "attachment; filename=\"fedwatt-{name}-{date}.json\""
    ))
    .map_err(|e| Problem::internal(&e))?;
    let query = RecordsQuery {
        names,
        from: Time::MIN,
        to: Time::MAX,
        limit: u64::MAX,
        compact: false,
    };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(Format::Json.media_type()),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        if empty {
            // SenML has no empty pack: an empty export is an empty array.
            Body::from("[]\n")
        } else {
            streamed(
                api.store.clone(),
                query,
                Representation::Senml(Format::Json),
            )
        },
    )
        .into_response())
}
