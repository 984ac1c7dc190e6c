//! `fedwatt user …`: the accounts people sign in with to the web UI.
//!
//! A password is read from `--password-file` (its first line), else from
//! standard input: prompted for twice without echo on a terminal, or one
//! line read from a pipe.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use store::{AccountChange, NewAccount, Role, StreamPattern};

use crate::node_cmd::NodeOptions;

/// `fedwatt user …`.
#[derive(Subcommand)]
pub enum UserCommand {
    /// Create an account.
    Add {
        /// Its name: 1 to 64 of a-z, 0-9, dot, underscore, hyphen.
        name: String,
        /// admin (everything), operator (reads all, writes readings) or
        /// member (reads open streams and their own).
        #[arg(long)]
        role: Role,
        /// The name shown to people.
        #[arg(long, value_name = "TEXT")]
        display_name: String,
        /// A stream, or a pattern with `*`, the account owns (besides the
        /// streams whose owner is its name); repeatable.
        #[arg(long = "stream", value_name = "PATTERN")]
        streams: Vec<StreamPattern>,
        /// The stream of the account's household consumption.
        #[arg(long, value_name = "STREAM")]
        consumption: Option<String>,
        /// Read the password from this file's first line.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// List accounts: name, role, display name, streams, consumption stream.
    List,
    /// Set an account's password (its sessions end).
    Passwd {
        /// The account's name.
        name: String,
        /// Read the password from this file's first line.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Delete an account and its sessions.
    Remove {
        /// The account's name.
        name: String,
    },
}

pub fn user(options: &NodeOptions, command: UserCommand) -> Result<ExitCode, String> {
    let (_, store) = options.store()?;
    match command {
        UserCommand::Add {
            name,
            role,
            display_name,
            streams,
            consumption,
            password_file,
        } => {
            store::check_account_name(&name).map_err(|e| e.to_string())?;
            let password = password(password_file.as_deref(), &name)?;
            let new = NewAccount {
                name,
                display_name,
                role,
                password,
                streams,
                consumption_stream: consumption,
            };
            store.add_account(&new).map_err(|e| e.to_string())?;
        }
        UserCommand::List => {
            for a in store.accounts().map_err(|e| e.to_string())? {
                let streams: Vec<&str> = a.streams.iter().map(StreamPattern::as_str).collect();
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    a.name,
                    a.role,
                    a.display_name,
                    if streams.is_empty() {
                        "-".to_owned()
                    } else {
                        streams.join(",")
                    },
                    a.consumption_stream.as_deref().unwrap_or("-"),
                );
            }
        }
        UserCommand::Passwd {
            name,
            password_file,
        } => {
            if store.account(&name).map_err(|e| e.to_string())?.is_none() {
                return Err(format!("no account named {name:?}"));
            }
            let change = AccountChange {
                password: Some(password(password_file.as_deref(), &name)?),
                ..AccountChange::default()
            };
            store
                .update_account(&name, &change)
                .map_err(|e| e.to_string())?;
        }
        UserCommand::Remove { name } => {
            if !store.remove_account(&name).map_err(|e| e.to_string())? {
                return Err(format!("no account named {name:?}"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The first line of `text`, without its line ending.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// The password for account `name`: from `file`, the terminal, or stdin.
fn password(file: Option<&Path>, name: &str) -> Result<String, String> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("password file {}: {e}", file.display()))?;
        return Ok(first_line(&text).to_owned());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("reading the password from standard input: {e}"))?;
        return Ok(first_line(&line).to_owned());
    }
    let first = prompt(&format!("Password for {name}: "))?;
    let again = prompt("The same password again: ")?;
    if first != again {
        return Err("the two passwords differ; nothing changed".into());
    }
    Ok(first)
}

/// Asks on the terminal, reading the answer without echo.
fn prompt(question: &str) -> Result<String, String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let failed = |e: std::io::Error| format!("reading the password from the terminal: {e}");
    let mut stderr = std::io::stderr();
    write!(stderr, "{question}")
        .and_then(|()| stderr.flush())
        .map_err(failed)?;
    let saved = tcgetattr(&stdin).map_err(|e| failed(e.into()))?;
    let mut quiet = saved.clone();
    quiet.local_modes -= LocalModes::ECHO;
    tcsetattr(&stdin, OptionalActions::Now, &quiet).map_err(|e| failed(e.into()))?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    // The echo comes back whatever was read.
    let restored = tcsetattr(&stdin, OptionalActions::Now, &saved);
    let _ = writeln!(stderr);
    read.map_err(failed)?;
    restored.map_err(|e| failed(e.into()))?;
    Ok(first_line(&line).to_owned())
}
