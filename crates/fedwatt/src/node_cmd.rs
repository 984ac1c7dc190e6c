//! The commands that act on a node's store: `serve`, `import`, `token`,
//! `stream`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use senml::{Format, RecordReader, Resolver};
use store::{Metadata, Scope, Store, StreamPattern};

use crate::config::Config;

/// Options every node command takes.
#[derive(Args, Clone, Debug)]
pub struct NodeOptions {
    /// Configuration file (TOML); every key has a default.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (overrides the configuration's data_dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl NodeOptions {
    /// The configuration: defaults, file, environment, then flags.
    pub fn config(&self) -> Result<Config, String> {
        let mut config = Config::load(self.config.as_deref(), std::env::vars())?;
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        Ok(config)
    }

    pub(crate) fn store(&self) -> Result<(Config, Store), String> {
        let config = self.config()?;
        let store = open_store(&config)?;
        Ok((config, store))
    }
}

pub fn open_store(config: &Config) -> Result<Store, String> {
    let url = config.database_url()?;
    Store::open(url.as_deref(), &config.data_dir, &config.store.timezone).map_err(|e| e.to_string())
}

/// `fedwatt serve`.
#[derive(Args)]
pub struct Serve {
    /// Address to listen on (overrides `[http] listen`).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// A `[control]` section in place of the configuration's (the demo's).
    #[arg(skip)]
    control: Option<crate::config::Control>,
}

impl Serve {
    /// Serving on `listen`.
    pub fn on(listen: String) -> Serve {
        Serve {
            listen: Some(listen),
            control: None,
        }
    }

    /// Driving what `control` says, whatever the configuration says.
    pub fn driving(mut self, control: crate::config::Control) -> Serve {
        self.control = Some(control);
        self
    }
}

