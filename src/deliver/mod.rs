//! Delivery: one lane per webhook claims its due events from the store and attempts
//! them, within the webhook's own cap and the global concurrency limit; a recorder hands
//! finished attempts back to the store in batches. Lanes are independent, so a slow or
//! dead endpoint holds up only its own events; capture never waits for delivery at all.

mod client;
mod failure;

pub use client::{AttemptOptions, ClientError, DeliveryClient, RESPONSE_BODY_LIMIT};

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, error, info_span, warn};

use crate::config::{Config, WebhookConfig};
use crate::metrics::Metrics;
use crate::outgoing::Outgoing;
use crate::rate::TokenBucket;
use crate::shutdown::Shutdown;
use crate::store::{ClaimedEvent, EventStore, FinishedAttempt};
use crate::time::{now_micros, now_ms};

/// How long a lane waits at most before looking at the store again, so that an event
/// whose wake-up was missed (e.g. redelivered from another process) is still found.
const IDLE_RECHECK: Duration = Duration::from_secs(1);
/// On shutdown, how long attempts under way get to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The recorder hands at most this many attempts to the store at once, collected over
/// at most this long: the store writes a few pages per batch, so larger batches cost far
/// less, and nothing waits for the record (the answer is in, the slot already free).
const RECORD_BATCH: usize = 1024;
const RECORD_WINDOW: Duration = Duration::from_millis(20);

/// What every lane and attempt shares.
struct Context {
    store: Arc<dyn EventStore>,
    client: DeliveryClient,
    metrics: Arc<Metrics>,
    global_limit: Semaphore,
}

struct Lane {
    webhook: WebhookConfig,
    retry: Arc<[Duration]>,
    own_limit: Arc<Semaphore>,
    wake: Arc<Notify>,
    /// When the webhook's attempts started failing without a success since, for
    /// `pause_after`; counted afresh after a restart.
    failing_since: std::sync::Mutex<Option<u64>>,
}

/// A finished attempt on its way to the recorder, with what the metrics need.
struct Outcome {
    finished: FinishedAttempt,
    created_at_ms: u64,
    lane: Arc<Lane>,
}

pub struct Dispatcher {
    context: Arc<Context>,
    lanes: Vec<Arc<Lane>>,
}

impl Dispatcher {
    pub fn new(
        config: &Config,
        store: Arc<dyn EventStore>,
        client: DeliveryClient,
        metrics: Arc<Metrics>,
    ) -> Dispatcher {
        let lanes = config
            .webhooks
            .iter()
            .map(|webhook| {
                Arc::new(Lane {
                    webhook: webhook.clone(),
                    retry: webhook.delivery.retry.clone().into(),
                    own_limit: Arc::new(Semaphore::new(webhook.delivery.concurrency.max(1))),
                    wake: store.wakeups().waiter(&webhook.name),
                    failing_since: std::sync::Mutex::new(None),
                })
            })
            .collect();
        let context = Arc::new(Context {
            store,
            client,
            metrics,
            global_limit: Semaphore::new(config.delivery.concurrency.max(1)),
        });
        Dispatcher { context, lanes }
    }

    /// Delivers until shutdown, then lets attempts under way finish (within a grace
    /// period; an attempt cut off is simply made again after a restart) and records them.
    pub async fn run(self, shutdown: Shutdown) {
        let (outcomes, recorded) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(record(self.context.clone(), recorded));
        let mut lanes = JoinSet::new();
        for lane in &self.lanes {
            let worker = LaneWorker {
                context: self.context.clone(),
                lane: lane.clone(),
                attempts: JoinSet::new(),
                outcomes: outcomes.clone(),
                bucket: lane.webhook.delivery.rate.map(TokenBucket::new),
            };
            lanes.spawn(worker.run(shutdown.clone()));
        }
        drop(outcomes);
        let mut under_way = JoinSet::new();
        while let Some(finished) = lanes.join_next().await {
            if let Ok(attempts) = finished {
                under_way.spawn(drain(attempts));
            }
        }
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while under_way.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!("attempts still under way at shutdown were cut off; they will be made again");
        }
        // Cut-off attempts drop their senders with them, so the recorder ends.
        under_way.abort_all();
        let _ = recorder.await;
    }
}

