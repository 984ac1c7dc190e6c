//! The federation's commands: `grant`, `peer`, `audit`.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use store::{NewGrant, SigningKey, Store, StreamPattern, TimeZone};

use crate::config::Config;
use crate::node_cmd::{NodeOptions, open_store};

/// `fedwatt grant …`: the owners' consents.
#[derive(Subcommand)]
pub enum GrantCommand {
    /// Let a peer receive streams.
    Add(GrantAdd),
    /// List the grants, revoked ones included.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a grant: its pushes stop at once, and the peer is told to
    /// delete what it received under it.
    Revoke {
        /// The grant's number (see `grant list`).
        id: i64,
    },
}

/// `fedwatt grant add`.
#[derive(Args)]
pub struct GrantAdd {
    /// The peer's bare JID (`fedwatt@agency.example`).
    #[arg(long, value_name = "BAREJID")]
    to: String,
    /// The streams: a name, or a pattern with `*` (`urn:dev:prm:300016*`).
    #[arg(long, value_name = "PATTERN")]
    streams: String,
    /// Why the owner consents.
    #[arg(long)]
    purpose: Option<String>,
    /// In force from this date (`2026-01-01` UTC, or RFC 3339).
    #[arg(long, value_name = "DATE")]
    from: Option<String>,
    /// In force until this date, excluded.
    #[arg(long, value_name = "DATE")]
    until: Option<String>,
    /// How far back the peer may read (ISO 8601 duration: `P1Y`, `P30D`).
    #[arg(long, value_name = "DURATION")]
    max_history: Option<String>,
    /// The peer gets means over this period, never raw points (`PT1H`).
    #[arg(long, value_name = "DURATION")]
    min_aggregation: Option<String>,
    /// How long the peer may keep the data (`P1Y`).
    #[arg(long, value_name = "DURATION")]
    retention: Option<String>,
}

/// A date (`2026-01-01`, midnight UTC) or an instant (RFC 3339), in µs.
fn parse_date(what: &str, text: &str) -> Result<i64, String> {
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return date
            .to_zoned(TimeZone::UTC)
            .map(|z| z.timestamp().as_microsecond())
            .map_err(|e| format!("--{what} {text}: {e}"));
    }
    store::parse_time(text).map_err(|e| format!("--{what}: {e}"))
}

fn time_or_dash(t: Option<i64>) -> String {
    t.map_or("-".into(), |t| store::format_time(t, &TimeZone::UTC))
}

