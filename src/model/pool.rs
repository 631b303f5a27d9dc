//! A few ordinary connections for lookups, opened when needed and kept while they work.
//! Each runs with the replication connection's value settings, with a statement timeout
//! (so a lookup stuck behind a lock fails, and says so, instead of holding capture for
//! ever) and with `search_path = pg_catalog`, so the type names it casts to mean what the
//! catalog said.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::Client;

use crate::postgres::{self, DatabaseError, DatabaseUrl};

/// The settings the replication connection pins, so that values are written in the same
/// shapes and convert to the same JSON as captured rows.
pub(crate) const VALUE_SETTINGS: &str = "SET DateStyle = ISO; SET TimeZone = 'UTC'; \
     SET IntervalStyle = iso_8601; SET extra_float_digits = 3; SET bytea_output = hex;";

pub(crate) struct Pool {
    url: DatabaseUrl,
    statement_timeout: Duration,
    idle: Mutex<Vec<Client>>,
    slots: Semaphore,
}

/// A connection taken from the pool; it goes back when dropped, unless it broke.
pub(crate) struct Pooled<'a> {
    pool: &'a Pool,
    client: Option<Client>,
    _slot: SemaphorePermit<'a>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Client;

    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let mut idle = self
            .pool
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if client.is_closed() {
            // The idle ones took the same path: after a restart they are closed too, and
            // behind a peer gone silent each would cost a whole answer timeout to find out.
            idle.clear();
        } else {
            idle.push(client);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PoolError {
    #[error(transparent)]
    Connect(#[from] DatabaseError),
    #[error("cannot prepare a lookup connection: {}", postgres::describe(.0))]
    Prepare(tokio_postgres::Error),
}

impl Pool {
    pub(crate) fn new(url: DatabaseUrl, size: usize, statement_timeout: Duration) -> Pool {
        Pool {
            url,
            statement_timeout,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(size.max(1)),
        }
    }

    /// A connection: an idle one, or a new one while fewer than the pool's size are out.
    pub(crate) async fn get(&self) -> Result<Pooled<'_>, PoolError> {
        let slot = self
            .slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let client = match idle {
            Some(client) if !client.is_closed() => client,
            _ => {
                let client = postgres::connect_answering_within(
                    &self.url,
                    self.statement_timeout + postgres::ANSWER_MARGIN,
                )
                .await?;
                client
                    .batch_execute(&format!(
                        "{VALUE_SETTINGS} {} SET statement_timeout = {}; \
                         SET search_path = pg_catalog, pg_temp",
                        postgres::SERVER_SIDE_LIVENESS,
                        self.statement_timeout.as_millis()
                    ))
                    .await
                    .map_err(PoolError::Prepare)?;
                client
            }
        };
        Ok(Pooled {
            pool: self,
            client: Some(client),
            _slot: slot,
        })
    }
}
