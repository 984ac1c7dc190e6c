//! `GET /api/v1/records`: the records of streams, streamed as they are read
//! in SenML (JSON, CBOR, XML) or CSV.

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use senml::{Format, Framing};
use store::{Store, Time, format_time};

use crate::handlers::{Params, check_readable};
use crate::{Api, Caller, Problem};

/// How records are sent back, from the Accept header.
pub(crate) enum Representation {
    Senml(Format),
    Csv,
}

fn representation(headers: &HeaderMap) -> Representation {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for media in accept.split(',') {
        let essence = media.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("text/csv") {
            return Representation::Csv;
        }
        if let Some(format) = Format::from_media_type(essence) {
            return Representation::Senml(format);
        }
    }
    Representation::Senml(Format::Json)
}

fn csv_field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// Bytes of a streamed body sent at a time.
const CHUNK: usize = 64 * 1024;

/// A `Write` that feeds a streamed HTTP body through a bounded channel, so
/// that an answer of any size is written with bounded memory, as fast as the
/// client reads it. Fails once the client has gone.
struct BodyWriter {
    buffer: Vec<u8>,
    sender: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl BodyWriter {
    fn send(&mut self) -> std::io::Result<()> {
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client has gone"))
    }
}

impl Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            Ok(())
        } else {
            self.send()
        }
    }
}

/// What a records query asks for.
pub(crate) struct RecordsQuery {
    pub names: Vec<String>,
    pub from: Time,
    pub to: Time,
    pub limit: u64,
}

/// Writes the records as CSV or SenML into `out`.
fn write_records(
    store: &Store,
    query: &RecordsQuery,
    representation: Representation,
    out: &mut BodyWriter,
) -> Result<(), String> {
    let RecordsQuery {
        names,
        from,
        to,
        limit,
    } = query;
    let mut failure: Option<String> = None;
    match representation {
        Representation::Csv => {
            let utc = jiff::tz::TimeZone::UTC;
            let mut line = String::from("stream,time,value,unit,sum\n");
            store
                .scan_records(names, *from, *to, *limit, &mut |_, r| {
                    csv_line(&mut line, &r, &utc);
                    let written = out.write_all(line.as_bytes());
                    line.clear();
                    written.map_err(|e| failure = Some(e.to_string())).is_ok()
                })
                .map_err(|e| e.to_string())?;
        }
        Representation::Senml(format) => {
            // A CBOR pack says its length first: count, then write.
            let framing = if format == Format::Cbor {
                let mut count = 0;
                store
                    .scan_records(names, *from, *to, *limit, &mut |_, _| {
                        count += 1;
                        true
                    })
                    .map_err(|e| e.to_string())?;
                Framing::Pack(Some(count))
            } else {
                Framing::Pack(None)
            };
            let mut writer = senml::writer(format, &mut *out, framing);
            store
                .scan_records(names, *from, *to, *limit, &mut |_, r| {
                    let written = writer.write_resolved(&r, senml::DEFAULT_VERSION);
                    written.map_err(|e| failure = Some(e.to_string())).is_ok()
                })
                .map_err(|e| e.to_string())?;
            if failure.is_none() {
                writer.finish().map_err(|e| e.to_string())?;
            }
        }
    }
    match failure {
        Some(why) => Err(why),
        None => out.flush().map_err(|e| e.to_string()),
    }
}

/// One CSV line: stream,time,value,unit,sum.
fn csv_line(line: &mut String, r: &senml::Record, utc: &jiff::tz::TimeZone) {
    csv_field(line, &r.name);
    line.push(',');
    line.push_str(&format_time(r.time, utc));
    line.push(',');
    match &r.value {
        Some(senml::Value::Number(v)) => line.push_str(&v.to_string()),
        Some(senml::Value::Bool(b)) => line.push_str(if *b { "true" } else { "false" }),
        Some(senml::Value::String(s)) => csv_field(line, s),
        Some(senml::Value::Data(d)) => {
            line.push_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d))
        }
        None => {}
    }
    line.push(',');
    csv_field(line, r.unit.as_deref().unwrap_or(""));
    line.push(',');
    if let Some(s) = r.sum() {
        line.push_str(&s.to_string());
    }
    line.push('\n');
}

pub(crate) async fn records(
    State(api): State<Api>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let params = Params::parse(query);
    let names = params.streams()?;
    let from = params.time("from")?.unwrap_or(Time::MIN);
    let to = params.time("to")?.unwrap_or(Time::MAX);
    let limit = match params.one("limit")? {
        Some(l) => l
            .parse::<u64>()
            .map_err(|_| Problem::bad_request(format!("limit={l:?} is not a whole number")))?,
        None => u64::MAX,
    };
    let representation = representation(&headers);
    let content_type = match representation {
        Representation::Csv => HeaderValue::from_static("text/csv; charset=utf-8"),
        Representation::Senml(format) => HeaderValue::from_static(format.media_type()),
    };
    // Every check before the first byte, so that a refusal is an answer.
    let checked = names.clone();
    api.blocking(move |store| check_readable(store, &caller, &checked))
        .await?;

    let query = RecordsQuery {
        names,
        from,
        to,
        limit,
    };
    Ok((
        [(header::CONTENT_TYPE, content_type)],
        streamed(api.store.clone(), query, representation),
    )
        .into_response())
}

/// The records `query` asks for as a body, written on a blocking thread
/// as the client reads it.
pub(crate) fn streamed(store: Store, query: RecordsQuery, representation: Representation) -> Body {
    let (sender, mut receiver) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut out = BodyWriter {
            buffer: Vec::with_capacity(CHUNK),
            sender: sender.clone(),
        };
        if let Err(why) = write_records(&store, &query, representation, &mut out) {
            // The status is sent already: cut the body short so that the
            // client sees an incomplete answer, not a complete wrong one.
            tracing::warn!("records answer cut short: {why}");
            let _ = sender.blocking_send(Err(std::io::Error::other(why)));
        }
    });
    let chunks = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    Body::from_stream(chunks)
}
