//! Alerts (CONTRACT §9): telling people that delivery or capture is in trouble.
//!
//! Delivery's recorder reports each finished attempt, and every `pause_after` pause, on a
//! channel; capture's state comes from its watch channel. A pure [`watch`] decides
//! what to say. Each alert becomes an event of every `[[alerts]]` target that wants it
//! — kept under the target's queue name (`alert:<name>`) and delivered by a lane of its
//! own like any webhook's event: retries, signing, history. A failing alert target holds
//! up nothing but its own alerts, and its failures raise no alerts.

mod watch;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch as channel};
use tracing::{error, info, warn};

use crate::capture::CaptureStatus;
use crate::config::{AlertConfig, AlertKind, Config};
use crate::event::{Content, Lane, NewEvent};
use crate::route::Router;
use crate::shutdown::Shutdown;
use crate::store::{EventStore, NewEvents};
use crate::time::{now_ms, rfc3339_from_unix_ms};

pub(crate) use watch::AttemptSeen;
use watch::Watch;

/// One alert, as the body template sees it (`alert.kind`, `alert.message`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub kind: AlertKind,
    /// The webhook it is about; `None` for `capture_down`.
    pub webhook: Option<String>,
    pub message: String,
    /// How many events or attempts it covers.
    pub count: u64,
    pub first_event_id: Option<String>,
    pub last_event_id: Option<String>,
    pub time_ms: u64,
    /// For `capture_down`: the targets' threshold it is said for.
    pub capture_down_after: Option<Duration>,
}

impl Alert {
    fn about(kind: AlertKind, webhook: &str, message: String, time_ms: u64) -> Alert {
        Alert {
            webhook: Some(webhook.to_string()),
            ..Alert::general(kind, message, time_ms)
        }
    }

    fn general(kind: AlertKind, message: String, time_ms: u64) -> Alert {
        Alert {
            kind,
            webhook: None,
            message,
            count: 1,
            first_event_id: None,
            last_event_id: None,
            time_ms,
            capture_down_after: None,
        }
    }

    fn with_events(mut self, count: u64, first: &str, last: &str) -> Alert {
        self.count = count;
        self.first_event_id = Some(first.to_string());
        self.last_event_id = Some(last.to_string());
        self
    }

    /// The alert as JSON: the default body, and `alert` in a body template.
    pub fn to_json(&self) -> Value {
        json!({
            "kind": self.kind.as_str(),
            "webhook": self.webhook,
            "message": self.message,
            "count": self.count,
            "first_event_id": self.first_event_id,
            "last_event_id": self.last_event_id,
            "time": rfc3339_from_unix_ms(self.time_ms),
        })
    }
}

/// What delivery tells the alerts.
enum Signal {
    Attempt {
        webhook: String,
        event_id: String,
        succeeded: bool,
        failed_for_good: bool,
        error: Option<String>,
    },
    Paused {
        webhook: String,
        pause_after: Duration,
    },
}

/// Delivery's end of the alert channel. Sending never waits; with no alert targets the
/// signals go nowhere.
#[derive(Clone)]
pub struct AlertSender(mpsc::UnboundedSender<Signal>);

impl AlertSender {
    /// A sender whose signals nobody reads.
    pub fn unconnected() -> AlertSender {
        channel_pair().0
    }

    pub(crate) fn attempt(&self, seen: &AttemptSeen<'_>) {
        let _ = self.0.send(Signal::Attempt {
            webhook: seen.webhook.to_string(),
            event_id: seen.event_id.to_string(),
            succeeded: seen.succeeded,
            failed_for_good: seen.failed_for_good,
            error: seen.error.map(str::to_string),
        });
    }

    pub(crate) fn paused(&self, webhook: &str, pause_after: Duration) {
        let _ = self.0.send(Signal::Paused {
            webhook: webhook.to_string(),
            pause_after,
        });
    }
}

/// The alerts' end of the channel.
pub struct AlertSignals(mpsc::UnboundedReceiver<Signal>);

pub fn channel_pair() -> (AlertSender, AlertSignals) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (AlertSender(sender), AlertSignals(receiver))
}

pub struct Alerter {
    config: Arc<Config>,
    router: Arc<Router>,
    store: Arc<dyn EventStore>,
    signals: AlertSignals,
    capture: channel::Receiver<CaptureStatus>,
    watch: Watch,
    /// Makes alert ids unique within a millisecond.
    counter: AtomicU32,
    /// Alerts the store could not take (its database down, perhaps the very outage an
    /// alert is about), tried again every few seconds, the oldest dropped past a bound.
    unsent: Vec<NewEvent>,
}

/// How many alert events wait for the store at most.
const UNSENT_MOST: usize = 1_000;
const UNSENT_RETRY: Duration = Duration::from_secs(5);

