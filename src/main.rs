//! The `rowhook` command line. The only place that uses anyhow: everything below it
//! returns typed errors, and this file decides exit codes and how errors are printed.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rowhook",
    version,
    about = "Turns row changes in PostgreSQL into HTTP webhooks"
)]
struct Arguments {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        env = "ROWHOOK_CONFIG",
        default_value = "config/rowhook.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration and, unless --offline, the database side of it.
    Check {
        /// Only validate the file: do not connect to the database.
        #[arg(long)]
        offline: bool,
    },
    /// Create the publication and the replication slot capture needs (idempotent).
    Setup {
        /// Also set REPLICA IDENTITY FULL on the models' tables, so old rows are known.
        #[arg(long)]
        replica_identity_full: bool,
    },
    /// Print captured changes as JSON lines from a temporary slot; delivers nothing.
    Tail,
    /// The service: capture, store, deliver.
    Run,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    cli::init_logging(matches!(arguments.command, Command::Tail));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match arguments.command {
            Command::Check { offline } => cli::check::run(&arguments.config, offline).await,
            Command::Setup {
                replica_identity_full,
            } => cli::setup::run(&arguments.config, replica_identity_full).await,
            Command::Tail => cli::tail::run(&arguments.config).await,
            Command::Run => cli::run::run(&arguments.config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
