//! Ingest: the stage after capture. It routes each change to its events, writes them to
//! the store, and once a batch of transactions is durable (one flush) acknowledges the
//! last of them to the capture stage and wakes the delivery lanes that got new events.
//!
//! Batches form by themselves: whatever has arrived while the previous flush ran is
//! flushed together, so an idle database gets one flush per transaction (low latency)
//! and a busy one few flushes for many transactions (high throughput).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::warn;

use crate::change::{Change, Lsn};
use crate::config::Config;
use crate::deliver::{DispatchWaker, now_ms, retry};
use crate::metrics::Metrics;
use crate::route::{RoutedEvent, Router};
use crate::source::stage::{Acknowledger, Captured};
use crate::store::records::{EventRecord, Schedule, Status, StoredRequest};
use crate::store::{Store, StoreError};

/// Under a steady stream, flush (and so acknowledge) at least every this many commits,
/// changes or this much time, whichever comes first: notify mode hands on batches of up
/// to 1,000 rows as one commit, and its outbox is cleaned only as far as acknowledged.
const MAX_COMMITS_PER_FLUSH: usize = 2_000;
const MAX_CHANGES_PER_FLUSH: usize = 10_000;
const MAX_FLUSH_INTERVAL: Duration = Duration::from_millis(250);

pub struct Ingest {
    router: Router,
    store: Arc<Store>,
    schedules: HashMap<String, Vec<Duration>>,
    acknowledger: Acknowledger,
    waker: DispatchWaker,
    metrics: Arc<Metrics>,
}

impl Ingest {
    pub fn new(
        config: &Config,
        router: Router,
        store: Arc<Store>,
        acknowledger: Acknowledger,
        waker: DispatchWaker,
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
            waker,
            metrics,
        }
    }

    /// Runs until the capture stage closes the channel; everything received by then is
    /// made durable and acknowledged before returning.
    pub async fn run(self, mut input: mpsc::Receiver<Captured>) -> Result<(), StoreError> {
        let mut last_commit: Option<Lsn> = None;
        let mut commits = 0usize;
        let mut changes = 0usize;
        let mut last_flush = Instant::now();
        let mut touched = BTreeSet::new();
        // `recv` takes part in tokio's cooperative scheduling, so a long backlog does not
        // starve delivery of the runtime's threads.
        while let Some(item) = input.recv().await {
            match item {
                Captured::Change(change) => {
                    self.store_events(&change, &mut touched)?;
                    changes += 1;
                }
                Captured::Commit { end_lsn } => {
                    last_commit = Some(end_lsn);
                    commits += 1;
                }
            }
            let due = input.is_empty()
                || commits >= MAX_COMMITS_PER_FLUSH
                || changes >= MAX_CHANGES_PER_FLUSH
                || last_flush.elapsed() >= MAX_FLUSH_INTERVAL;
            if last_commit.is_some() && due {
                self.make_durable(&mut last_commit, &mut commits, &mut touched)
                    .await?;
                changes = 0;
                last_flush = Instant::now();
            }
        }
        self.make_durable(&mut last_commit, &mut commits, &mut touched)
            .await
    }

    fn store_events(
        &self,
        change: &Change,
        touched: &mut BTreeSet<String>,
    ) -> Result<(), StoreError> {
        self.metrics.change_captured();
        for routed in self.router.route(change) {
            let record = self.record(routed)?;
            if self.store.insert(&record)? {
                self.metrics.event_created();
                touched.insert(record.webhook);
            }
        }
        Ok(())
    }

    fn record(&self, routed: RoutedEvent) -> Result<EventRecord, StoreError> {
        let now = now_ms();
        let (request, render_error) = match routed.request {
            Ok(request) => (request, None),
            Err(error) => {
                warn!(event = %routed.id, webhook = %routed.webhook, %error, "request not rendered");
                let placeholder = StoredRequest {
                    method: String::new(),
                    url: String::new(),
                    headers: Vec::new(),
                    body: None,
                };
                (placeholder, Some(error.to_string()))
            }
        };
        let envelope = (!routed.body_is_envelope).then_some(routed.envelope);
        let schedule = self
            .schedules
            .get(&routed.webhook)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let (status, next_attempt_at_ms, finished_at_ms) = match render_error {
            None => (
                Status::Pending,
                Some(retry::first_attempt_at(now, schedule)),
                None,
            ),
            Some(_) => (Status::Failed, None, Some(now)),
        };
        Ok(EventRecord {
            id: routed.id,
            webhook: routed.webhook,
            model: routed.model,
            kind: routed.kind,
            envelope,
            request,
            created_at_ms: now,
            sequence: self.store.next_sequence()?,
            status,
            attempts: 0,
            schedule: Schedule::Regular,
            next_attempt_at_ms,
            last_status_code: None,
            last_error: render_error.clone(),
            finished_at_ms,
            render_error,
        })
    }

    async fn make_durable(
        &self,
        last_commit: &mut Option<Lsn>,
        commits: &mut usize,
        touched: &mut BTreeSet<String>,
    ) -> Result<(), StoreError> {
        let Some(lsn) = last_commit.take() else {
            return Ok(());
        };
        self.store.set_checkpoint(lsn)?;
        let flushing = std::time::Instant::now();
        self.store.flush().await?;
        tracing::debug!(commits = *commits, took = ?flushing.elapsed(), "store flushed");
        self.acknowledger.acknowledge(lsn);
        for webhook in std::mem::take(touched) {
            self.waker.wake(&webhook);
        }
        *commits = 0;
        Ok(())
    }
}