impl Alerter {
    pub fn new(
        config: Arc<Config>,
        router: Arc<Router>,
        store: Arc<dyn EventStore>,
        signals: AlertSignals,
        capture: channel::Receiver<CaptureStatus>,
    ) -> Alerter {
        let thresholds: BTreeSet<Duration> = config
            .alerts
            .iter()
            .filter(|target| target.on.contains(&AlertKind::CaptureDown))
            .map(|target| target.capture_down_after)
            .collect();
        Alerter {
            watch: Watch::new(thresholds, now_ms()),
            config,
            router,
            store,
            signals,
            capture,
            counter: AtomicU32::new(0),
            unsent: Vec::new(),
        }
    }

    /// Raises alerts until shutdown.
    pub async fn run(mut self, mut shutdown: Shutdown) {
        let mut capture_open = true;
        self.capture_changed();
        loop {
            let now = now_ms();
            let wait = self
                .watch
                .next_tick_ms()
                .map_or(Duration::from_secs(3_600), |at| {
                    Duration::from_millis(at.saturating_sub(now))
                });
            let wait = if self.unsent.is_empty() {
                wait
            } else {
                wait.min(UNSENT_RETRY)
            };
            let mut alerts = Vec::new();
            tokio::select! {
                _ = shutdown.requested() => return,
                signal = self.signals.0.recv() => match signal {
                    Some(signal) => alerts.extend(self.signal(signal)),
                    None => return,
                },
                changed = self.capture.changed(), if capture_open => match changed {
                    Ok(()) => self.capture_changed(),
                    Err(_) => capture_open = false,
                },
                _ = tokio::time::sleep(wait) => {}
            }
            alerts.extend(self.watch.tick(now_ms()));
            if !alerts.is_empty() || !self.unsent.is_empty() {
                self.send(alerts).await;
            }
        }
    }

    fn capture_changed(&mut self) {
        let status = self.capture.borrow_and_update().clone();
        // A standby is healthy: another instance captures.
        let streaming = status.state.is_healthy();
        self.watch.capture(streaming, status.last_error, now_ms());
    }

    fn signal(&mut self, signal: Signal) -> Vec<Alert> {
        match signal {
            Signal::Attempt {
                webhook,
                event_id,
                succeeded,
                failed_for_good,
                error,
            } => self.watch.attempt(
                &AttemptSeen {
                    webhook: &webhook,
                    event_id: &event_id,
                    succeeded,
                    failed_for_good,
                    error: error.as_deref(),
                },
                now_ms(),
            ),
            Signal::Paused {
                webhook,
                pause_after,
            } => vec![self.watch.paused(&webhook, pause_after, now_ms())],
        }
    }

    /// Stores one event per alert and target that wants it; delivery takes it from there.
    async fn send(&mut self, alerts: Vec<Alert>) {
        let mut events = std::mem::take(&mut self.unsent);
        for alert in &alerts {
            info!(kind = alert.kind.as_str(), webhook = alert.webhook.as_deref().unwrap_or("-"), message = %alert.message, "alert");
            for (index, target) in self.config.alerts.iter().enumerate() {
                if self.wants(target, alert) {
                    events.push(self.event(index, target, alert));
                }
            }
        }
        if events.is_empty() {
            return;
        }
        let batch = NewEvents {
            events: events.clone(),
            resume_after: None,
            backfill: None,
            drained_outbox: Vec::new(),
        };
        if let Err(error) = self.store.append(batch).await {
            warn!(%error, waiting = events.len(), "cannot store alerts; trying again in a few seconds");
            let excess = events.len().saturating_sub(UNSENT_MOST);
            if excess > 0 {
                error!(
                    dropped = excess,
                    "too many alerts wait for the store; the oldest are lost"
                );
                events.drain(..excess);
            }
            self.unsent = events;
        }
    }

    fn wants(&self, target: &AlertConfig, alert: &Alert) -> bool {
        if !target.on.contains(&alert.kind) {
            return false;
        }
        match (&alert.webhook, alert.capture_down_after) {
            (Some(webhook), _) => self
                .config
                .webhook(webhook)
                .is_some_and(|webhook| webhook.alerts.contains(&target.name)),
            (None, Some(after)) => after == target.capture_down_after,
            (None, None) => true,
        }
    }

    fn event(&self, index: usize, target: &AlertConfig, alert: &Alert) -> NewEvent {
        let number = self.counter.fetch_add(1, AtomicOrdering::Relaxed) % 10_000;
        let created_at_ms = now_ms();
        let envelope = alert.to_json();
        let content = match self.router.alert_request(index, target, &envelope) {
            Ok(request) => Content::Rendered {
                envelope: target.body.as_ref().map(|_| envelope.to_string()),
                request,
            },
            Err(reason) => {
                warn!(target = %target.name, %reason, "alert body not rendered");
                Content::Unrendered {
                    reason,
                    envelope: envelope.to_string(),
                }
            }
        };
        NewEvent {
            id: format!("alr_{created_at_ms}{number:04}_{}", target.name),
            webhook: target.queue_name(),
            model: "alert".to_string(),
            kind: format!("alert.{}", alert.kind.as_str()),
            created_at_ms,
            // Said at once; the target's `retry` spaces the attempts after a failure.
            first_attempt_at_ms: created_at_ms,
            content,
            lane: Lane::Live,
            row_key: None,
            ordered: false,
        }
    }
}
