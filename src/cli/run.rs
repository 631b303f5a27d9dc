//! `rowhook run`: the service (`rowhook::service`) on the configured store, until SIGINT
//! or SIGTERM.

use std::path::Path;

use rowhook::service::{self, ServiceError};
use rowhook::shutdown::STOP_LIMIT;
use rowhook::store;
use tracing::error;

use super::{Failure, load_config, router, shutdown_on_signals};

pub(crate) async fn run(path: &Path) -> Result<(), Failure> {
    let config = load_config(path)?;
    let router = router(&config)?;
    let store = store::open(&config.store)
        .await
        .map_err(anyhow::Error::from)?;
    let (trigger, shutdown) = shutdown_on_signals();
    let mut stopping = shutdown.clone();
    let overdue = async {
        stopping.requested().await;
        tokio::time::sleep(STOP_LIMIT).await;
    };
    tokio::select! {
        served = service::serve(&config, router, store, trigger, shutdown) => {
            served.map_err(|error| service_failure(&config, error))
        }
        () = overdue => {
            // Leaving now loses nothing (see STOP_LIMIT); returning would wait for the
            // runtime's blocking tasks, which may be the very thing that hangs.
            error!(
                "still stopping {} s after the signal (a database or store does not answer); \
                 exiting without it: what was not acknowledged is captured again at the next start",
                STOP_LIMIT.as_secs()
            );
            std::process::exit(1);
        }
    }
}

/// A service error as the exit code wants it: the configuration's fault is exit 2.
pub(crate) fn service_failure(config: &rowhook::config::Config, error: ServiceError) -> Failure {
    if error.is_configuration() {
        Failure::Configuration(vec![format!("{}: {error}", config.file.display())])
    } else {
        Failure::Runtime(error.into())
    }
}
