//! The commands that act on a node's store: `serve`, `import`, `token`,
//! `stream`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use senml::Format;
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

    fn store(&self) -> Result<(Config, Store), String> {
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
}

impl Serve {
    /// Serving on `listen`.
    pub fn on(listen: String) -> Serve {
        Serve {
            listen: Some(listen),
        }
    }
}

pub fn serve(options: &NodeOptions, serve: Serve) -> Result<ExitCode, String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FEDWATT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let mut config = options.config()?;
    if let Some(listen) = serve.listen {
        config.http.listen = listen;
    }
    let store = open_store(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let served = store.clone();
    let outcome = runtime.block_on(async move {
        let store = served;
        let listener = tokio::net::TcpListener::bind(&config.http.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.http.listen))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(
            "fedwatt {} serving http://{address}/ ({})",
            env!("CARGO_PKG_VERSION"),
            store.describe()
        );
        tokio::spawn(purge_periodically(
            store.clone(),
            Duration::from_secs(config.store.purge_interval.max(1)),
        ));
        let app = api::Api::new(store, config.http.body_limit).router();
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|e| format!("the HTTP server failed: {e}"))
    });
    // The runtime goes first, with the tasks holding the store; the store's
    // connections are closed last, outside any async context (a PostgreSQL
    // client may not be dropped inside one).
    drop(runtime);
    drop(store);
    outcome?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn purge_periodically(store: Store, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.purge(store::now_micros())).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!("retention: purged {n} points"),
            Ok(Err(e)) => tracing::error!("retention purge failed: {e}"),
            Err(e) => tracing::error!("retention purge failed: {e}"),
        }
    }
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
    tracing::info!("shutting down");
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
    },
}

pub fn import(options: &NodeOptions, command: ImportCommand) -> Result<ExitCode, String> {
    let ImportCommand::Senml { files, now, owner } = command;
    let (_, store) = options.store()?;
    let now = now.unwrap_or_else(|| store::now_micros() as f64 / 1e6);
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
        match import_file(&store, file, now, &owner) {
            Ok(n) => {
                points += n;
                bar.println(format!("{}: {n} points", file.display()));
            }
            Err(e) => {
                failed += 1;
                bar.println(format!("{}: refused, nothing stored: {e}", file.display()));
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

fn import_file(store: &Store, path: &Path, now: f64, owner: &str) -> Result<u64, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let format = Format::from_path(path)
        .or_else(|| Format::sniff(&bytes))
        .ok_or("cannot tell the encoding: name the file .json, .cbor or .xml")?;
    let records = senml::resolve_slice_indexed(&bytes, format, now).map_err(|e| e.to_string())?;
    store
        .ingest(&records, Some(owner))
        .map_err(|e| e.to_string())
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
