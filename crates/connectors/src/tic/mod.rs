//! [`TicSource`]: a Linky meter's TIC as a node component. Bytes from a
//! serial port (re-opened every [`RETRY`] when it cannot be opened or
//! fails) or a capture file (replayed once, at the baud rate's pace or
//! the configured interval) go to a [`tic::Decoder`]; each frame's good
//! groups become records ([`crate::tic_streams`]) stored through
//! `Store::ingest`, one pack per batch of frames that arrived while the
//! previous pack was stored.

mod serial;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use senml::Record;
use store::Time;
use tokio::sync::mpsc;

use crate::settings::{TicInput, TicMode, TicSettings};
use crate::status::ConnectorsStatus;
use crate::status::Health;
use crate::tic_streams;

use serial::Chunk;

/// How long a port that failed waits before it is opened again.
pub const RETRY: Duration = Duration::from_secs(5);

/// With `mode = "auto"`, how long a port is read at one baud rate with no
/// valid group before the other is tried: a few frames' worth (a
/// standard frame is under a second at 9600 baud, a historic one about
/// two at 1200)…
pub const AUTO_SWITCH_AFTER: Duration = Duration::from_secs(6);

/// …or this many bytes with no valid group, whichever comes first.
pub const AUTO_SWITCH_BYTES: u64 = 3 * 1024;

/// A TIC source: one meter, one port or capture.
pub struct TicSource {
    id: String,
    input: TicInput,
    mode: TicMode,
    owner: String,
    prm: Option<String>,
    health: Arc<Health>,
    status: Arc<ConnectorsStatus>,
}

impl TicSource {
    /// Checks `settings` (each error names `[[connector]] id "…"` and
    /// the key); the source reports to `health`, and puts `status` on the
    /// node's board.
    pub(crate) fn new(
        settings: &TicSettings,
        health: Arc<Health>,
        status: Arc<ConnectorsStatus>,
    ) -> Result<TicSource, String> {
        Ok(TicSource {
            id: settings.id.clone(),
            input: settings.input()?,
            mode: settings.mode,
            owner: settings.owner.clone().unwrap_or_else(|| "tic".into()),
            prm: settings.prm.clone(),
            health,
            status,
        })
    }

    /// What `/healthz` shows as the connector's input.
    pub(crate) fn describe(settings: &TicSettings) -> String {
        settings
            .port
            .as_ref()
            .or(settings.file.as_ref())
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }
}

impl node::Component for TicSource {
    fn name(&self) -> &'static str {
        "tic connector"
    }

    fn run(self: Box<Self>, mut cx: node::Context) -> node::BoxFuture<Result<(), node::Failure>> {
        Box::pin(async move {
            cx.status.register(self.status.clone());
            cx.ready();
            let mut sink = Sink {
                store: cx.store.clone(),
                owner: self.owner.clone(),
                prm: self.prm.clone(),
                meter: None,
                health: self.health.clone(),
            };
            let decoder = || match self.mode {
                TicMode::Auto => tic::Decoder::new(),
                TicMode::Historic => tic::Decoder::with_mode(tic::Mode::Historic),
                TicMode::Standard => tic::Decoder::with_mode(tic::Mode::Standard),
            };
            match &self.input {
                TicInput::File { path, interval } => {
                    let pace = match interval {
                        Some(d) => Pace::Interval(*d),
                        None => Pace::Baud(self.mode),
                    };
                    tracing::info!("connector {}: replaying {}", self.id, path.display());
                    self.health.update(|c| c.state = "replaying");
                    let chunks = serial::read_file(path.clone());
                    let mut decoder = decoder();
                    let ended =
                        read(&mut decoder, chunks, &mut sink, &cx.shutdown, pace, None).await;
                    if let Some(frame) = decoder.finish() {
                        sink.store(vec![(frame, Time::now().as_micros())]).await;
                    }
                    match ended {
                        Ended::Failed(e) => self.health.error(e),
                        Ended::Stopped => return Ok(()),
                        Ended::Closed => {}
                    }
                    tracing::info!("connector {}: {} replayed", self.id, path.display());
                    self.health.update(|c| c.state = "replayed");
                    Ok(())
                }
                TicInput::Port(port) => {
                    run_port(&self, port, decoder, &mut sink, &cx.shutdown).await;
                    Ok(())
                }
            }
        })
    }
}

