//! `GET /api/v1/records`: the records of streams, streamed as they are read
//! in SenML (JSON, CBOR, XML) or CSV; `compact=true` asks for SenML with
//! base fields (each stream's name, unit and first time once).

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
    /// SenML with base fields (`compact=true`): each stream's name, unit
    /// and first time once, then times relative to it.
    pub compact: bool,
}

/// Writes records of streams, one stream after the other, as a compact
/// SenML pack: a stream's first record carries `bn` (its name), `bt` (its
/// first time, whole seconds) and `bu` (its unit, when every stream asked
/// has one: a base unit cannot be unset), the others only `t` (relative)
/// and their value. Resolving the pack gives the records back exactly.
struct Compactor {
    /// Whether `bu` is used (every stream has a unit).
    base_unit: bool,
    /// The stream of the last record written, and its base time in µs.
    current: Option<(senml::Text, i64)>,
}

impl Compactor {
    fn write(
        &mut self,
        writer: &mut dyn senml::RecordWriter,
        r: &senml::Record,
    ) -> senml::Result<()> {
        use std::borrow::Cow;
        let mut raw = senml::RawRecord::default();
        let base = match &self.current {
            Some((name, base)) if *name == r.name => *base,
            _ => {
                // A time before 2^28 s reads as relative to "now" whatever
                // the base: such a stream keeps its times whole (bt 0).
                let seconds = Some(r.time.div_euclid(1_000_000))
                    .filter(|s| *s as f64 >= senml::RELATIVE_TIME_LIMIT)
                    .unwrap_or(0);
                raw.base_name = Some(Cow::Borrowed(&r.name));
                raw.base_time = Some(seconds as f64);
                if self.base_unit {
                    raw.base_unit = r.unit.as_deref().map(Cow::Borrowed);
                }
                self.current = Some((r.name.clone(), seconds * 1_000_000));
                seconds * 1_000_000
            }
        };
        if !self.base_unit {
            raw.unit = r.unit.as_deref().map(Cow::Borrowed);
        }
        let offset = r.time - base;
        raw.time = (offset != 0).then(|| offset as f64 / 1e6);
        raw.sum = r.sum();
        raw.update_time = r.update_time();
        match &r.value {
            Some(senml::Value::Number(v)) => raw.value = Some(*v),
            Some(senml::Value::Bool(b)) => raw.bool_value = Some(*b),
            Some(senml::Value::String(s)) => raw.string_value = Some(Cow::Borrowed(s)),
            Some(senml::Value::Data(d)) => raw.data_value = Some(Cow::Borrowed(d)),
            None => {}
        }
        writer.write(&raw)
    }
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
        compact,
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
            let mut compactor = if *compact {
                let mut base_unit = true;
                for name in names {
                    let stream = store.stream(name).map_err(|e| e.to_string())?;
                    base_unit &= stream.is_some_and(|s| s.unit.is_some());
                }
                Some(Compactor {
                    base_unit,
                    current: None,
                })
            } else {
                None
            };
            let mut writer = senml::writer(format, &mut *out, framing);
            store
                .scan_records(names, *from, *to, *limit, &mut |_, r| {
                    let written = match &mut compactor {
                        Some(c) => c.write(&mut *writer, &r),
                        None => writer.write_resolved(&r, senml::DEFAULT_VERSION),
                    };
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
    let compact = match params.one("compact")? {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(Problem::bad_request(format!(
                "compact={other:?}: expected true or false"
            )));
        }
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
        compact,
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

#[cfg(test)]
mod tests {
    use senml::{Format, Record, Value};

    use super::Compactor;

    fn compacted(records: &[Record], base_unit: bool) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut writer = senml::writer(Format::Json, &mut out, senml::Framing::Pack(None));
            let mut c = Compactor {
                base_unit,
                current: None,
            };
            for r in records {
                c.write(&mut *writer, r).unwrap();
            }
            writer.finish().unwrap();
        }
        out
    }

    #[test]
    fn a_compact_pack_names_each_stream_once_and_resolves_to_the_records() {
        let t0 = 1_704_067_200_000_000;
        let power = "urn:dev:prm:30001610071843_consumption/power/active/raw";
        let mut records: Vec<Record> = (0..3)
            .map(|i| {
                Record::new(
                    power,
                    t0 + i * 600_000_000 + 250,
                    Some(Value::Number(i as f64 + 0.5)),
                )
                .with_unit(Some("W".into()))
            })
            .collect();
        records.push(
            Record::new("switch", t0 + 7, Some(Value::Bool(true))).with_unit(Some("/".into())),
        );
        records.push(
            Record::new("old", 1_000_000, Some(Value::String("x".into())))
                .with_unit(Some("W".into())),
        );
        records.push(
            Record::new("old", 2_000_000, Some(Value::Number(1.0))).with_unit(Some("W".into())),
        );
        for base_unit in [true, false] {
            let json = compacted(&records, base_unit);
            let text = String::from_utf8(json.clone()).unwrap();
            assert_eq!(text.matches(power).count(), 1, "{text}");
            assert_eq!(text.contains("\"bu\""), base_unit, "{text}");
            // Resolving orders a pack by time.
            let mut back = senml::resolve_slice(&json, Format::Json, 0.0)
                .unwrap()
                .records;
            back.sort_by(|a, b| (&a.name, a.time).cmp(&(&b.name, b.time)));
            let mut expected = records.clone();
            expected.sort_by(|a, b| (&a.name, a.time).cmp(&(&b.name, b.time)));
            assert_eq!(back, expected, "{text}");
        }
    }
}
