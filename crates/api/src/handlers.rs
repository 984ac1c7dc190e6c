//! One function per route.

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use senml::{Format, RecordReader};
use serde_json::{Value as Json_, json};
use store::{
    Every, Function, Metadata, ProfileBy, Scope, Store, StreamInfo, Time, format_time, time_zone,
};

use crate::caller::Credentials;
use crate::{Api, Caller, Problem};

/// The query string as (key, value) pairs; keys may repeat (`stream=a&stream=b`).
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(raw: Option<String>) -> Params {
        let raw = raw.unwrap_or_default();
        Params(
            form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub(crate) fn one(&self, key: &str) -> Result<Option<&str>, Problem> {
        let mut values = self.0.iter().filter(|(k, _)| k == key);
        let first = values.next().map(|(_, v)| v.as_str());
        if values.next().is_some() {
            return Err(Problem::bad_request(format!("give `{key}` once")));
        }
        Ok(first)
    }

    pub(crate) fn required(&self, key: &str) -> Result<&str, Problem> {
        self.one(key)?
            .ok_or_else(|| Problem::bad_request(format!("`{key}` is required")))
    }

    pub(crate) fn time(&self, key: &str) -> Result<Option<Time>, Problem> {
        self.one(key)?
            .map(|v| {
                v.parse()
                    .map_err(|e| Problem::bad_request(format!("{key}: {e}")))
            })
            .transpose()
    }

    /// What aggregates and profiles share: streams, a required range,
    /// functions and a time zone.
    fn series(&self, store: &Store) -> Result<Series, Problem> {
        let required = |key: &str| {
            self.time(key)?
                .ok_or_else(|| Problem::bad_request(format!("`{key}` is required")))
        };
        Ok(Series {
            names: self.streams()?,
            from: required("from")?,
            to: required("to")?,
            functions: self.functions()?,
            tz: self.time_zone(store)?,
        })
    }

    pub(crate) fn streams(&self) -> Result<Vec<String>, Problem> {
        let names = self.all("stream");
        if names.is_empty() {
            return Err(Problem::bad_request(
                "give at least one stream (stream=NAME, repeatable)",
            ));
        }
        Ok(names)
    }

    pub(crate) fn functions(&self) -> Result<Vec<Function>, Problem> {
        Function::parse_list(self.one("fn")?.unwrap_or("mean")).map_err(Problem::bad_request)
    }

    pub(crate) fn time_zone(&self, store: &Store) -> Result<jiff::tz::TimeZone, Problem> {
        match self.one("tz")? {
            Some(name) => time_zone(name).map_err(Problem::bad_request),
            None => Ok(store.timezone().clone()),
        }
    }
}

/// The parameters of an aggregate or a profile.
struct Series {
    names: Vec<String>,
    from: Time,
    to: Time,
    functions: Vec<Function>,
    tz: jiff::tz::TimeZone,
}

/// Checks that the caller may read every named stream (401, 403, 404).
pub(crate) fn check_readable(
    store: &Store,
    caller: &Caller,
    names: &[String],
) -> Result<(), Problem> {
    for name in names {
        let stream = store.stream(name)?;
        caller.check(Scope::Read, name, stream.as_ref())?;
        if stream.is_none() {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                format!("no stream named {name:?}"),
            ));
        }
    }
    Ok(())
}

fn now_seconds() -> f64 {
    Time::now().as_secs_f64()
}

