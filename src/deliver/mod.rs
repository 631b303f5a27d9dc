//! Delivery: one lane per webhook takes its due events from the store and attempts them,
//! within the webhook's own cap and the global concurrency limit, and records every
//! attempt. Lanes are independent, so a slow or dead endpoint holds up only its own
//! events; capture never waits for delivery at all.

pub mod client;
mod failure;
pub mod retry;
pub mod signature;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, error, info_span, warn};

use crate::config::{Config, WebhookConfig};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};
use client::{AttemptOptions, DeliveryClient};

/// How long a lane waits at most before looking at the store again, so that an event
/// whose wake-up was missed (e.g. redelivered from another process) is still found.
const IDLE_RECHECK: Duration = Duration::from_secs(1);
/// On shutdown, how long attempts under way get to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or_default()
}

/// Wakes a webhook's lane when it has new due events.
#[derive(Clone, Default)]
pub struct DispatchWaker(Arc<HashMap<String, Arc<Notify>>>);

impl DispatchWaker {
    pub fn wake(&self, webhook: &str) {
        if let Some(notify) = self.0.get(webhook) {
            notify.notify_one();
        }
    }
}

struct Lane {
    webhook: WebhookConfig,
    own_limit: Arc<Semaphore>,
    in_flight: Mutex<HashSet<String>>,
    wake: Arc<Notify>,
}

pub struct Dispatcher {
    metrics: Arc<Metrics>,
    store: Arc<Store>,
    client: Arc<DeliveryClient>,
    global_limit: Arc<Semaphore>,
    lanes: Vec<Arc<Lane>>,
}

impl Dispatcher {
    pub fn new(
        config: &Config,
        store: Arc<Store>,
        client: Arc<DeliveryClient>,
        metrics: Arc<Metrics>,
    ) -> (Dispatcher, DispatchWaker) {
        let mut wakers = HashMap::new();
        let lanes = config
            .webhooks
            .iter()
            .map(|webhook| {
                let wake = Arc::new(Notify::new());
                wakers.insert(webhook.name.clone(), wake.clone());
                Arc::new(Lane {
                    webhook: webhook.clone(),
                    own_limit: Arc::new(Semaphore::new(webhook.delivery.concurrency.max(1))),
                    in_flight: Mutex::new(HashSet::new()),
                    wake,
                })
            })
            .collect();
        let dispatcher = Dispatcher {
            metrics,
            store,
            client,
            global_limit: Arc::new(Semaphore::new(config.delivery.concurrency.max(1))),
            lanes,
        };
        (dispatcher, DispatchWaker(Arc::new(wakers)))
    }