/// Reads a port until shutdown, opening it again after each failure.
async fn run_port(
    source: &TicSource,
    port: &std::path::Path,
    decoder: impl Fn() -> tic::Decoder,
    sink: &mut Sink,
    shutdown: &node::Shutdown,
) {
    let first = match source.mode {
        TicMode::Historic => 1200,
        TicMode::Auto | TicMode::Standard => 9600,
    };
    loop {
        let baud = Arc::new(AtomicU32::new(first));
        let chunks = serial::read_port(port.to_path_buf(), baud.clone());
        source.health.update(|c| {
            c.state = "reading";
            c.baud = Some(first);
        });
        let auto = (source.mode == TicMode::Auto).then_some(&*baud);
        let mut decoder = decoder();
        let ended = read(&mut decoder, chunks, sink, shutdown, Pace::None, auto).await;
        if let Some(frame) = decoder.finish() {
            sink.store(vec![(frame, Time::now().as_micros())]).await;
        }
        match ended {
            Ended::Stopped => return source.health.update(|c| c.state = "stopped"),
            Ended::Failed(e) => source
                .health
                .error(format!("{e}; trying again in {RETRY:?}")),
            Ended::Closed => source.health.error(format!(
                "{} closed; trying again in {RETRY:?}",
                port.display()
            )),
        }
        source.health.update(|c| c.state = "retrying");
        tokio::select! {
            () = tokio::time::sleep(RETRY) => {}
            () = shutdown.requested() => return source.health.update(|c| c.state = "stopped"),
        }
    }
}

/// How a capture is paced.
#[derive(Debug, Clone, Copy)]
enum Pace {
    /// A port: as the bytes come.
    None,
    /// This long after each frame.
    Interval(Duration),
    /// As long as the bytes take on the line (10 bits a byte), at the
    /// mode's baud rate; for `auto`, the rate of the mode the bytes show
    /// (HT separators: 9600, else 1200).
    Baud(TicMode),
}

/// Why reading stopped.
enum Ended {
    /// Shutdown was requested.
    Stopped,
    /// The input ended (a file's end; a port's thread gone).
    Closed,
    /// The input failed.
    Failed(String),
}

/// Decodes what `chunks` brings and stores it, until the input ends or
/// fails or shutdown. `auto`, for a port read with `mode = "auto"`, is
/// its baud rate, switched between 9600 and 1200 while nothing decodes.
async fn read(
    decoder: &mut tic::Decoder,
    mut chunks: mpsc::Receiver<Chunk>,
    sink: &mut Sink,
    shutdown: &node::Shutdown,
    pace: Pace,
    auto: Option<&AtomicU32>,
) -> Ended {
    let mut since_switch = (Instant::now(), 0u64);
    loop {
        let chunk = tokio::select! {
            chunk = chunks.recv() => chunk,
            () = shutdown.requested() => return Ended::Stopped,
        };
        let mut bytes = match chunk {
            Some(Ok(bytes)) => bytes,
            Some(Err(e)) => return Ended::Failed(e),
            None => return Ended::Closed,
        };
        if let Pace::None = pace {
            // A port: take what else arrived meanwhile, one pack for all.
            while bytes.len() < 64 * 1024 {
                match chunks.try_recv() {
                    Ok(Ok(more)) => bytes.extend_from_slice(&more),
                    Ok(Err(e)) => {
                        decode_and_store(decoder, &bytes, sink).await;
                        return Ended::Failed(e);
                    }
                    Err(_) => break,
                }
            }
            decode_and_store(decoder, &bytes, sink).await;
            if let Some(baud) = auto
                && decoder.stats().groups == 0
            {
                since_switch.1 += bytes.len() as u64;
                if since_switch.0.elapsed() >= AUTO_SWITCH_AFTER
                    || since_switch.1 >= AUTO_SWITCH_BYTES
                {
                    switch(baud, sink);
                    since_switch = (Instant::now(), 0);
                }
            }
            continue;
        }
        // A capture: frame by frame, each followed by its pause.
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let end = rest
                .iter()
                .position(|&b| b == tic::ETX || b == tic::EOT)
                .map_or(rest.len(), |i| i + 1);
            let (piece, after) = rest.split_at(end);
            rest = after;
            decode_and_store(decoder, piece, sink).await;
            let pause = match pace {
                Pace::Interval(d)
                    if piece
                        .last()
                        .is_some_and(|&b| b == tic::ETX || b == tic::EOT) =>
                {
                    d
                }
                Pace::Interval(_) | Pace::None => Duration::ZERO,
                Pace::Baud(mode) => {
                    let baud = match mode {
                        TicMode::Historic => 1200,
                        TicMode::Standard => 9600,
                        TicMode::Auto if piece.contains(&b'\t') => 9600,
                        TicMode::Auto => 1200,
                    };
                    Duration::from_secs_f64(piece.len() as f64 * 10.0 / f64::from(baud))
                }
            };
            if !pause.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = shutdown.requested() => return Ended::Stopped,
                }
            }
        }
    }
}