pub(crate) async fn post_data(
    State(api): State<Api>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Json_>, Problem> {
    // The token or session is looked up with the ingest, in one trip to a
    // blocking thread: at hundreds of small posts a second, each trip
    // costs more CPU than the lookup. Only its syntax is checked before
    // the body.
    let credentials = Credentials::of(&method, &headers)?;
    if matches!(credentials, Credentials::None) {
        return Err(Problem::unauthorized());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = Format::from_media_type(content_type).ok_or_else(|| {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type {content_type:?}: send application/senml+json, application/senml+cbor or application/senml+xml"
            ),
        )
    })?;
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than the node's limit of {} bytes",
                api.body_limit
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > api.body_limit as u64) {
        return Err(too_large());
    }
    let bytes = to_bytes(body, api.body_limit).await.map_err(|e| {
        if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
        {
            too_large()
        } else {
            Problem::bad_request(format!("the body could not be read: {e}"))
        }
    })?;
    let metrics = api.metrics.clone();
    let accepted = api
        .blocking(move |store| {
            let caller = credentials.resolve(store)?;
            let who = caller.owner_name().unwrap_or_default().to_owned();
            if let Caller::Holder(token) = &caller
                && token.scope < Scope::Write
            {
                return Err(Problem::forbidden(format!(
                    "token {:?} has scope {}, posting data needs write",
                    token.name, token.scope
                )));
            }
            let now = now_seconds();
            let records = senml::resolve_slice_indexed(&bytes, format, now).map_err(|e| {
                let read =
                    senml::validate(RecordReader::from_slice(&bytes, format), now, |_| {}).records;
                metrics.refused(e.reason.code(), read.max(1) as u64);
                tracing::info!(caller = %who, "pack refused: {e}");
                Problem::from(e)
            })?;
            let mut allowed = std::collections::HashSet::new();
            for (index, record) in &records {
                if allowed.contains(record.name.as_ref()) {
                    continue;
                }
                if !caller.may_write(store, &record.name)? {
                    return Err(Problem::forbidden(match &caller {
                        Caller::Holder(token) => format!(
                            "record {index}: token {:?} may not write stream {} (it is limited to {})",
                            token.name,
                            record.name,
                            token.streams.as_str()
                        ),
                        _ => format!(
                            "record {index}: account {who:?} may not write stream {}, which is not theirs",
                            record.name
                        ),
                    }));
                }
                allowed.insert(record.name.as_ref());
            }
            let accepted = store.ingest(&records, Some(&who)).map_err(|e| {
                if let store::Error::Refused(r) = &e {
                    metrics.refused(r.code, records.len() as u64);
                    tracing::info!(caller = %who, "pack refused: {r}");
                }
                Problem::from(e)
            })?;
            metrics.ingested(accepted);
            Ok(accepted)
        })
        .await?;
    Ok(Json(json!({ "accepted": accepted })))
}

fn stream_json(s: &StreamInfo) -> Json_ {
    let utc = jiff::tz::TimeZone::UTC;
    json!({
        "name": s.name,
        "unit": s.unit,
        "kind": s.kind,
        "metadata": s.metadata,
        "owner": s.owner,
        "open": s.open,
        "created": format_time(s.created, &utc),
        "count": s.count,
        "first": s.first.map(|t| format_time(t, &utc)),
        "last": s.last.map(|t| format_time(t, &utc)),
        "origin": s.origin,
    })
}

/// Whether `text` (in lower case) is in the stream's name, owner or a
/// value of its metadata, ignoring case.
fn stream_mentions(s: &StreamInfo, text: &str) -> bool {
    fn values_mention(value: &Json_, text: &str) -> bool {
        match value {
            Json_::String(v) => v.to_lowercase().contains(text),
            Json_::Number(n) => n.to_string().contains(text),
            Json_::Array(items) => items.iter().any(|v| values_mention(v, text)),
            Json_::Object(fields) => fields.values().any(|v| values_mention(v, text)),
            Json_::Bool(_) | Json_::Null => false,
        }
    }
    s.name.to_lowercase().contains(text)
        || s.owner
            .as_deref()
            .is_some_and(|o| o.to_lowercase().contains(text))
        || values_mention(&json!(s.metadata), text)
}

pub(crate) async fn list_streams(
    State(api): State<Api>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Json_>, Problem> {
    let params = Params::parse(query);
    let prefix = params.one("prefix")?.map(str::to_owned);
    let text = params.one("q")?.map(str::to_lowercase);
    let streams = api
        .blocking(move |store| Ok(store.streams(prefix.as_deref())?))
        .await?;
    let visible: Vec<Json_> = streams
        .iter()
        .filter(|s| caller.may_read(s))
        .filter(|s| text.as_deref().is_none_or(|t| stream_mentions(s, t)))
        .map(stream_json)
        .collect();
    Ok(Json(json!({ "streams": visible })))
}

pub(crate) async fn get_stream(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Json_>, Problem> {
    let stream = api
        .blocking({
            let name = name.clone();
            move |store| Ok(store.stream(&name)?)
        })
        .await?;
    caller.check(Scope::Read, &name, stream.as_ref())?;
    let stream = stream
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("no stream named {name:?}")))?;
    Ok(Json(stream_json(&stream)))
}

/// The body of `PATCH /api/v1/streams/{name}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamPatch {
    metadata: Option<Metadata>,
    open: Option<bool>,
}