async fn drain(mut attempts: JoinSet<()>) {
    while attempts.join_next().await.is_some() {}
}

/// Hands finished attempts to the store in batches: whatever finished within a short
/// window goes together.
async fn record(context: Arc<Context>, mut recorded: mpsc::UnboundedReceiver<Outcome>) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while recorded.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let window = tokio::time::sleep(RECORD_WINDOW);
        tokio::pin!(window);
        while batch.len() < RECORD_BATCH {
            let room = RECORD_BATCH - batch.len();
            tokio::select! {
                received = recorded.recv_many(&mut batch, room) => {
                    if received == 0 {
                        break;
                    }
                }
                () = &mut window => break,
            }
        }
        let finished = batch
            .iter()
            .map(|outcome| outcome.finished.clone())
            .collect();
        match context.store.record_attempts(finished).await {
            Ok(statuses) => {
                for (outcome, status) in batch.iter().zip(statuses) {
                    let attempt = &outcome.finished.attempt;
                    let latency = outcome
                        .finished
                        .finished_at_ms
                        .saturating_sub(outcome.created_at_ms);
                    context.metrics.attempt(attempt, status, latency);
                    match attempt.error_kind {
                        None => debug!(number = attempt.number, "delivered"),
                        Some(kind) => warn!(
                            webhook = %outcome.lane.webhook.name,
                            number = attempt.number,
                            kind = kind.as_str(),
                            error = attempt.error.as_deref().unwrap_or_default(),
                            outcome = status.as_str(),
                            "attempt failed"
                        ),
                    }
                }
            }
            Err(error) => {
                error!(%error, attempts = batch.len(), "cannot record attempts; they will be made again after a restart");
            }
        }
        pause_failing(&context, &batch).await;
        // A retry due at once is claimable only now that it is recorded.
        for outcome in batch.drain(..) {
            outcome.lane.wake.notify_one();
        }
    }
    if let Err(error) = context.store.flush().await {
        error!(%error, "cannot flush the last attempts");
    }
}

/// `pause_after`: pauses the webhooks of `batch` that have been failing, without a
/// single success, for that long.
async fn pause_failing(context: &Context, batch: &[Outcome]) {
    for outcome in batch {
        let Some(pause_after) = outcome.lane.webhook.delivery.pause_after else {
            continue;
        };
        let crossed = {
            let mut failing_since = outcome
                .lane
                .failing_since
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            crossed_pause_after(
                &mut failing_since,
                outcome.finished.attempt.succeeded(),
                outcome.finished.finished_at_ms,
                pause_after,
            )
        };
        if crossed {
            let webhook = &outcome.lane.webhook.name;
            warn!(%webhook, ?pause_after, "webhook paused: its attempts failed without a success for pause_after");
            if let Err(error) = context.store.set_paused(webhook, true).await {
                error!(%webhook, %error, "cannot pause the failing webhook");
            }
        }
    }
}

/// Whether an attempt's outcome makes a webhook cross `pause_after`: failing since the
/// first failure after the last success, for at least that long. Crossing starts the
/// count over, so it is said once.
fn crossed_pause_after(
    failing_since: &mut Option<u64>,
    succeeded: bool,
    at_ms: u64,
    pause_after: Duration,
) -> bool {
    if succeeded {
        *failing_since = None;
        return false;
    }
    let since = *failing_since.get_or_insert(at_ms);
    if at_ms.saturating_sub(since) >= pause_after.as_millis() as u64 {
        *failing_since = None;
        return true;
    }
    false
}

struct LaneWorker {
    context: Arc<Context>,
    lane: Arc<Lane>,
    attempts: JoinSet<()>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    /// `rate`: attempts started no faster; the events wait, pending.
    bucket: Option<TokenBucket>,
}