/// With nothing decoding, reads at the other baud rate.
fn switch(baud: &AtomicU32, sink: &Sink) {
    let other = if baud.load(Ordering::Relaxed) == 9600 {
        1200
    } else {
        9600
    };
    baud.store(other, Ordering::Relaxed);
    tracing::debug!("nothing decodes: trying {other} baud");
    sink.health.update(|c| c.baud = Some(other));
}

async fn decode_and_store(decoder: &mut tic::Decoder, bytes: &[u8], sink: &mut Sink) {
    let mut frames = Vec::new();
    decoder.feed(bytes, |f| frames.push(f));
    if frames.is_empty() {
        return;
    }
    let now = Time::now().as_micros();
    sink.store(frames.into_iter().map(|f| (f, now)).collect())
        .await;
}

/// Where a connector's frames go: the store, with the counts.
struct Sink {
    store: store::Store,
    owner: String,
    prm: Option<String>,
    /// The meter the last frame named, for a frame whose identifier
    /// group was dropped.
    meter: Option<String>,
    health: Arc<Health>,
}

impl Sink {
    /// Stores the good groups of `frames` (each with its arrival time) in
    /// one pack, and counts.
    async fn store(&mut self, frames: Vec<(tic::Frame, i64)>) {
        let mut records: Vec<Record> = Vec::new();
        let (mut dropped, mut interrupted, mut nameless, mut last) = (0, 0, 0, None);
        let mut mode = None;
        for (frame, arrived) in &frames {
            dropped += frame.dropped as u64;
            interrupted += u64::from(!frame.is_complete());
            mode = frame.mode.or(mode);
            if let Some(meter) = tic_streams::meter_of(frame, self.prm.as_deref()) {
                self.meter = Some(meter);
            }
            let Some(meter) = &self.meter else {
                nameless += 1;
                continue;
            };
            let time = tic_streams::frame_time(frame).unwrap_or(*arrived);
            last = Some(time);
            records.extend(tic_streams::records(frame, meter, time));
        }
        // One point per stream and time in a pack: the last frame's.
        let mut at: HashMap<(String, i64), usize> = HashMap::new();
        let mut kept: Vec<Record> = Vec::with_capacity(records.len());
        for r in records {
            match at.get(&(r.name.to_string(), r.time)) {
                Some(&i) => kept[i] = r,
                None => {
                    at.insert((r.name.to_string(), r.time), kept.len());
                    kept.push(r);
                }
            }
        }
        self.health.update(|c| {
            c.frames += frames.len() as u64;
            c.dropped_groups += dropped;
            c.interrupted_frames += interrupted;
            c.last_frame = last.or(c.last_frame);
            if let Some(mode) = mode {
                c.mode = Some(mode.to_string());
            }
        });
        if nameless > 0 {
            self.health.error(format!(
                "{nameless} frame(s) name no meter yet (no PRM, ADSC or ADCO group): not stored"
            ));
        }
        if kept.is_empty() {
            return;
        }
        let count = kept.len() as u64;
        let store = self.store.clone();
        let owner = self.owner.clone();
        let stored = tokio::task::spawn_blocking(move || {
            let pack: Vec<(usize, Record)> = kept.into_iter().enumerate().collect();
            store.ingest(&pack, Some(&owner))
        })
        .await;
        match stored {
            Ok(Ok(_)) => self.health.update(|c| c.records += count),
            Ok(Err(e)) => self.health.error(format!("storing {count} records: {e}")),
            Err(e) => self.health.error(format!("storing {count} records: {e}")),
        }
    }
}