pub(crate) async fn patch_stream(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Json_>, Problem> {
    caller.check(Scope::Admin, &name, None)?;
    let patch: StreamPatch =
        serde_json::from_slice(&body).map_err(|e| Problem::bad_request(format!("body: {e}")))?;
    let updated = api
        .blocking(move |store| {
            let current = store.stream(&name)?.ok_or_else(|| {
                Problem::new(StatusCode::NOT_FOUND, format!("no stream named {name:?}"))
            })?;
            let metadata = patch.metadata.unwrap_or(current.metadata);
            Ok(store.set_stream(&name, &metadata, patch.open.unwrap_or(current.open))?)
        })
        .await?;
    Ok(Json(stream_json(&updated)))
}

/// One stream of an aggregate or a profile: its name and unit, and for each
/// function a column with one value per bucket or slot (`null` for none).
fn series_json<T>(
    info: &StreamInfo,
    functions: &[Function],
    cells: &[T],
    value: impl Fn(&T, Function) -> Option<f64>,
) -> Json_ {
    let mut values = serde_json::Map::new();
    for &f in functions {
        let column: Vec<Option<f64>> = cells.iter().map(|c| value(c, f)).collect();
        values.insert(f.name().into(), json!(column));
    }
    json!({ "name": info.name, "unit": info.unit, "values": values })
}

fn function_names(functions: &[Function]) -> Vec<&'static str> {
    functions.iter().map(|f| f.name()).collect()
}

pub(crate) async fn aggregate(
    State(api): State<Api>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Json_>, Problem> {
    let params = Params::parse(query);
    let Series {
        names,
        from,
        to,
        functions,
        tz,
    } = params.series(&api.store)?;
    let every_text = params.required("every")?.to_owned();
    let every = Every::parse(&every_text).map_err(Problem::bad_request)?;
    api.blocking(move |store| {
        check_readable(store, &caller, &names)?;
        let aggregate = store.aggregate(&names, from, to, every, &tz)?;
        let buckets: Vec<Json_> = aggregate
            .bounds
            .windows(2)
            .map(|w| json!({ "start": format_time(w[0], &tz), "end": format_time(w[1], &tz) }))
            .collect();
        let streams: Vec<Json_> = aggregate
            .series
            .iter()
            .map(|(info, partials)| {
                series_json(info, &functions, partials, |p, f| p.map(|p| p.get(f)))
            })
            .collect();
        Ok(Json(json!({
            "every": every_text,
            "tz": tz.iana_name().unwrap_or("UTC"),
            "functions": function_names(&functions),
            "buckets": buckets,
            "streams": streams,
        })))
    })
    .await
}

pub(crate) async fn profile(
    State(api): State<Api>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Json_>, Problem> {
    let params = Params::parse(query);
    let Series {
        names,
        from,
        to,
        functions,
        tz,
    } = params.series(&api.store)?;
    let by = ProfileBy::parse(params.one("by")?.unwrap_or("hour-of-day"))
        .map_err(Problem::bad_request)?;
    if let Some(f) = functions
        .iter()
        .find(|f| matches!(f, Function::First | Function::Last))
    {
        return Err(Problem::bad_request(format!(
            "fn={}: a profile offers mean, min, max, sum and count",
            f.name()
        )));
    }
    api.blocking(move |store| {
        check_readable(store, &caller, &names)?;
        let profile = store.profile(&names, from, to, by, &tz)?;
        let streams: Vec<Json_> = profile
            .series
            .iter()
            .map(|(info, slots)| {
                series_json(info, &functions, slots, |s, f| s.and_then(|s| s.get(f)))
            })
            .collect();
        Ok(Json(json!({
            "by": by.name(),
            "tz": tz.iana_name().unwrap_or("UTC"),
            "functions": function_names(&functions),
            "slots": by.slots(),
            "streams": streams,
        })))
    })
    .await
}

pub(crate) async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        include_str!("openapi.json"),
    )
        .into_response()
}

pub(crate) async fn healthz(State(api): State<Api>) -> Result<Json<Json_>, Problem> {
    Ok(Json(health(&api).await?))
}

/// What `/healthz` answers: the store reached, and each component's health.
pub(crate) async fn health(api: &Api) -> Result<Json_, Problem> {
    let board = api.status.clone();
    let components = api
        .blocking(move |store| {
            store.stream("")?;
            Ok(board.health(store)?)
        })
        .await?;
    let mut health = json!({ "status": "ok", "store": api.store.describe() });
    if let Json_::Object(fields) = &mut health {
        fields.extend(components);
    }
    Ok(health)
}

pub(crate) async fn metrics(State(api): State<Api>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        api.metrics.render() + &api.status.metrics(),
    )
        .into_response()
}

pub(crate) async fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no such route; the API is described at /api/v1/openapi.json",
    )
}