    /// Delivers until shutdown, then lets attempts under way finish (within a grace period;
    /// an attempt cut off is simply made again after a restart).
    pub async fn run(self, shutdown: Shutdown) {
        let mut lanes = JoinSet::new();
        let attempts = Arc::new(Mutex::new(JoinSet::new()));
        for lane in &self.lanes {
            let worker = LaneWorker {
                metrics: self.metrics.clone(),
                lane: lane.clone(),
                cursor: None,
                store: self.store.clone(),
                client: self.client.clone(),
                global_limit: self.global_limit.clone(),
                attempts: attempts.clone(),
            };
            lanes.spawn(worker.run(shutdown.clone()));
        }
        while lanes.join_next().await.is_some() {}
        let mut remaining = std::mem::take(&mut *lock(&attempts));
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while remaining.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!("attempts still under way at shutdown were cut off; they will be made again");
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain data behind; keep going.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct LaneWorker {
    metrics: Arc<Metrics>,
    lane: Arc<Lane>,
    /// The due entry handed out last; see `start_due_attempts`.
    cursor: Option<Vec<u8>>,
    store: Arc<Store>,
    client: Arc<DeliveryClient>,
    global_limit: Arc<Semaphore>,
    attempts: Arc<Mutex<JoinSet<()>>>,
}

impl LaneWorker {
    async fn run(mut self, mut shutdown: Shutdown) {
        while !shutdown.is_requested() {
            let wait = match self.start_due_attempts() {
                Ok(wait) => wait,
                Err(error) => {
                    error!(webhook = %self.lane.webhook.name, %error, "cannot read due events");
                    IDLE_RECHECK
                }
            };
            tokio::select! {
                _ = shutdown.requested() => {}
                _ = self.lane.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Starts every due attempt the lane has room for; returns how long to wait before
    /// looking again. Looks start after the last entry handed out (entries before it are
    /// in flight), so a long queue is not rescanned on every wake-up; when nothing after
    /// the cursor is due, the next look starts from the beginning again.
    fn start_due_attempts(&mut self) -> Result<Duration, StoreError> {
        let webhook = &self.lane.webhook.name;
        let now = now_ms();
        let free = self.lane.own_limit.available_permits();
        let due = {
            let in_flight = lock(&self.lane.in_flight);
            self.store
                .due(webhook, now, free, &in_flight, self.cursor.as_deref())?
        };
        let next = due.next;
        if due.found.is_empty() && next.is_none_or(|at| at > now) {
            self.cursor = None;
        } else if due.cursor.is_some() {
            self.cursor = due.cursor;
        }
        for (due_at, id) in due.found {
            if !lock(&self.lane.in_flight).insert(id.clone()) {
                // Two due entries for one event (left by a crash): one attempt at a time.
                continue;
            }
            let Ok(permit) = self.lane.own_limit.clone().try_acquire_owned() else {
                // Not started after all: the next look must start from the beginning.
                lock(&self.lane.in_flight).remove(&id);
                self.cursor = None;
                break;
            };
            let attempt = Attempt {
                metrics: self.metrics.clone(),
                due_at,
                id,
                lane: self.lane.clone(),
                store: self.store.clone(),
                client: self.client.clone(),
                global_limit: self.global_limit.clone(),
            };
            let span = info_span!("delivery", webhook = %webhook, event = %attempt.id);
            let mut attempts = lock(&self.attempts);
            // Finished attempts stay in the set until joined: reap them, or every attempt
            // ever made would be kept in memory until shutdown.
            while attempts.try_join_next().is_some() {}
            attempts.spawn(
                async move {
                    attempt.run().await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
        let wait = match next {
            // Due now but no room: an attempt finishing wakes the lane.
            Some(at) if at <= now => IDLE_RECHECK,
            Some(at) => Duration::from_millis(at - now).min(IDLE_RECHECK),
            None => IDLE_RECHECK,
        };
        Ok(wait)
    }
}

struct Attempt {
    metrics: Arc<Metrics>,
    due_at: u64,
    id: String,
    lane: Arc<Lane>,
    store: Arc<Store>,
    client: Arc<DeliveryClient>,
    global_limit: Arc<Semaphore>,
}

impl Attempt {
    async fn run(self) {
        if let Err(error) = self.deliver().await {
            error!(%error, "cannot record the attempt; it will be made again");
        }
        lock(&self.lane.in_flight).remove(&self.id);
        self.lane.wake.notify_one();
    }

    async fn deliver(&self) -> Result<(), StoreError> {
        let Ok(_global) = self.global_limit.acquire().await else {
            return Ok(());
        };
        let webhook = &self.lane.webhook;
        let Some(event) = self
            .store
            .event_if_due(&webhook.name, self.due_at, &self.id)?
        else {
            return Ok(());
        };
        let options = AttemptOptions {
            number: event.attempts + 1,
            event_id: &event.id,
            event_id_header: &webhook.delivery.event_id_header,
            secret: webhook.secret.as_deref(),
            timeout: webhook.delivery.timeout,
        };
        let attempt = self.client.attempt(&event.request, &options).await;
        let finished = now_ms();
        let next = if attempt.succeeded() {
            None
        } else {
            retry::next_attempt_at(
                &webhook.delivery.retry,
                event.schedule,
                attempt.number,
                finished,
            )
        };
        let status = self
            .store
            .finish_attempt(&event.id, &attempt, next, finished)?;
        match attempt.error_kind {
            None => debug!(number = attempt.number, status = ?attempt.status_code, "delivered"),
            Some(kind) => warn!(
                number = attempt.number,
                kind = kind.as_str(),
                error = attempt.error.as_deref().unwrap_or_default(),
                outcome = status.as_str(),
                "attempt failed"
            ),
        }
        self.metrics.attempt(
            &attempt,
            status,
            finished.saturating_sub(event.created_at_ms),
        );
        Ok(())
    }
}
