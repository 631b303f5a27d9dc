//! Delivery: one lane per webhook claims its due events from the store and attempts
//! them, within the webhook's own cap and the global concurrency limit; a recorder hands
//! finished attempts back to the store in batches. Lanes are independent, so a slow or
//! dead endpoint holds up only its own events; capture never waits for delivery at all.

mod client;
mod failure;
mod guard;
mod pausing;
mod targets;

pub use client::{AttemptOptions, ClientError, DeliveryClient, RESPONSE_BODY_LIMIT};
pub use targets::check_targets;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, error, info_span, warn};

use crate::alert::{AlertSender, AttemptSeen};
use crate::config::{AlertConfig, Config, DeliveryConfig, WebhookConfig};
use crate::event::Status;
use crate::metrics::Metrics;
use crate::outgoing::Outgoing;
use crate::secret::Secrets;
use crate::shutdown::Shutdown;
use crate::store::{ClaimedEvent, EventStore, FinishedAttempt};
use crate::time::now_ms;

/// How long a lane waits at most before looking at the store again, so that an event
/// whose wake-up was missed (e.g. redelivered from another process) is still found.
const IDLE_RECHECK: Duration = Duration::from_secs(1);
/// With a shared store, a busy lane claims once an eighth of its places are free.
const CLAIM_SHARE: usize = 8;
/// On shutdown, how long attempts under way get to finish.
const SHUTDOWN_GRACE: Duration = crate::shutdown::ATTEMPT_GRACE;
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
    alerts: AlertSender,
    /// An attempt's error may quote its URL (with a `${VAR}` in the query): the alerts and
    /// the last-hour activity get it masked, as the history shows it.
    secrets: Secrets,
}

/// Where a lane delivers: a webhook, or an `[[alerts]]` target.
struct Endpoint {
    /// The webhook's name, or the alert target's queue name.
    name: String,
    delivery: DeliveryConfig,
    secret: Option<String>,
    /// Whether its attempts are told to the alerts (an alert target's are not: a
    /// failing alert target must not alert about itself).
    alerting: bool,
}

impl Endpoint {
    fn of_webhook(webhook: &WebhookConfig) -> Endpoint {
        Endpoint {
            name: webhook.name.clone(),
            delivery: webhook.delivery.clone(),
            secret: webhook.secret.clone(),
            alerting: true,
        }
    }

    fn of_alert_target(target: &AlertConfig) -> Endpoint {
        Endpoint {
            name: target.queue_name(),
            delivery: target.delivery.clone(),
            secret: target.secret.clone(),
            alerting: false,
        }
    }
}

struct Lane {
    webhook: Endpoint,
    retry: Arc<[Duration]>,
    own_limit: Arc<Semaphore>,
    /// The lane's own limit, and how many of its places must be free before it claims
    /// more while attempts are under way: with a shared store a claim is a transaction,
    /// so it is worth one only for a handful of events.
    concurrency: usize,
    claim_at_least: usize,
    wake: Arc<Notify>,
    /// When the webhook's attempts started failing without a success since, for
    /// `pause_after`; counted afresh after a restart.
    failing_since: std::sync::Mutex<Option<u64>>,
}

/// A finished attempt on its way to the recorder, with what the metrics need.
struct Outcome {
    finished: FinishedAttempt,
    event_id: String,
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
        alerts: AlertSender,
    ) -> Dispatcher {
        let endpoints = config
            .webhooks
            .iter()
            .map(Endpoint::of_webhook)
            .chain(config.alerts.iter().map(Endpoint::of_alert_target));
        let shared_store = crate::store::is_shared(&config.store);
        let lanes = endpoints
            .map(|webhook| {
                let concurrency = webhook.delivery.concurrency.max(1);
                Arc::new(Lane {
                    retry: webhook.delivery.retry.clone().into(),
                    own_limit: Arc::new(Semaphore::new(concurrency)),
                    concurrency,
                    claim_at_least: if shared_store {
                        (concurrency / CLAIM_SHARE).max(1)
                    } else {
                        1
                    },
                    wake: store.wakeups().waiter(&webhook.name),
                    failing_since: std::sync::Mutex::new(None),
                    webhook,
                })
            })
            .collect();
        let context = Arc::new(Context {
            store,
            client,
            metrics,
            global_limit: Semaphore::new(config.delivery.concurrency.max(1)),
            alerts,
            secrets: config.secrets.clone(),
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
                    let error = attempt
                        .error
                        .as_deref()
                        .map(|error| context.secrets.mask_all(error));
                    if outcome.lane.webhook.alerting {
                        context.alerts.attempt(&AttemptSeen {
                            webhook: &outcome.lane.webhook.name,
                            event_id: &outcome.event_id,
                            succeeded: attempt.succeeded(),
                            failed_for_good: status == Status::Failed,
                            error: error.as_deref(),
                        });
                    }
                    let latency = outcome
                        .finished
                        .finished_at_ms
                        .saturating_sub(outcome.created_at_ms);
                    context.metrics.attempt(attempt, status, latency);
                    context.metrics.activity.record(
                        &outcome.lane.webhook.name,
                        outcome.finished.finished_at_ms,
                        match attempt.error_kind {
                            None => Ok(latency),
                            Some(kind) => Err(error.as_deref().unwrap_or(kind.as_str())),
                        },
                    );
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
        pausing::pause_failing(&context, &batch).await;
        // A retry due at once is claimable only now that it is recorded.
        for outcome in batch.drain(..) {
            outcome.lane.wake.notify_one();
        }
    }
    if let Err(error) = context.store.flush().await {
        error!(%error, "cannot flush the last attempts");
    }
}

struct LaneWorker {
    context: Arc<Context>,
    lane: Arc<Lane>,
    attempts: JoinSet<()>,
    outcomes: mpsc::UnboundedSender<Outcome>,
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
        let free = self.lane.own_limit.available_permits();
        let under_way = self.lane.concurrency.saturating_sub(free);
        if free == 0 || (under_way > 0 && free < self.lane.claim_at_least) {
            // A finishing attempt wakes the lane.
            return Ok(IDLE_RECHECK);
        }
        let now = now_ms();
        let due = self
            .context
            .store
            .claim_due_at_rate(
                &self.lane.webhook.name,
                now,
                free,
                self.lane.webhook.delivery.rate,
            )
            .await?;
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
        Ok(match due.next_due_at_ms {
            Some(at) if at <= now => Duration::ZERO,
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
        event_id: event.id,
    };
    // The recorder outlives every attempt but those cut off at shutdown.
    let _ = outcomes.send(outcome);
    // The lane has room again (the claim stays the store's until recorded).
    lane.wake.notify_one();
}
