//! Ingest: the stage after capture. It routes each change to its events, appends them to
//! the store in batches, and once a batch is durable acknowledges the last commit it
//! covers to the capture stage.
//!
//! Changes for webhooks that include relations wait in the batch until it is appended:
//! then one query per relation fetches the related rows of all of them (CONTRACT §8).
//! While the database cannot be reached for that, the batch is held and tried again —
//! nothing is acknowledged, and capture waits behind the full queue.
//!
//! Batches form by themselves: whatever has arrived while the previous append ran goes
//! into the next, so an idle database gets one append per transaction (low latency) and
//! a busy one few appends for many transactions (high throughput). A batch is bounded in
//! changes, bytes and time, so a huge transaction is written as it streams — never held
//! whole — and acknowledged at its commit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::debug;

use crate::capture::{Acknowledger, Captured, CommitPosition};
use crate::change::Change;
use crate::config::Config;
use crate::event::{Lane, NewEvent};
use crate::metrics::Metrics;
use crate::model::Relations;
use crate::route::Router;
use crate::shutdown::Shutdown;
use crate::store::{EventStore, NewEvents, StoreError};

mod routing;

pub(crate) use routing::{Routed, Routing, Waiting};

/// Under a steady stream, append (and so acknowledge) at least every this many changes,
/// bytes of events, or this much time, whichever comes first: notify mode's outbox is
/// cleaned only as far as acknowledged, and memory holds one batch.
const MAX_CHANGES_PER_BATCH: usize = 5_000;
const MAX_BYTES_PER_BATCH: usize = 4 * 1024 * 1024;
const MAX_BATCH_INTERVAL: Duration = Duration::from_millis(250);
/// What a change waiting for its relations is taken to weigh in a batch.
const WAITING_CHANGE_BYTES: usize = 512;

pub struct Ingest {
    routing: Routing,
    store: Arc<dyn EventStore>,
    acknowledger: Acknowledger,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
}

/// How ingest reaches what it works with.
pub struct IngestParts {
    pub router: Arc<Router>,
    pub store: Arc<dyn EventStore>,
    pub acknowledger: Acknowledger,
    pub metrics: Arc<Metrics>,
    pub relations: Arc<Relations>,
    /// Ends a wait for an unreachable database (nothing is acknowledged then).
    pub shutdown: Shutdown,
}

/// What has been received since the last append.
#[derive(Default)]
struct Batch {
    events: Vec<NewEvent>,
    changes: usize,
    bytes: usize,
    /// The last commit received; acknowledged once the batch is durable.
    commit: Option<CommitPosition>,
    /// Notify mode: outbox rows whose changes are in this batch or an earlier one.
    drained: Vec<i64>,
    started: Option<Instant>,
    /// Changes whose webhooks include relations, routed once they are looked up.
    waiting: Vec<Waiting>,
}

impl Batch {
    /// Counts one more change; the number of events before its own, for
    /// [`Batch::count_events_from`].
    fn started_change(&mut self) -> usize {
        self.changes += 1;
        self.started.get_or_insert_with(Instant::now);
        self.events.len()
    }

    /// Adds the size of the events from `before` on to the batch's bytes.
    fn count_events_from(&mut self, before: usize) {
        self.bytes += self.events[before..]
            .iter()
            .map(NewEvent::size)
            .sum::<usize>();
    }
}

impl Ingest {
    pub fn new(config: &Config, parts: IngestParts) -> Ingest {
        Ingest {
            routing: Routing::new(config, parts.router, parts.relations, Lane::Live),
            store: parts.store,
            acknowledger: parts.acknowledger,
            metrics: parts.metrics,
            shutdown: parts.shutdown,
        }
    }

    /// Runs until the capture stage closes the channel; everything received by then is
    /// made durable and acknowledged before returning.
    pub async fn run(self, mut input: mpsc::Receiver<Captured>) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        // `recv` takes part in tokio's cooperative scheduling, so a long backlog does not
        // starve delivery of the runtime's threads.
        while let Some(item) = input.recv().await {
            match item {
                Captured::Change(change) => self.route(*change, &mut batch),
                Captured::Oversized(oversized) => {
                    let before = batch.started_change();
                    self.metrics.change_captured();
                    self.routing.route_oversized(&oversized, &mut batch.events);
                    batch.count_events_from(before);
                }
                Captured::Commit(position) => batch.commit = Some(position),
                Captured::Drained(rows) => batch.drained.extend(rows),
            }
            let full = batch.changes >= MAX_CHANGES_PER_BATCH
                || batch.bytes >= MAX_BYTES_PER_BATCH
                || batch
                    .started
                    .is_some_and(|started| started.elapsed() >= MAX_BATCH_INTERVAL);
            // Between transactions, whatever has arrived goes now; inside one, only a
            // full batch does (it is acknowledged at the commit).
            if (full || (input.is_empty() && batch.commit.is_some()))
                && !self.append(&mut batch).await?
            {
                return Ok(());
            }
        }
        self.append(&mut batch).await.map(|_| ())
    }

    fn route(&self, change: Change, batch: &mut Batch) {
        let before = batch.started_change();
        self.metrics.change_captured();
        let candidates = self.routing.router().candidates(&change);
        let waiting = self
            .routing
            .route_or_wait(change, candidates, &mut batch.events);
        batch.count_events_from(before);
        if let Some(waiting) = waiting {
            batch.bytes += WAITING_CHANGE_BYTES;
            batch.waiting.push(waiting);
        }
    }

    /// Appends the batch, durably, then acknowledges its last commit. `false` when the
    /// batch was given up (shutdown while its lookups waited for the database): then
    /// nothing after it may be acknowledged either, and ingest stops.
    async fn append(&self, batch: &mut Batch) -> Result<bool, StoreError> {
        let mut taken = std::mem::take(batch);
        let waiting = std::mem::take(&mut taken.waiting);
        let mut shutdown = self.shutdown.clone();
        match self.routing.route_waiting(waiting, &mut shutdown).await {
            Routed::Events(events) => taken.events.extend(events),
            Routed::Abandoned => return Ok(false),
        }
        if taken.events.is_empty() && taken.commit.is_none() {
            return Ok(true);
        }
        let resume_after = match taken.commit {
            Some(CommitPosition::Wal(lsn)) => Some(lsn),
            _ => None,
        };
        let appending = Instant::now();
        let appended = self
            .store
            .append(NewEvents {
                events: taken.events,
                resume_after,
                backfill: None,
                drained_outbox: taken.drained,
            })
            .await?;
        debug!(
            changes = taken.changes,
            created = appended.created,
            took = ?appending.elapsed(),
            "events appended"
        );
        self.metrics.events_created(appended.created as u64);
        if let Some(position) = taken.commit {
            self.acknowledger.acknowledge(position);
        }
        Ok(true)
    }
}
