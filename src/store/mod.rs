//! The event store: the only way stages touch storage. [`EventStore`] is the interface;
//! its backends live beneath (`sled/`, the embedded default; `postgres/`, shared by
//! several instances). Nothing above this module
//! knows keys, trees, cursors or crash repair.
//!
//! Contracts every backend keeps:
//! - **Durable before acknowledged.** [`EventStore::append`] returns once the batch and
//!   the capture position it covers are durable; only then does ingest acknowledge the
//!   changes to PostgreSQL.
//! - **Idempotent appends.** An event whose id is stored already is left as it is, so a
//!   batch read again after a crash or a reconnect adds nothing.
//! - **One claim at a time.** An event handed out by [`EventStore::claim_due`] is not
//!   handed out again until its attempt is recorded (or its claim is lost with the
//!   process that held it). Delivery is at least once: an attempt whose record is lost is
//!   made again, with the same event id.
//! - **Attempt records are not flushed one by one**; [`EventStore::flush`] makes them
//!   durable (shutdown does).

mod error;
mod postgres;
mod query;
mod rates;
mod sled;
mod wakeups;

#[cfg(test)]
pub(crate) mod suite;
#[cfg(test)]
pub(crate) mod suite_control;
#[cfg(test)]
pub(crate) mod suite_delivery;
#[cfg(test)]
pub(crate) mod suite_history;
#[cfg(test)]
pub(crate) mod suite_rows;
#[cfg(test)]
pub(crate) use self::sled::tests::temporary_store;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use self::postgres::PostgresStore;
use self::sled::SledStore;
use crate::backfill::BackfillJob;
use crate::change::Lsn;
use crate::config::{StoreBackend, StoreConfig};
use crate::event::{Attempt, Lane, NewEvent, Request, Status};
use crate::inbound::{InboundQuery, InboundRecord};
use crate::rate::Rate;

pub use error::StoreError;
pub use query::{Counts, EventQuery, EventRecord, RowQuery, StoredEvent};
pub use wakeups::Wakeups;

/// A batch of new events and what it covers.
#[derive(Debug, Default)]
pub struct NewEvents {
    pub events: Vec<NewEvent>,
    /// Where capture resumes once this batch is stored, when the source resumes from the
    /// store's word (replication); `None` for a batch that ends inside a transaction, or
    /// for a source that keeps its own place (notify mode's outbox).
    pub resume_after: Option<Lsn>,
    /// A backfill job's state after this batch of its rows (its cursor), stored with the
    /// events in one atomic write.
    pub backfill: Option<BackfillJob>,
    /// Notify mode: outbox rows whose changes this batch (or an earlier one) holds. A
    /// store in the source database deletes them in the same transaction; other stores
    /// leave them to the source, which deletes them once acknowledged.
    pub drained_outbox: Vec<i64>,
}

/// What an append stored.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Appended {
    /// Events that were new; the rest were stored already.
    pub created: usize,
}

/// An event handed to delivery: everything an attempt needs.
#[derive(Clone, Debug)]
pub struct ClaimedEvent {
    pub id: String,
    pub webhook: String,
    pub created_at_ms: u64,
    pub request: Request,
    /// Attempts made so far; the next one is number `attempts + 1`.
    pub attempts: u32,
    /// The backend's handle on the claim, given back with the attempt.
    pub claim: Claim,
}

/// Which claim an attempt answers; opaque outside the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub(crate) sequence: u64,
    /// Where the backend keeps the event with others (sled: its chunk).
    pub(crate) group: u64,
    /// When the attempt was due, so a claim outlived by a redelivery is recognised.
    pub(crate) due_at_ms: u64,
    /// Which of the webhook's queues the event waits in.
    pub(crate) lane: Lane,
    /// Under `ordering = "row"`: the event's row, whose next event waits for this one.
    pub(crate) row_key: Option<String>,
}

/// What [`EventStore::claim_due`] found.
#[derive(Debug, Default)]
pub struct DueEvents {
    /// Events due now, earliest first, at most the limit asked for.
    pub events: Vec<ClaimedEvent>,
    /// When the earliest event left waiting is due, if one is.
    pub next_due_at_ms: Option<u64>,
}