impl LaneWorker {
    /// Runs until shutdown; returns the attempts still under way.
    async fn run(mut self, mut shutdown: Shutdown) -> JoinSet<()> {
        while !shutdown.is_requested() {
            // Finished attempts stay in the set until joined: reap them, or every
            // attempt ever made would be kept in memory until shutdown.
            while self.attempts.try_join_next().is_some() {}
            let wait = match self.start_due_attempts().await {
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
        self.attempts
    }

    /// Claims as many due events as the lane has room for and starts their attempts;
    /// returns how long to wait before looking again.
    async fn start_due_attempts(&mut self) -> Result<Duration, crate::store::StoreError> {
        let mut free = self.lane.own_limit.available_permits();
        if free == 0 {
            // A finishing attempt wakes the lane.
            return Ok(IDLE_RECHECK);
        }
        let now_micros = u64::try_from(now_micros()).unwrap_or_default();
        if let Some(bucket) = &self.bucket {
            free = bucket.available(now_micros, free);
            if free == 0 {
                return Ok(bucket.wait(now_micros));
            }
        }
        let now = now_ms();
        let due = self
            .context
            .store
            .claim_due(&self.lane.webhook.name, now, free)
            .await?;
        if let Some(bucket) = &mut self.bucket {
            bucket.spend(now_micros, due.events.len());
        }
        for event in due.events {
            let Ok(permit) = self.lane.own_limit.clone().try_acquire_owned() else {
                // Only this worker takes permits, and it asked for no more than were free.
                break;
            };
            let span = info_span!("delivery", webhook = %self.lane.webhook.name, event = %event.id);
            let attempt = attempt(
                self.context.clone(),
                self.lane.clone(),
                event,
                self.outcomes.clone(),
            );
            self.attempts.spawn(
                async move {
                    attempt.await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
        let rate_wait = self
            .bucket
            .as_ref()
            .map_or(Duration::ZERO, |bucket| bucket.wait(now_micros));
        Ok(match due.next_due_at_ms {
            Some(at) if at <= now => rate_wait,
            Some(at) => Duration::from_millis(at - now).min(IDLE_RECHECK),
            None => IDLE_RECHECK,
        })
    }
}

async fn attempt(
    context: Arc<Context>,
    lane: Arc<Lane>,
    event: ClaimedEvent,
    outcomes: mpsc::UnboundedSender<Outcome>,
) {
    let Ok(_global) = context.global_limit.acquire().await else {
        return;
    };
    let webhook = &lane.webhook;
    let options = AttemptOptions {
        number: event.attempts + 1,
        outgoing: Outgoing {
            event_id: &event.id,
            event_id_header: &webhook.delivery.event_id_header,
            secret: webhook.secret.as_deref(),
        },
        timeout: webhook.delivery.timeout,
    };
    let attempt = context.client.attempt(&event.request, &options).await;
    let outcome = Outcome {
        finished: FinishedAttempt {
            webhook: event.webhook,
            claim: event.claim,
            attempt,
            retry: lane.retry.clone(),
            finished_at_ms: now_ms(),
        },
        created_at_ms: event.created_at_ms,
        lane: lane.clone(),
    };
    // The recorder outlives every attempt but those cut off at shutdown.
    let _ = outcomes.send(outcome);
    // The lane has room again (the claim stays the store's until recorded).
    lane.wake.notify_one();
}

#[cfg(test)]
mod pause_after_tests {
    use super::*;

    #[test]
    fn a_webhook_failing_long_enough_crosses_once() {
        let hour = Duration::from_secs(3_600);
        let mut since = None;
        assert!(!crossed_pause_after(&mut since, false, 1_000, hour));
        assert_eq!(since, Some(1_000));
        assert!(!crossed_pause_after(
            &mut since,
            false,
            1_000 + 3_599_999,
            hour
        ));
        // A success starts the count over.
        assert!(!crossed_pause_after(&mut since, true, 2_000_000, hour));
        assert_eq!(since, None);
        assert!(!crossed_pause_after(&mut since, false, 3_000_000, hour));
        assert!(crossed_pause_after(
            &mut since,
            false,
            3_000_000 + 3_600_000,
            hour
        ));
        assert_eq!(since, None, "said once");
    }
}
