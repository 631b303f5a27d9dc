//! One module per subcommand that is more than a few lines.

pub(crate) mod admin_api;
pub(crate) mod backfill;
pub(crate) mod check;
pub(crate) mod demo;
pub(crate) mod events;
pub(crate) mod inbound;
pub(crate) mod receive;
pub(crate) mod run;
pub(crate) mod send_test;
pub(crate) mod setup;
pub(crate) mod tail;
pub(crate) mod webhooks;

use std::path::Path;
use std::process::ExitCode;

use rowhook::config::{self, Config};
use rowhook::postgres::DatabaseUrl;
use rowhook::route::Router;
use rowhook::shutdown::{self, Shutdown, ShutdownTrigger};

/// Why a command failed, which decides the exit code (CONTRACT §1).
pub(crate) enum Failure {
    /// Usage or configuration: exit code 2. Each line is one problem.
    Configuration(Vec<String>),
    /// Something went wrong while running: exit code 1.
    Runtime(anyhow::Error),
}

impl Failure {
    pub(crate) fn report(self) -> ExitCode {
        match self {
            Failure::Configuration(lines) => {
                for line in lines {
                    eprintln!("{line}");
                }
                ExitCode::from(2)
            }
            Failure::Runtime(error) => {
                eprintln!("error: {error:#}");
                ExitCode::from(1)
            }
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Runtime(error)
    }
}

/// Loads the configuration; from then on its secrets are masked in every log line.
pub(crate) fn load_config(path: &Path) -> Result<Config, Failure> {
    let config = config::load(path).map_err(|errors| {
        Failure::Configuration(errors.0.iter().map(ToString::to_string).collect())
    })?;
    rowhook::secret::mask_in_logs(&config.secrets);
    Ok(config)
}

pub(crate) fn database_url(config: &Config) -> Result<DatabaseUrl, Failure> {
    DatabaseUrl::parse(&config.source.url).map_err(|error| {
        Failure::Configuration(vec![format!(
            "{}: source.url: {error}",
            config.file.display()
        )])
    })
}

/// Logs go to stderr at level `default` unless `ROWHOOK_LOG` says otherwise.
pub(crate) fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ROWHOOK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only for a person at a terminal: a log file, journald or `docker logs`
    // would get the escape codes as text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| rowhook::secret::MaskingWriter(std::io::stderr()))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// A shutdown signal that fires on SIGINT or SIGTERM (or when triggered).
pub(crate) fn shutdown_on_signals() -> (ShutdownTrigger, Shutdown) {
    let (trigger, shutdown) = shutdown::channel();
    let signal_trigger = trigger.clone();
    tokio::spawn(async move {
        let interrupt = tokio::signal::ctrl_c();
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
        signal_trigger.trigger();
    });
    (trigger, shutdown)
}

/// Compiles the config's templates; their errors are configuration errors.
pub(crate) fn router(config: &Config) -> Result<Router, Failure> {
    Router::new(config).map_err(|errors| {
        Failure::Configuration(errors.0.iter().map(ToString::to_string).collect())
    })
}
