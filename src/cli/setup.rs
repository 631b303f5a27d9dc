//! `rowhook setup [--replica-identity-full]`.

use std::path::Path;

use anyhow::Context;
use rowhook::capture::{notify, replication};
use rowhook::config::SourceMode;
use rowhook::{postgres, store};

use super::{Failure, database_url, load_config};

const SETUP_ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

pub(crate) async fn run(path: &Path, replica_identity_full: bool) -> Result<(), Failure> {
    let config = load_config(path)?;
    let url = database_url(&config)?;
    // DDL may wait for a lock held by a long transaction: give it minutes, not seconds.
    let client = postgres::connect_answering_within(&url, SETUP_ANSWER_TIMEOUT)
        .await
        .map_err(anyhow::Error::from)?;
    let report = match config.source.mode {
        SourceMode::Replication => replication::setup(&client, &config, replica_identity_full)
            .await
            .context("setup failed")?,
        SourceMode::Notify => {
            if replica_identity_full {
                eprintln!(
                    "note: --replica-identity-full has no effect in notify mode (the trigger \
                     sees whole old rows)"
                );
            }
            notify::setup(&client, &config)
                .await
                .context("setup failed")?
        }
    };
    for line in report {
        println!("{line}");
    }
    if store::is_shared(&config.store) {
        // Opening the shared store creates or migrates its tables.
        store::open(&config.store)
            .await
            .context("cannot prepare the store")?;
        println!("store: tables of schema rowhook ready (store.backend = \"postgres\")");
    }
    Ok(())
}