pub fn serve(options: &NodeOptions, serve: Serve) -> Result<ExitCode, String> {
    let mut config = options.config()?;
    if let Some(listen) = serve.listen {
        config.http.listen = listen;
    }
    if let Some(control) = serve.control {
        config.control = control;
    }
    let store = open_store(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let outcome =
        components(&config, &store).and_then(|node| runtime.block_on(node.run(shutdown_signal())));
    // The runtime goes first, with the tasks holding the store (a store
    // call still running on a blocking thread is given a few seconds); the
    // store's connections are closed last, outside any async context (a
    // PostgreSQL client may not be dropped inside one).
    runtime.shutdown_timeout(Duration::from_secs(5));
    drop(store);
    outcome?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The node's components, in starting order, built from the configuration:
/// each is checked here, so that a wrong setting stops `serve` before
/// anything runs.
fn components(config: &Config, store: &Store) -> Result<node::Node, String> {
    let mut node = node::Node::new(store.clone());
    node.add(node::Purge::every(Duration::from_secs(
        config.store.purge_interval,
    )));
    let timezone = store::time_zone(&config.store.timezone)?;
    let broker_tls = |ca_file: Option<&Path>| tls::configured("[control]", ca_file);
    connectors::add_to(&mut node, &config.connector)?;
    let control = control_mqtt::add_to(&mut node, &config.control, store, timezone, &broker_tls)?;
    let xmpp = config.xmpp()?;
    let name = xmpp
        .as_ref()
        .map_or_else(|| "fedwatt".to_owned(), |x| x.jid.clone());
    match xmpp {
        Some(xmpp) => node.add(
            federation::Federation::new(
                xmpp,
                crate::fed_cmd::audit_key(config)?,
                Duration::from_secs(config.audit.checkpoint_interval),
            )
            .map_err(|e| e.to_string())?,
        ),
        None => tracing::info!("no [xmpp] jid configured: running without federation"),
    }
    let http = api::Http::bind(&config.http, store.clone(), control)?.named(name);
    let address = http.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        "fedwatt {} serving http://{address}/ ({})",
        env!("CARGO_PKG_VERSION"),
        store.describe()
    );
    node.add(http);
    Ok(node)
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return interrupt.await.unwrap_or(()),
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await.unwrap_or(());
}

/// `fedwatt import …`.
#[derive(Subcommand)]
pub enum ImportCommand {
    /// Store SenML packs from files (JSON, CBOR or XML, by extension or
    /// content), each in one transaction, without the HTTP server.
    Senml {
        /// Pack files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// "Now" for relative times, in seconds since the Unix epoch.
        #[arg(long, value_name = "SECONDS")]
        now: Option<f64>,
        /// Owner recorded on the streams this creates.
        #[arg(long, default_value = "import")]
        owner: String,
        /// Store each file in transactions of at most this many records,
        /// after checking the whole file first. By default a file is one
        /// transaction, and a file over 64 MiB goes in batches of 500,000
        /// records, so that it never has to fit in memory.
        #[arg(long, value_name = "RECORDS")]
        batch: Option<usize>,
    },
}

/// Files up to this size are stored in one transaction by default.
const WHOLE_FILE_BYTES: u64 = 64 << 20;

/// Records per transaction for larger files, by default.
const BATCH_RECORDS: usize = 500_000;

pub fn import(options: &NodeOptions, command: ImportCommand) -> Result<ExitCode, String> {
    let ImportCommand::Senml {
        files,
        now,
        owner,
        batch,
    } = command;
    if batch == Some(0) {
        return Err("--batch must be at least 1".into());
    }
    let (_, store) = options.store()?;
    let now = now.unwrap_or_else(|| store::Time::now().as_secs_f64());
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let (mut points, mut failed) = (0u64, 0usize);
    for file in &files {
        bar.set_message(file.display().to_string());
        let size = std::fs::metadata(file).map_or(0, |m| m.len());
        let batch = batch.or((size > WHOLE_FILE_BYTES).then_some(BATCH_RECORDS));
        let outcome = match batch {
            None => import_file(&store, file, now, &owner),
            Some(batch) => import_in_batches(&store, file, now, &owner, batch, &bar),
        };
        match outcome {
            Ok(n) => {
                points += n;
                say(&bar, format!("{}: {n} points", file.display()));
            }
            Err(Refusal { why, stored }) => {
                failed += 1;
                points += stored;
                let kept = match stored {
                    0 => "nothing stored".to_owned(),
                    n => format!("the {n} points of the batches before were stored"),
                };
                say(&bar, format!("{}: refused, {kept}: {why}", file.display()));
            }
        }
        bar.inc(std::fs::metadata(file).map_or(0, |m| m.len()));
    }
    bar.finish_and_clear();
    eprintln!(
        "{points} points stored from {} files; {failed} refused",
        files.len() - failed
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints a line above the progress bar, or on standard error without one.
fn say(bar: &indicatif::ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// Why a file was refused, and how many of its points were stored before.
struct Refusal {
    why: String,
    stored: u64,
}

impl From<String> for Refusal {
    fn from(why: String) -> Refusal {
        Refusal { why, stored: 0 }
    }
}

fn format_of(path: &Path, head: &[u8]) -> Result<Format, String> {
    Format::from_path(path)
        .or_else(|| Format::sniff(head))
        .ok_or_else(|| "cannot tell the encoding: name the file .json, .cbor or .xml".into())
}

/// The whole file in one transaction.
fn import_file(store: &Store, path: &Path, now: f64, owner: &str) -> Result<u64, Refusal> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let format = format_of(path, &bytes)?;
    let records = senml::resolve_slice_indexed(&bytes, format, now).map_err(|e| e.to_string())?;
    Ok(store
        .ingest(&records, Some(owner))
        .map_err(|e| e.to_string())?)
}

/// A file read twice as a stream, in constant memory: checked whole, then
/// stored `batch` records per transaction.
fn import_in_batches(
    store: &Store,
    path: &Path,
    now: f64,
    owner: &str,
    batch: usize,
    bar: &indicatif::ProgressBar,
) -> Result<u64, Refusal> {
    let open = || {
        std::fs::File::open(path)
            .map(std::io::BufReader::new)
            .map_err(|e| e.to_string())
    };
    let mut head = [0u8; 64];
    let read = std::io::Read::read(&mut open()?, &mut head).map_err(|e| e.to_string())?;
    let format = format_of(path, &head[..read])?;

    let mut first_error = None;
    senml::validate(RecordReader::from_reader(open()?, format), now, |e| {
        first_error.get_or_insert(e);
    });
    if let Some(e) = first_error {
        return Err(e.to_string().into());
    }

    let mut reader = RecordReader::from_reader(open()?, format);
    let mut resolver = Resolver::validating(now);
    let mut pending: Vec<(usize, senml::Record)> = Vec::with_capacity(batch.min(BATCH_RECORDS));
    let mut stored = 0;
    let flush = |pending: &mut Vec<(usize, senml::Record)>, stored: &mut u64| {
        let n = store.ingest(pending, Some(owner)).map_err(|e| Refusal {
            why: e.to_string(),
            stored: *stored,
        })?;
        *stored += n;
        pending.clear();
        bar.set_message(format!("{}: {stored} points", path.display()));
        Ok::<(), Refusal>(())
    };
    loop {
        let index = resolver.records_seen();
        let pushed = reader
            .next_with(|raw| resolver.push(raw).map(|r| r.cloned()))
            .map_err(|e| Refusal {
                why: e.to_string(),
                stored,
            })?;
        match pushed {
            None => break,
            Some(Err(e)) => {
                return Err(Refusal {
                    why: e.to_string(),
                    stored,
                });
            }
            Some(Ok(Some(record))) => {
                pending.push((index, record));
                if pending.len() == batch {
                    flush(&mut pending, &mut stored)?;
                }
            }
            Some(Ok(None)) => {}
        }
    }
    if !pending.is_empty() {
        flush(&mut pending, &mut stored)?;
    }
    Ok(stored)
}

/// `fedwatt token …`.
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (shown once; the node keeps a hash).
    Create {
        /// Unique name: who or what uses it.
        #[arg(long)]
        name: String,
        /// read, write (includes read) or admin (includes write).
        #[arg(long)]
        scope: Scope,
        /// Streams it may use: a name, or a pattern with `*`.
        #[arg(long, value_name = "PATTERN", default_value = "*")]
        streams: StreamPattern,
    },
    /// List tokens (never their secrets).
    List,
    /// Delete a token; requests with it are refused from now on.
    Revoke {
        /// The token's name.
        name: String,
    },
}

pub fn token(options: &NodeOptions, command: TokenCommand) -> Result<ExitCode, String> {
    let (_, store) = options.store()?;
    match command {
        TokenCommand::Create {
            name,
            scope,
            streams,
        } => {
            let secret = store
                .create_token(&name, scope, streams)
                .map_err(|e| e.to_string())?;
            println!("{secret}");
        }
        TokenCommand::List => {
            for t in store.tokens().map_err(|e| e.to_string())? {
                println!(
                    "{}\t{}\t{}\t{}",
                    t.name,
                    t.scope,
                    t.streams.as_str(),
                    store::format_time(t.created, &jiff_utc())
                );
            }
        }
        TokenCommand::Revoke { name } => {
            if !store.revoke_token(&name).map_err(|e| e.to_string())? {
                return Err(format!("no token named {name:?}"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn jiff_utc() -> store::TimeZone {
    store::TimeZone::UTC
}

/// `fedwatt stream …`.
#[derive(Subcommand)]
pub enum StreamCommand {
    /// List streams: name, unit, kind, points, open.
    List {
        /// Only names starting with this.
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Change a stream's publication or metadata.
    Set {
        /// The stream's name.
        name: String,
        /// Readable without a token (published as open data), or not.
        #[arg(long)]
        open: Option<bool>,
        /// Metadata, as JSON (replaces the current metadata).
        #[arg(long, value_name = "JSON")]
        metadata: Option<String>,
    },
}

pub fn stream(options: &NodeOptions, command: StreamCommand) -> Result<ExitCode, String> {
    let (_, store) = options.store()?;
    match command {
        StreamCommand::List { prefix } => {
            for s in store
                .streams(prefix.as_deref())
                .map_err(|e| e.to_string())?
            {
                let open = if s.open { "open" } else { "private" };
                println!(
                    "{}\t{}\t{}\t{}\t{open}",
                    s.name,
                    s.unit.as_deref().unwrap_or("-"),
                    s.kind,
                    s.count
                );
            }
        }
        StreamCommand::Set {
            name,
            open,
            metadata,
        } => {
            let current = store
                .stream(&name)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no stream named {name:?}"))?;
            let metadata = match metadata {
                Some(json) => serde_json::from_str::<Metadata>(&json)
                    .map_err(|e| format!("--metadata: {e}"))?,
                None => current.metadata,
            };
            store
                .set_stream(&name, &metadata, open.unwrap_or(current.open))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
