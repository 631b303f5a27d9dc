//! The shared backend: tables of schema `rowhook` in PostgreSQL, for several instances
//! on one configuration (CONTRACT §10).
//!
//! - An append is one transaction: the events as one multi-row insert (`unnest`, ids
//!   already stored skipped by `ON CONFLICT DO NOTHING`), their requests, the capture
//!   position and a backfill job's cursor. It commits before ingest acknowledges.
//! - A claim is one transaction per webhook, serialised per webhook by an advisory
//!   lock, so that per-row ordering and the rate hold across instances: due rows are
//!   taken from `rowhook.queue` (one row per pending event) with `FOR UPDATE SKIP
//!   LOCKED` and leased (`claimed_until`, on the database's clock). An instance that dies
//!   loses its claims when the lease ends.
//! - Claims and attempt records commit without waiting for the disk
//!   (`synchronous_commit = off`): a lost claim only lets the event be claimed again, and
//!   [`EventStore::flush`](crate::store::EventStore::flush) makes records durable (any
//!   later synchronous commit flushes the log up to itself).
//! - Wake-ups cross instances as `NOTIFY rowhook_store` in the append's transaction.

mod append;
mod claim;
mod interface;
mod listen;
mod read;
mod record;

#[cfg(test)]
mod tests;

mod schema;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::model::Pool;
use crate::postgres::{DatabaseUrl, describe};
use crate::store::{StoreError, Wakeups};

/// Connections the store keeps: delivery lanes, ingest, pages and pruning share them.
const POOL_SIZE: usize = 16;
/// A store query stuck behind a lock fails instead of stalling its stage for ever.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(15);
/// The channel of wake-ups between instances.
const WAKE_CHANNEL: &str = "rowhook_store";

pub(super) struct PostgresStore {
    pool: Pool,
    wakeups: Arc<Wakeups>,
    /// How long a claim lasts without its attempt being recorded.
    lease: Duration,
    /// The store lives in the database of a notify-mode source: appends delete the
    /// outbox rows they cover ([`crate::store::NewEvents::drained_outbox`]).
    drains_outbox: bool,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// A tokio-postgres error with the server's own message, which its `Display` hides.
#[derive(Debug)]
pub(super) struct PostgresError(tokio_postgres::Error);

impl fmt::Display for PostgresError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&describe(&self.0))
    }
}

impl std::error::Error for PostgresError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl From<tokio_postgres::Error> for PostgresError {
    fn from(error: tokio_postgres::Error) -> PostgresError {
        PostgresError(error)
    }
}

/// Maps a failed query to the store's error, saying what was being done.
pub(super) fn sql_error(doing: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |error| StoreError::backend(doing, PostgresError(error))
}

impl PostgresStore {
    /// Connects, creates or migrates the schema, and starts listening for other
    /// instances' wake-ups.
    pub(super) async fn open(
        url: &str,
        lease: Duration,
        drains_outbox: bool,
    ) -> Result<PostgresStore, StoreError> {
        let url = DatabaseUrl::parse(url).map_err(|error| StoreError::Unreachable {
            reason: format!("store.url: {error}"),
        })?;
        let pool = Pool::new(url.clone(), POOL_SIZE, STATEMENT_TIMEOUT);
        {
            let mut client = pool.get().await.map_err(|error| StoreError::Unreachable {
                reason: error.to_string(),
            })?;
            schema::migrate(&mut client).await?;
        }
        let wakeups = Arc::new(Wakeups::default());
        let listener = tokio::spawn(listen::wake_on_notifications(url, wakeups.clone()));
        Ok(PostgresStore {
            pool,
            wakeups,
            lease,
            drains_outbox,
            listener,
        })
    }

    /// A pooled connection.
    async fn client(&self) -> Result<crate::model::Pooled<'_>, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|error| StoreError::backend("connecting to the store", error))
    }
}

/// Tells every instance (this one through its listener too) that these webhooks have
/// events due, when the transaction commits.
async fn announce(
    client: &impl tokio_postgres::GenericClient,
    webhooks: &[String],
) -> Result<(), StoreError> {
    if webhooks.is_empty() {
        return Ok(());
    }
    client
        .execute(
            "SELECT pg_notify($1, webhook) FROM unnest($2::text[]) AS webhook",
            &[&WAKE_CHANNEL, &webhooks],
        )
        .await
        .map_err(sql_error("announcing due events"))?;
    Ok(())
}

/// Unix milliseconds as PostgreSQL's bigint; "never" stays the largest.
fn to_sql(milliseconds: u64) -> i64 {
    i64::try_from(milliseconds).unwrap_or(i64::MAX)
}

fn from_sql(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}
