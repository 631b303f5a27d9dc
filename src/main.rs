//! The `rowhook` command line. The only place that uses anyhow: everything below it
//! returns typed errors, and this file decides exit codes and how errors are printed.

mod cli;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rowhook::event::Status;
use rowhook::inbound::InboundOutcome;

/// jemalloc, with dirty pages given back within a second by its background thread.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8] =
    b"background_thread:true,narenas:2,dirty_decay_ms:100,muzzy_decay_ms:0\0";

#[derive(Parser)]
#[command(
    name = "rowhook",
    version,
    about = "Turns row changes in PostgreSQL into HTTP webhooks"
)]
struct Arguments {
    /// The configuration file (`receive` and `demo` need none).
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
    /// Send a model's existing rows as `read` events: a job of the running service,
    /// followed here with a progress bar. `backfill list` and `backfill cancel ID`
    /// manage the jobs.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Backfill {
        #[command(subcommand)]
        command: Option<BackfillCommand>,
        /// The model whose rows to send.
        #[arg(required = true)]
        model: Option<String>,
        /// Send to this webhook only (repeatable); default: the model's active webhooks.
        #[arg(long = "webhook")]
        webhooks: Vec<String>,
        /// Only rows matching this SQL condition on the model's table. It is passed to
        /// PostgreSQL as it is and runs with rowhook's database rights.
        #[arg(long = "where")]
        condition: Option<String>,
        /// Rows per page (default 1000).
        #[arg(long)]
        batch: Option<u32>,
    },
    /// The webhooks: list them with their counts, pause and resume their delivery.
    Webhooks {
        #[command(subcommand)]
        command: WebhooksCommand,
    },
    /// The event history: list, show and redeliver events.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Inbound webhooks: the request log.
    Inbound {
        #[command(subcommand)]
        command: InboundCommand,
    },
    /// Render a sample `create` event for a webhook and send it once, now; stores nothing.
    SendTest {
        /// The webhook's name.
        webhook: String,
        /// The row to use as `item`, a JSON object; default: the newest row of the table.
        #[arg(long)]
        item: Option<String>,
    },
    /// A local receiver for trying webhooks: prints every request, verifies signatures.
    Receive {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        /// Verify Standard Webhooks signatures with this secret (whsec_…).
        #[arg(long)]
        secret: Option<String>,
        /// The HTTP status every request is answered with.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(100..=599))]
        status: u16,
    },
    /// rowhook end to end on a throwaway PostgreSQL: a shop schema, the service, a
    /// receiver, a few changes, the deliveries and the attempt log.
    Demo {
        /// Use this PostgreSQL server instead of starting one: the demo creates a database
        /// of its own there and drops it afterwards (the server needs wal_level = logical).
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum InboundCommand {
    /// Inbound requests, newest first: time, endpoint, outcome, status, event id.
    List {
        /// Only this endpoint's requests.
        #[arg(long)]
        endpoint: Option<String>,
        /// Only requests with this outcome: accepted, duplicate, unauthorized, method,
        /// too_large, bad_json, insert_failed, timeout.
        #[arg(long)]
        outcome: Option<InboundOutcome>,
        /// At most this many (0: all).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum WebhooksCommand {
    /// Every configured webhook: model, state (delivering, paused, inactive), counts.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop attempting a webhook's events; new events are still created and wait.
    Pause { name: String },
    /// Deliver a paused webhook's events again.
    Resume { name: String },
}

#[derive(Subcommand)]
enum BackfillCommand {
    /// Every backfill job, newest first.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop a running job after its current page.
    Cancel { id: u32 },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Events, newest first.
    List {
        /// Only this webhook's events.
        #[arg(long)]
        webhook: Option<String>,
        /// Only events with this status: pending, delivered or failed.
        #[arg(long)]
        status: Option<Status>,
        /// Only the events of one row of this model (with --key).
        #[arg(long, requires = "key")]
        model: Option<String>,
        /// The row's primary key: `42`, or `order_id=7,line=2` for a composite key.
        #[arg(long, requires = "model")]
        key: Option<String>,
        /// At most this many events (0: all).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// An event, the exact request it sends (secrets masked) and every attempt.
    Show {
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Queue an event (or, with --webhook and --status, every matching one) for an
    /// immediate attempt; attempts so far are kept.
    Redeliver {
        #[arg(required_unless_present = "webhook", conflicts_with = "webhook")]
        id: Option<String>,
        /// Redeliver every event of this webhook that has --status.
        #[arg(long, requires = "status")]
        webhook: Option<String>,
        /// With --webhook: the status of the events to redeliver (usually failed).
        #[arg(long, requires = "webhook")]
        status: Option<Status>,
    },
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    // Commands whose stdout is their product log only warnings; the demo only errors,
    // because it tells the story of expected failures (a retried attempt) itself.
    cli::init_logging(match arguments.command {
        Command::Demo { .. } => "error",
        Command::Tail
        | Command::Backfill { .. }
        | Command::Webhooks { .. }
        | Command::Events { .. }
        | Command::Inbound { .. }
        | Command::SendTest { .. }
        | Command::Receive { .. } => "warn",
        Command::Check { .. } | Command::Setup { .. } | Command::Run => "info",
    });
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
            Command::Backfill {
                command,
                model,
                webhooks,
                condition,
                batch,
            } => match (command, model) {
                (Some(BackfillCommand::List { json }), _) => {
                    cli::backfill::list(&arguments.config, json).await
                }
                (Some(BackfillCommand::Cancel { id }), _) => {
                    cli::backfill::cancel(&arguments.config, id).await
                }
                (None, Some(model)) => {
                    let request = rowhook::backfill::BackfillRequest {
                        model,
                        webhooks,
                        condition,
                        batch,
                    };
                    cli::backfill::start(&arguments.config, request).await
                }
                // clap requires a model unless a subcommand is given.
                (None, None) => Err(cli::Failure::Configuration(vec![
                    "error: name the model to backfill".to_string(),
                ])),
            },
            Command::Webhooks { command } => match command {
                WebhooksCommand::List { json } => {
                    cli::webhooks::list(&arguments.config, json).await
                }
                WebhooksCommand::Pause { name } => {
                    cli::webhooks::set_paused(&arguments.config, &name, true).await
                }
                WebhooksCommand::Resume { name } => {
                    cli::webhooks::set_paused(&arguments.config, &name, false).await
                }
            },
            Command::Inbound {
                command:
                    InboundCommand::List {
                        endpoint,
                        outcome,
                        limit,
                        json,
                    },
            } => cli::inbound::list(&arguments.config, endpoint, outcome, limit, json).await,
            Command::Events { command } => match command {
                EventsCommand::List {
                    webhook,
                    status,
                    model,
                    key,
                    limit,
                    json,
                } => {
                    let filter = cli::events::Filter {
                        webhook,
                        status,
                        row: model.zip(key),
                        limit,
                    };
                    cli::events::list(&arguments.config, &filter, json).await
                }
                EventsCommand::Show { id, json } => {
                    cli::events::show(&arguments.config, &id, json).await
                }
                EventsCommand::Redeliver {
                    id,
                    webhook,
                    status,
                } => {
                    let target = match (id, webhook, status) {
                        (Some(id), _, _) => cli::events::Target::Event(id),
                        (None, Some(webhook), Some(status)) => {
                            cli::events::Target::Matching { webhook, status }
                        }
                        // clap requires an id or both --webhook and --status.
                        _ => {
                            return Err(cli::Failure::Configuration(vec![
                                "error: give an event id, or --webhook NAME --status STATUS"
                                    .to_string(),
                            ]));
                        }
                    };
                    cli::events::redeliver(&arguments.config, target).await
                }
            },
            Command::SendTest { webhook, item } => {
                cli::send_test::run(&arguments.config, &webhook, item.as_deref()).await
            }
            Command::Receive {
                listen,
                secret,
                status,
            } => cli::receive::run(listen, secret, status).await,
            Command::Demo { database_url } => cli::demo::run(database_url.as_deref()).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
