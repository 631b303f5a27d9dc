//! Ingest: the stage after capture. It routes each change to its events, appends them to
//! the store in batches, and once a batch is durable acknowledges the last commit it
//! covers to the capture stage.
//!
//! Batches form by themselves: whatever has arrived while the previous append ran goes
//! into the next, so an idle database gets one append per transaction (low latency) and
//! a busy one few appends for many transactions (high throughput). A batch is bounded in
//! changes, bytes and time, so a huge transaction is written as it streams — never held
//! whole — and acknowledged at its commit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::capture::{Acknowledger, Captured, CommitPosition};
use crate::change::Change;
use crate::config::Config;
use crate::event::{Content, NewEvent};
use crate::metrics::Metrics;
use crate::retry;
use crate::route::{RoutedEvent, Router};
use crate::store::{EventStore, NewEvents, StoreError};
use crate::time::now_ms;

/// Under a steady stream, append (and so acknowledge) at least every this many changes,
/// bytes of events, or this much time, whichever comes first: notify mode's outbox is
/// cleaned only as far as acknowledged, and memory holds one batch.
const MAX_CHANGES_PER_BATCH: usize = 5_000;
const MAX_BYTES_PER_BATCH: usize = 4 * 1024 * 1024;
const MAX_BATCH_INTERVAL: Duration = Duration::from_millis(250);

pub struct Ingest {
    router: Router,
    store: Arc<dyn EventStore>,
    schedules: HashMap<String, Vec<Duration>>,
    acknowledger: Acknowledger,
    metrics: Arc<Metrics>,
}

/// What has been received since the last append.
#[derive(Default)]
struct Batch {
    events: Vec<NewEvent>,
    changes: usize,
    bytes: usize,
    /// The last commit received; acknowledged once the batch is durable.
    commit: Option<CommitPosition>,
    started: Option<Instant>,
}

impl Ingest {
    pub fn new(
        config: &Config,
        router: Router,
        store: Arc<dyn EventStore>,
        acknowledger: Acknowledger,
        metrics: Arc<Metrics>,
    ) -> Ingest {
        let schedules = config
            .webhooks
            .iter()
            .map(|webhook| (webhook.name.clone(), webhook.delivery.retry.clone()))
            .collect();
        Ingest {
            router,
            store,
            schedules,
            acknowledger,
            metrics,
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
                Captured::Change(change) => self.route(&change, &mut batch),
                Captured::Commit(position) => batch.commit = Some(position),
            }
            let full = batch.changes >= MAX_CHANGES_PER_BATCH
                || batch.bytes >= MAX_BYTES_PER_BATCH
                || batch
                    .started
                    .is_some_and(|started| started.elapsed() >= MAX_BATCH_INTERVAL);
            // Between transactions, whatever has arrived goes now; inside one, only a
            // full batch does (it is acknowledged at the commit).
            if full || (input.is_empty() && batch.commit.is_some()) {
                self.append(&mut batch).await?;
            }
        }
        self.append(&mut batch).await
    }

    fn route(&self, change: &Change, batch: &mut Batch) {
        self.metrics.change_captured();
        batch.changes += 1;
        batch.started.get_or_insert_with(Instant::now);
        for routed in self.router.route(change) {
            let event = self.new_event(routed);
            batch.bytes += event.size();
            batch.events.push(event);
        }
    }

    fn new_event(&self, routed: RoutedEvent) -> NewEvent {
        let created_at_ms = now_ms();
        let schedule = self
            .schedules
            .get(&routed.webhook)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let content = match routed.request {
            Ok(request) => Content::Rendered {
                request,
                envelope: (!routed.body_is_envelope).then(|| routed.envelope.to_string()),
            },
            Err(error) => {
                warn!(event = %routed.id, webhook = %routed.webhook, %error, "request not rendered");
                Content::Unrendered {
                    reason: error.to_string(),
                    envelope: routed.envelope.to_string(),
                }
            }
        };
        NewEvent {
            id: routed.id,
            webhook: routed.webhook,
            model: routed.model,
            kind: routed.kind,
            created_at_ms,
            first_attempt_at_ms: retry::first_attempt_at(created_at_ms, schedule),
            content,
        }
    }

    /// Appends the batch, durably, then acknowledges its last commit.
    async fn append(&self, batch: &mut Batch) -> Result<(), StoreError> {
        let taken = std::mem::take(batch);
        if taken.events.is_empty() && taken.commit.is_none() {
            return Ok(());
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
        Ok(())
    }
}