pub fn grant(options: &NodeOptions, command: GrantCommand) -> Result<ExitCode, String> {
    let config = options.config()?;
    let store = open_store(&config)?;
    match command {
        GrantCommand::Add(add) => {
            let grant = NewGrant {
                grantee: add.to,
                streams: add
                    .streams
                    .parse::<StreamPattern>()
                    .map_err(|e| format!("--streams: {e}"))?,
                purpose: add.purpose,
                from: add
                    .from
                    .as_deref()
                    .map(|d| parse_date("from", d))
                    .transpose()?,
                until: add
                    .until
                    .as_deref()
                    .map(|d| parse_date("until", d))
                    .transpose()?,
                max_history: add.max_history,
                min_aggregation: add.min_aggregation,
                retention: add.retention,
            };
            let g = store.add_grant(&grant).map_err(|e| e.to_string())?;
            println!(
                "grant {} given to {} for {}",
                g.id,
                g.grantee,
                g.streams.as_str()
            );
        }
        GrantCommand::List { json } => {
            let grants = store.grants().map_err(|e| e.to_string())?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&grants).map_err(|e| e.to_string())?
                );
                return Ok(ExitCode::SUCCESS);
            }
            let now = store::Time::now().as_micros();
            println!(
                "{:>4}  {:<8}  {:<30}  {:<36}  {:<20}  {:<20}  terms / purpose",
                "id", "state", "to", "streams", "from", "until"
            );
            for g in grants {
                let state = if g.revoked.is_some() {
                    "revoked"
                } else if g.is_active(now) {
                    "active"
                } else {
                    "inactive"
                };
                let mut terms = Vec::new();
                if let Some(h) = &g.max_history {
                    terms.push(format!("history {h}"));
                }
                if let Some(a) = &g.min_aggregation {
                    terms.push(format!("means of {a}"));
                }
                if let Some(r) = &g.retention {
                    terms.push(format!("keep {r}"));
                }
                if let Some(p) = &g.purpose {
                    terms.push(format!("\"{p}\""));
                }
                println!(
                    "{:>4}  {:<8}  {:<30}  {:<36}  {:<20}  {:<20}  {}",
                    g.id,
                    state,
                    g.grantee,
                    g.streams.as_str(),
                    time_or_dash(g.from),
                    time_or_dash(g.until),
                    terms.join(", ")
                );
            }
        }
        GrantCommand::Revoke { id } => {
            let g = store.revoke_grant(id).map_err(|e| e.to_string())?;
            println!(
                "grant {id} revoked: {} receives nothing more, and is told to delete what it received under it",
                g.grantee
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `fedwatt peer …`: ask another node, over XMPP.
#[derive(Subcommand)]
pub enum PeerCommand {
    /// Fetch the history of a stream and store it.
    History {
        /// The peer node's full JID (`fedwatt@agency.example/node`).
        jid: String,
        /// The stream's identifier (its SenML name).
        identifier: String,
        /// Start (RFC 3339 with offset); default: as far back as granted.
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// End, excluded (RFC 3339 with offset); default: the latest.
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
    },
    /// Subscribe: the peer pushes the stream's new records to this node.
    Subscribe {
        /// The peer node's full JID.
        jid: String,
        /// The stream's identifier.
        identifier: String,
    },
    /// End a subscription.
    Unsubscribe {
        /// The peer node's full JID.
        jid: String,
        /// The stream's identifier.
        identifier: String,
    },
    /// The streams the peer lets this node see.
    Catalogue {
        /// The peer node's full JID.
        jid: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn peer(options: &NodeOptions, command: PeerCommand) -> Result<ExitCode, String> {
    let config = options.config()?;
    let xmpp = config
        .xmpp()?
        .ok_or("the node has no [xmpp] section (jid, password): it is not part of a federation")?;
    let store = open_store(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let outcome = runtime.block_on(async {
        let jid = match &command {
            PeerCommand::History { jid, .. }
            | PeerCommand::Subscribe { jid, .. }
            | PeerCommand::Unsubscribe { jid, .. }
            | PeerCommand::Catalogue { jid, .. } => jid,
        };
        let (_, peer) = federation::peer::peer_jid(jid).map_err(|e| e.to_string())?;
        let mut session = federation::peer::Session::open(&xmpp)
            .await
            .map_err(|e| e.to_string())?;
        let result = match command {
            PeerCommand::History { identifier, from, to, .. } => {
                federation::peer::history(&mut session, &store, &peer, &identifier, from, to)
                    .await
                    .map(|o| {
                        println!(
                            "{} records of {identifier} received from {} (grant {}, {} answer{})",
                            o.records,
                            peer.to_bare(),
                            o.grant.unwrap_or(0),
                            o.pages,
                            if o.pages == 1 { "" } else { "s" }
                        );
                    })
            }
            PeerCommand::Subscribe { identifier, .. } => {
                federation::peer::subscribe(&mut session, &store, &peer, &identifier)
                    .await
                    .map(|grant| {
                        println!(
                            "subscribed to {identifier} at {} (grant {}): new records are pushed to this node",
                            peer.to_bare(),
                            grant.unwrap_or(0)
                        );
                    })
            }
            PeerCommand::Unsubscribe { identifier, .. } => {
                federation::peer::unsubscribe(&mut session, &store, &peer, &identifier)
                    .await
                    .map(|()| println!("unsubscribed from {identifier} at {}", peer.to_bare()))
            }
            PeerCommand::Catalogue { json, .. } => {
                federation::peer::catalogue(&mut session, &peer).await.map(|entries| {
                    if json {
                        let list: Vec<_> = entries
                            .iter()
                            .map(|e| serde_json::json!({
                                "name": e.name, "unit": e.unit, "count": e.count,
                                "first": e.first, "last": e.last, "grant": e.grant,
                                "min_aggregation": e.min_aggregation, "max_history": e.max_history,
                            }))
                            .collect();
                        println!("{}", serde_json::Value::Array(list));
                    } else {
                        for e in entries {
                            println!(
                                "{:<60} {:>8} {:<6} {} … {} (grant {}{})",
                                e.name,
                                e.count,
                                e.unit.unwrap_or_default(),
                                e.first.unwrap_or("-".into()),
                                e.last.unwrap_or("-".into()),
                                e.grant,
                                e.min_aggregation.map(|a| format!(", means of {a}")).unwrap_or_default()
                            );
                        }
                    }
                })
            }
        };
        session.close().await;
        result.map_err(|e| e.to_string())
    });
    drop(runtime);
    drop(store);
    outcome?;
    Ok(ExitCode::SUCCESS)
}

/// `fedwatt audit …`: the federation's tamper-evident trail.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Re-check the hash chain and the signed checkpoints.
    Verify {
        /// The node's public key (64 hex digits); default: the key of this
        /// node's key file.
        #[arg(long, value_name = "PUBKEY")]
        key: Option<String>,
    },
    /// Print audit entries.
    Show {
        /// First entry to print.
        #[arg(long, default_value_t = 1)]
        from: i64,
        /// Entries to print at most.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the node's public key, for those who verify its trail.
    Key,
}

/// The node's audit key: read from its file, or created there (mode 0600).
pub fn audit_key(config: &Config) -> Result<SigningKey, String> {
    let path = config.audit_key_file();
    match std::fs::read_to_string(&path) {
        Ok(text) => store::signing_key_from_hex(&text)
            .map_err(|e| format!("audit key {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key(&path),
        Err(e) => Err(format!("audit key {}: {e}", path.display())),
    }
}

fn create_key(path: &Path) -> Result<SigningKey, String> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let key = store::new_signing_key().map_err(|e| e.to_string())?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let mut file = options
        .open(path)
        .map_err(|e| format!("audit key {}: {e}", path.display()))?;
    file.write_all(format!("{hex}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("audit key {}: {e}", path.display()))?;
    Ok(key)
}

fn public_hex(key: &SigningKey) -> String {
    key.verifying_key()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn audit(options: &NodeOptions, command: AuditCommand) -> Result<ExitCode, String> {
    let config = options.config()?;
    match command {
        AuditCommand::Key => {
            println!("{}", public_hex(&audit_key(&config)?));
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify { key } => {
            let store: Store = open_store(&config)?;
            let public = match key {
                Some(hex) => store::verifying_key_from_hex(&hex).map_err(|e| e.to_string())?,
                None => audit_key(&config)?.verifying_key(),
            };
            let report = store.verify_audit(public).map_err(|e| e.to_string())?;
            match report.broken {
                None => {
                    println!(
                        "audit trail intact: {} entries, {} signed checkpoint{}{}",
                        report.entries,
                        report.checkpoints,
                        if report.checkpoints == 1 { "" } else { "s" },
                        report
                            .last_checkpoint
                            .map(|s| format!(", the last at entry {s}"))
                            .unwrap_or_default()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Some((seq, why)) => {
                    println!(
                        "audit trail BROKEN at entry {seq}: {why} ({} entries before it hold)",
                        report.entries
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        AuditCommand::Show { from, limit, json } => {
            let store: Store = open_store(&config)?;
            for e in store
                .audit_entries(from, limit)
                .map_err(|e| e.to_string())?
            {
                if json {
                    println!("{}", serde_json::to_string(&e).map_err(|e| e.to_string())?);
                } else {
                    println!(
                        "{:>6}  {}  {:<9} {:<28} {}{}",
                        e.seq,
                        store::format_time(e.time, &TimeZone::UTC),
                        e.kind,
                        e.peer.as_deref().unwrap_or("-"),
                        e.detail,
                        if e.signature.is_some() {
                            "  [signed]"
                        } else {
                            ""
                        }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
