//! The `fedwatt` binary: command-line interface and wiring.

// Nothing that comes from outside is unwrapped; tests may.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod senml_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// fedwatt: an open, federated exchange for energy data with flexibility control.
#[derive(Parser)]
#[command(name = "fedwatt", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with SenML packs (RFC 8428): resolve, convert, validate.
    #[command(subcommand)]
    Senml(senml_cmd::SenmlCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
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
