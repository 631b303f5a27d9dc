//! `rowhook run`: the service (`rowhook::service`) on the configured store, until SIGINT
//! or SIGTERM.

use std::path::Path;

use rowhook::service::{self, ServiceError};
use rowhook::store;

use super::{Failure, load_config, router, shutdown_on_signals};

pub(crate) async fn run(path: &Path) -> Result<(), Failure> {
    let config = load_config(path)?;
    let router = router(&config)?;
    let store = store::open(&config.store)
        .await
        .map_err(anyhow::Error::from)?;
    let (trigger, shutdown) = shutdown_on_signals();
    service::serve(&config, router, store, trigger, shutdown)
        .await
        .map_err(|error| service_failure(&config, error))
}

/// A service error as the exit code wants it: the configuration's fault is exit 2.
pub(crate) fn service_failure(config: &rowhook::config::Config, error: ServiceError) -> Failure {
    if error.is_configuration() {
        Failure::Configuration(vec![format!("{}: {error}", config.file.display())])
    } else {
        Failure::Runtime(error.into())
    }
}
