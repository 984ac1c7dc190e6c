//! The `fedwatt` binary: command-line interface and wiring.

// Nothing that comes from outside is unwrapped; tests may.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod demo_cmd;
mod demo_data;
mod demo_household;
mod device_cmd;
mod fed_cmd;
mod node_cmd;
mod senml_cmd;
mod user_cmd;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// fedwatt: an open, federated exchange for energy data with flexibility control.
#[derive(Parser)]
#[command(name = "fedwatt", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    node: node_cmd::NodeOptions,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the node: the HTTP API on its store, and the XMPP federation
    /// when `[xmpp]` is configured.
    Serve(node_cmd::Serve),
    /// Run a node with a year of sample data (in ./fedwatt-demo unless
    /// --data-dir says otherwise), and print how to explore it.
    Demo(demo_cmd::Demo),
    /// Load data into the store without the HTTP server.
    #[command(subcommand)]
    Import(node_cmd::ImportCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(node_cmd::TokenCommand),
    /// Manage the accounts people sign in with to the web UI.
    #[command(subcommand)]
    User(user_cmd::UserCommand),
    /// List streams, publish them, set their metadata.
    #[command(subcommand)]
    Stream(node_cmd::StreamCommand),
    /// Owners' consents: which peer may receive which streams.
    #[command(subcommand)]
    Grant(fed_cmd::GrantCommand),
    /// Ask another node over the XMPP federation: history, subscriptions, catalogue.
    #[command(subcommand)]
    Peer(fed_cmd::PeerCommand),
    /// The federation's audit trail: verify it, show it.
    #[command(subcommand)]
    Audit(fed_cmd::AuditCommand),
    /// The equipments the node drives and their devices: list, show, add,
    /// remove.
    #[command(subcommand)]
    Device(device_cmd::DeviceCommand),
    /// Work with SenML packs (RFC 8428): resolve, convert, validate.
    #[command(subcommand)]
    Senml(senml_cmd::SenmlCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A node tells what it does; a command only what went wrong.
    let running = matches!(cli.command, Command::Serve(_) | Command::Demo(_));
    init_logging(if running { "info" } else { "warn" });
    let result = match cli.command {
        Command::Serve(serve) => node_cmd::serve(&cli.node, serve),
        Command::Demo(demo) => demo_cmd::run(&cli.node, demo),
        Command::Import(command) => node_cmd::import(&cli.node, command),
        Command::Token(command) => node_cmd::token(&cli.node, command),
        Command::User(command) => user_cmd::user(&cli.node, command),
        Command::Stream(command) => node_cmd::stream(&cli.node, command),
        Command::Grant(command) => fed_cmd::grant(&cli.node, command),
        Command::Peer(command) => fed_cmd::peer(&cli.node, command),
        Command::Audit(command) => fed_cmd::audit(&cli.node, command),
        Command::Device(command) => device_cmd::device(&cli.node, command),
        Command::Senml(command) => senml_cmd::run(command),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("fedwatt: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr at the level `FEDWATT_LOG` gives (`info`,
/// `warn,federation=debug`, …), else at `default`. Libraries that log
/// with the `log` crate (the XMPP and MQTT clients) are included.
fn init_logging(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FEDWATT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
