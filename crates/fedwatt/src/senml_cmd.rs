//! `fedwatt senml …`: resolve, convert and validate SenML packs from files
//! or standard input.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use senml::{Format, Framing, RecordReader, ResolvedPack};

#[derive(Subcommand)]
pub enum SenmlCommand {
    /// Resolve a pack (RFC 8428 §4.6) and print its records, as SenML JSON
    /// unless --to says otherwise: absolute names and times, base fields
    /// applied, chronological order.
    Resolve {
        #[command(flatten)]
        input: Input,
        /// "Now" for relative times, in seconds since the Unix epoch
        /// (default: the current time).
        #[arg(long, value_name = "SECONDS")]
        now: Option<f64>,
        /// Output encoding.
        #[arg(long, value_name = "FORMAT", default_value = "json")]
        to: Format,
    },
    /// Convert a pack to another encoding, keeping its records as written
    /// (base fields included). Streams: input of any size.
    Convert {
        #[command(flatten)]
        input: Input,
        /// Output encoding: json, cbor or xml.
        #[arg(long, value_name = "FORMAT")]
        to: Format,
        /// Resolve the pack, then write it back with base fields chosen to
        /// make it small (holds the pack in memory).
        #[arg(long, conflicts_with = "stream")]
        compact: bool,
        /// "Now" for relative times with --compact (default: the current time).
        #[arg(long, value_name = "SECONDS", requires = "compact")]
        now: Option<f64>,
        /// Write CBOR as a SensML stream (indefinite-length array) as it
        /// goes, instead of a SenML pack (definite-length array, held in
        /// memory until its count is known).
        #[arg(long)]
        stream: bool,
    },
    /// Check a pack: prints "ok: N records", or every error found, one per
    /// line on standard error, and exits with status 1. Streams: input of
    /// any size in constant memory.
    Validate {
        #[command(flatten)]
        input: Input,
        /// "Now" for relative times (default: the current time).
        #[arg(long, value_name = "SECONDS")]
        now: Option<f64>,
    },
}

#[derive(Args)]
pub struct Input {
    /// The pack to read; standard input when absent or "-".
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// Input encoding: json, cbor or xml (default: from the file extension,
    /// else guessed from the first bytes).
    #[arg(long, value_name = "FORMAT")]
    from: Option<Format>,
}

pub fn run(command: SenmlCommand) -> Result<ExitCode, String> {
    match command {
        SenmlCommand::Resolve { input, now, to } => {
            let (bytes, format) = input.read_all()?;
            let pack = senml::resolve_slice(&bytes, format, now.unwrap_or_else(now_seconds))
                .map_err(|e| input.error(e))?;
            let mut out = senml::writer(to, Stdout::new(), Framing::Pack(Some(pack.records.len())));
            for record in &pack.records {
                out.write_resolved(record, pack.version)
                    .map_err(|e| format!("cannot write {to}: {e}"))?;
            }
            out.finish()
                .map_err(|e| format!("cannot write {to}: {e}"))?;
        }
        SenmlCommand::Convert {
            input,
            to,
            compact: true,
            now,
            ..
        } => {
            let (bytes, format) = input.read_all()?;
            let pack: ResolvedPack =
                senml::resolve_slice(&bytes, format, now.unwrap_or_else(now_seconds))
                    .map_err(|e| input.error(e))?;
            let records = senml::compact_iter(&pack).map_err(|e| input.error(e))?;
            write_pack(records, to, Framing::Pack(Some(pack.records.len())))?;
        }
        SenmlCommand::Convert {
            input, to, stream, ..
        } => {
            let (reader, format) = input.open()?;
            let mut records = RecordReader::from_reader(reader, format);
            let framing = if stream {
                Framing::Stream
            } else {
                Framing::Pack(None)
            };
            let mut out = senml::writer(to, Stdout::new(), framing);
            while let Some(written) = records
                .next_with(|record| out.write(record))
                .map_err(|e| input.error(e))?
            {
                written.map_err(|e| input.error(e))?;
            }
            out.finish().map_err(|e| input.error(e))?;
        }
        SenmlCommand::Validate { input, now } => {
            let (reader, format) = input.open()?;
            let name = input.name();
            let mut stderr = io::stderr().lock();
            let summary = senml::validate(
                RecordReader::from_reader(reader, format),
                now.unwrap_or_else(now_seconds),
                |e| {
                    let _ = writeln!(stderr, "{name}: {e}");
                },
            );
            if summary.errors > 0 {
                let _ = writeln!(
                    stderr,
                    "{name}: {} error(s) in {} record(s)",
                    summary.errors, summary.records
                );
                return Ok(ExitCode::FAILURE);
            }
            println!("ok: {} records", summary.records);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_pack<'r>(
    records: impl Iterator<Item = senml::RawRecord<'r>>,
    to: Format,
    framing: Framing,
) -> Result<(), String> {
    let mut out = senml::writer(to, Stdout::new(), framing);
    for r in records {
        out.write(&r)
            .map_err(|e| format!("cannot write {to}: {e}"))?;
    }
    out.finish().map_err(|e| format!("cannot write {to}: {e}"))
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Input {
    fn name(&self) -> String {
        match &self.file {
            Some(path) if path != Path::new("-") => path.display().to_string(),
            _ => "<stdin>".into(),
        }
    }

    fn error(&self, e: senml::Error) -> String {
        format!("{}: {e}", self.name())
    }

    /// The input as a buffered reader, with its format.
    fn open(&self) -> Result<(Box<dyn BufRead>, Format), String> {
        let mut reader: Box<dyn BufRead> = match &self.file {
            Some(path) if path != Path::new("-") => {
                let file =
                    File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                // Small: the decoders buffer in large chunks, which then go
                // past this buffer straight to the file.
                Box::new(BufReader::with_capacity(8 * 1024, file))
            }
            _ => Box::new(BufReader::with_capacity(8 * 1024, io::stdin())),
        };
        let format = match (self.from, self.file.as_deref().and_then(Format::from_path)) {
            (Some(f), _) | (None, Some(f)) => f,
            (None, None) => {
                let head = reader
                    .fill_buf()
                    .map_err(|e| format!("cannot read {}: {e}", self.name()))?;
                if head.is_empty() {
                    return Err(format!("{}: the input is empty", self.name()));
                }
                Format::sniff(head).ok_or_else(|| {
                    format!("{}: cannot tell the encoding from the first bytes; say --from json|cbor|xml", self.name())
                })?
            }
        };
        Ok((reader, format))
    }

    /// The whole input in memory, with its format.
    fn read_all(&self) -> Result<(Vec<u8>, Format), String> {
        let (mut reader, format) = self.open()?;
        // Sized from the file up front: a growing buffer would copy the input several times.
        let size = match &self.file {
            Some(path) if path != Path::new("-") => {
                std::fs::metadata(path).map_or(0, |m| m.len() as usize)
            }
            _ => 0,
        };
        let mut bytes = Vec::with_capacity(size + 1);
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read {}: {e}", self.name()))?;
        Ok((bytes, format))
    }
}

/// Standard output, buffered by the writers; a closed pipe (`| head`) ends
/// the program quietly instead of reporting an error.
struct Stdout(io::Stdout);

impl Stdout {
    fn new() -> Self {
        Stdout(io::stdout())
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        quiet_on_broken_pipe(self.0.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        quiet_on_broken_pipe(self.0.flush())
    }
}

fn quiet_on_broken_pipe<T>(result: io::Result<T>) -> io::Result<T> {
    if let Err(e) = &result
        && e.kind() == io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
    result
}