/// An attempt made for a claimed event, to be recorded.
#[derive(Clone, Debug)]
pub struct FinishedAttempt {
    pub webhook: String,
    pub claim: Claim,
    pub attempt: Attempt,
    /// The webhook's retry schedule: the store decides the next due time, because it
    /// knows whether an admin asked for a redelivery while the attempt was under way.
    pub retry: Arc<[Duration]>,
    pub finished_at_ms: u64,
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores new events, skipping those stored already, and with them the position the
    /// batch covers. Durable when it returns. Wakes delivery for the webhooks concerned.
    async fn append(&self, batch: NewEvents) -> Result<Appended, StoreError>;

    /// The newest position stored with [`NewEvents::resume_after`].
    async fn resume_position(&self) -> Result<Option<Lsn>, StoreError>;

    /// Up to `limit` of `webhook`'s events due at `now_ms`, earliest first — live events
    /// before a backfill's — each claimed until its attempt is recorded. With a `rate`,
    /// no more than it allows, counted across every process that shares the store; then
    /// [`DueEvents::next_due_at_ms`] also waits for the rate.
    async fn claim_due_at_rate(
        &self,
        webhook: &str,
        now_ms: u64,
        limit: usize,
        rate: Option<Rate>,
    ) -> Result<DueEvents, StoreError>;

    /// [`EventStore::claim_due_at_rate`] without a rate.
    async fn claim_due(
        &self,
        webhook: &str,
        now_ms: u64,
        limit: usize,
    ) -> Result<DueEvents, StoreError> {
        self.claim_due_at_rate(webhook, now_ms, limit, None).await
    }

    /// Records finished attempts and moves their events on: delivered, due again, or
    /// failed. Returns what became of each, in order. Claims outlived by a redelivery are
    /// recorded as attempts all the same. Not flushed: see [`EventStore::flush`].
    async fn record_attempts(
        &self,
        finished: Vec<FinishedAttempt>,
    ) -> Result<Vec<Status>, StoreError>;

    /// Queues an event for one immediate attempt; its attempts so far are kept. Durable
    /// when it returns; wakes delivery.
    async fn redeliver(&self, id: &str, now_ms: u64) -> Result<EventRecord, StoreError>;

    /// Events matching `query`, newest first.
    async fn list(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError>;

    /// One event with its request, envelope and every attempt.
    async fn event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError>;

    /// Event counts by status for every webhook that has events.
    async fn counts(&self) -> Result<BTreeMap<String, Counts>, StoreError>;

    /// Deletes delivered and failed events that finished before `cutoff_ms`, with their
    /// attempts. Returns how many were deleted.
    async fn prune(&self, cutoff_ms: u64) -> Result<u64, StoreError>;

    /// Makes everything recorded so far durable.
    async fn flush(&self) -> Result<(), StoreError>;

    /// Pauses or resumes a webhook's delivery (CONTRACT §9): a paused webhook's events
    /// are stored and wait, and [`EventStore::claim_due`] hands none out. Durable when it
    /// returns; resuming wakes delivery.
    async fn set_paused(&self, webhook: &str, paused: bool) -> Result<(), StoreError>;

    /// The webhooks paused now.
    async fn paused(&self) -> Result<BTreeSet<String>, StoreError>;

    /// Adds inbound requests to the request log (CONTRACT §11). Not flushed by itself.
    async fn log_inbound(&self, records: Vec<InboundRecord>) -> Result<(), StoreError>;

    /// Inbound log entries matching `query`, newest first.
    async fn inbound_log(&self, query: &InboundQuery) -> Result<Vec<InboundRecord>, StoreError>;

    /// Stores a backfill job's state. Durable when it returns.
    async fn save_backfill(&self, job: &BackfillJob) -> Result<(), StoreError>;

    /// Every backfill job stored, in the order they were started.
    async fn backfills(&self) -> Result<Vec<BackfillJob>, StoreError>;

    /// Bytes the store takes on disk, when the backend can tell.
    async fn size_on_disk(&self) -> Result<Option<u64>, StoreError>;

    /// Signalled whenever a webhook gets events due now (appended or redelivered).
    fn wakeups(&self) -> &Wakeups;
}

/// Opens the store the configuration names: the one place a backend is chosen.
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn EventStore>, StoreError> {
    Ok(match &config.backend {
        StoreBackend::Sled => Arc::new(SledStore::open(&config.path)?),
        StoreBackend::Postgres { url, drains_outbox } => {
            Arc::new(PostgresStore::open(url, config.claim_lease, *drains_outbox).await?)
        }
    })
}

/// Whether several processes may share the store (and so capture must be taken in turn).
pub fn is_shared(config: &StoreConfig) -> bool {
    matches!(config.backend, StoreBackend::Postgres { .. })
}
