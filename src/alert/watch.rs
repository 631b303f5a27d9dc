//! When to raise an alert (CONTRACT §9), as a pure state machine: attempts, pauses and
//! capture states go in with the time, alerts come out. `event_failed` is gathered for a
//! moment and then said at most once per webhook per minute, with the count.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::Alert;
use crate::config::AlertKind;

/// Failures said together: those arriving this close to the first.
const GATHER_MS: u64 = 1_000;
/// `event_failed` is said at most this often per webhook.
const EVENT_FAILED_EVERY_MS: u64 = 60_000;
/// `webhook_failing` after this many failed attempts in a row.
const FAILING_AFTER: u32 = 5;

/// Events that failed for good, not yet said.
struct Failures {
    count: u64,
    first_event_id: String,
    last_event_id: String,
    last_error: Option<String>,
    since_ms: u64,
}

#[derive(Default)]
struct WebhookWatch {
    failed_in_a_row: u32,
    failing: bool,
    failures: Option<Failures>,
    last_event_failed_ms: Option<u64>,
}

/// What an attempt came to, as the alerts need it.
pub(crate) struct AttemptSeen<'a> {
    pub(crate) webhook: &'a str,
    pub(crate) event_id: &'a str,
    pub(crate) succeeded: bool,
    /// The event used up its schedule with this attempt.
    pub(crate) failed_for_good: bool,
    pub(crate) error: Option<&'a str>,
}

pub(crate) struct Watch {
    webhooks: BTreeMap<String, WebhookWatch>,
    /// Each distinct `capture_down_after` of the targets.
    capture_thresholds: BTreeSet<Duration>,
    capture_down_since_ms: Option<u64>,
    capture_error: Option<String>,
    /// Thresholds already said during this outage.
    capture_said: BTreeSet<Duration>,
}

impl Watch {
    /// Capture counts as down from `started_ms` until it first streams.
    pub(crate) fn new(capture_thresholds: BTreeSet<Duration>, started_ms: u64) -> Watch {
        Watch {
            webhooks: BTreeMap::new(),
            capture_thresholds,
            capture_down_since_ms: Some(started_ms),
            capture_error: None,
            capture_said: BTreeSet::new(),
        }
    }

    pub(crate) fn attempt(&mut self, seen: &AttemptSeen<'_>, now_ms: u64) -> Vec<Alert> {
        let watch = self.webhooks.entry(seen.webhook.to_string()).or_default();
        let mut alerts = Vec::new();
        if seen.succeeded {
            if watch.failing {
                alerts.push(
                    Alert::about(
                        AlertKind::WebhookRecovered,
                        seen.webhook,
                        format!(
                            "{} delivers again after {} failed attempts in a row",
                            seen.webhook, watch.failed_in_a_row
                        ),
                        now_ms,
                    )
                    .with_events(1, seen.event_id, seen.event_id),
                );
            }
            watch.failing = false;
            watch.failed_in_a_row = 0;
            return alerts;
        }
        watch.failed_in_a_row += 1;
        if watch.failed_in_a_row >= FAILING_AFTER && !watch.failing {
            watch.failing = true;
            alerts.push(
                Alert::about(
                    AlertKind::WebhookFailing,
                    seen.webhook,
                    format!(
                        "{FAILING_AFTER} attempts of {} failed in a row; last error: {}",
                        seen.webhook,
                        seen.error.unwrap_or("unknown")
                    ),
                    now_ms,
                )
                .with_events(
                    u64::from(FAILING_AFTER),
                    seen.event_id,
                    seen.event_id,
                ),
            );
        }
        if seen.failed_for_good {
            let failures = watch.failures.get_or_insert_with(|| Failures {
                count: 0,
                first_event_id: seen.event_id.to_string(),
                last_event_id: String::new(),
                last_error: None,
                since_ms: now_ms,
            });
            failures.count += 1;
            failures.last_event_id = seen.event_id.to_string();
            failures.last_error = seen.error.map(str::to_string);
        }
        alerts
    }

    /// `pause_after` paused the webhook.
    pub(crate) fn paused(&mut self, webhook: &str, pause_after: Duration, now_ms: u64) -> Alert {
        Alert::about(
            AlertKind::WebhookPaused,
            webhook,
            format!(
                "{webhook} paused itself: its attempts failed without a success for {}",
                crate::config::format_duration(pause_after)
            ),
            now_ms,
        )
    }

    /// Capture's state changed: streaming or not, and why not.
    pub(crate) fn capture(&mut self, streaming: bool, error: Option<String>, now_ms: u64) {
        if streaming {
            self.capture_down_since_ms = None;
            self.capture_said.clear();
        } else {
            self.capture_down_since_ms.get_or_insert(now_ms);
            if error.is_some() {
                self.capture_error = error;
            }
        }
    }

    /// The alerts due by `now_ms`: gathered failures, capture down long enough.
    pub(crate) fn tick(&mut self, now_ms: u64) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for (webhook, watch) in &mut self.webhooks {
            let Some(ready_at) = failures_ready_at(watch) else {
                continue;
            };
            if ready_at > now_ms {
                continue;
            }
            let Some(failures) = watch.failures.take() else {
                continue;
            };
            watch.last_event_failed_ms = Some(now_ms);
            let noun = if failures.count == 1 {
                "event"
            } else {
                "events"
            };
            alerts.push(
                Alert::about(
                    AlertKind::EventFailed,
                    webhook,
                    format!(
                        "{} {noun} of {webhook} failed after every attempt; last error: {}",
                        failures.count,
                        failures.last_error.as_deref().unwrap_or("unknown")
                    ),
                    now_ms,
                )
                .with_events(
                    failures.count,
                    &failures.first_event_id,
                    &failures.last_event_id,
                ),
            );
        }
        if let Some(since) = self.capture_down_since_ms {
            for threshold in &self.capture_thresholds {
                let down_for = now_ms.saturating_sub(since);
                if down_for >= threshold.as_millis() as u64 && self.capture_said.insert(*threshold)
                {
                    let mut alert = Alert::general(
                        AlertKind::CaptureDown,
                        format!(
                            "capture has not been streaming for {}: {}",
                            crate::config::format_duration(*threshold),
                            self.capture_error.as_deref().unwrap_or("not connected yet")
                        ),
                        now_ms,
                    );
                    alert.capture_down_after = Some(*threshold);
                    alerts.push(alert);
                }
            }
        }
        alerts
    }

    /// When [`Watch::tick`] next has something to say, if ever.
    pub(crate) fn next_tick_ms(&self) -> Option<u64> {
        let failures = self.webhooks.values().filter_map(failures_ready_at);
        let capture = self.capture_down_since_ms.into_iter().flat_map(|since| {
            self.capture_thresholds
                .iter()
                .filter(|threshold| !self.capture_said.contains(threshold))
                .map(move |threshold| since + threshold.as_millis() as u64)
        });
        failures.chain(capture).min()
    }
}

fn failures_ready_at(watch: &WebhookWatch) -> Option<u64> {
    let failures = watch.failures.as_ref()?;
    let gathered = failures.since_ms + GATHER_MS;
    Some(match watch.last_event_failed_ms {
        Some(last) => gathered.max(last + EVENT_FAILED_EVERY_MS),
        None => gathered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed<'a>(event_id: &'a str, for_good: bool) -> AttemptSeen<'a> {
        AttemptSeen {
            webhook: "erp",
            event_id,
            succeeded: false,
            failed_for_good: for_good,
            error: Some("status 500"),
        }
    }

    #[test]
    fn failures_are_gathered_then_said_once_a_minute_with_the_count() {
        let mut watch = Watch::new(BTreeSet::new(), 0);
        watch.capture(true, None, 0);
        for number in 0..50 {
            let id = format!("evt_{number}");
            watch.attempt(&failed(&id, true), 10_000 + number);
        }
        assert_eq!(watch.next_tick_ms(), Some(11_000));
        assert!(watch.tick(10_999).is_empty());
        let said = watch.tick(11_000);
        let event_failed: Vec<&Alert> = said
            .iter()
            .filter(|alert| alert.kind == AlertKind::EventFailed)
            .collect();
        assert_eq!(event_failed.len(), 1);
        assert_eq!(event_failed[0].count, 50);
        assert_eq!(event_failed[0].first_event_id.as_deref(), Some("evt_0"));
        assert_eq!(event_failed[0].last_event_id.as_deref(), Some("evt_49"));
        // The next failure waits out the minute.
        watch.attempt(&failed("evt_50", true), 12_000);
        assert_eq!(watch.next_tick_ms(), Some(71_000));
        assert!(watch.tick(70_000).is_empty());
        assert_eq!(watch.tick(71_000)[0].count, 1);
        assert_eq!(watch.next_tick_ms(), None);
    }

    #[test]
    fn five_failed_attempts_in_a_row_then_a_success() {
        let mut watch = Watch::new(BTreeSet::new(), 0);
        for number in 0..4 {
            assert!(watch.attempt(&failed("evt_1", false), number).is_empty());
        }
        let failing = watch.attempt(&failed("evt_2", false), 5);
        assert_eq!(failing.len(), 1);
        assert_eq!(failing[0].kind, AlertKind::WebhookFailing);
        assert_eq!(failing[0].webhook.as_deref(), Some("erp"));
        // Said once while it lasts.
        assert!(watch.attempt(&failed("evt_3", false), 6).is_empty());
        let success = AttemptSeen {
            succeeded: true,
            error: None,
            ..failed("evt_4", false)
        };
        let recovered = watch.attempt(&success, 7);
        assert_eq!(recovered[0].kind, AlertKind::WebhookRecovered);
        assert!(recovered[0].message.contains("after 6 failed attempts"));
        assert!(watch.attempt(&success, 8).is_empty());
    }

    #[test]
    fn capture_down_is_said_once_per_outage_and_threshold() {
        let thresholds = BTreeSet::from([Duration::from_secs(2), Duration::from_secs(60)]);
        let mut watch = Watch::new(thresholds, 0);
        watch.capture(true, None, 500);
        assert_eq!(watch.next_tick_ms(), None);
        watch.capture(false, Some("connection refused".into()), 1_000);
        assert_eq!(watch.next_tick_ms(), Some(3_000));
        let said = watch.tick(3_000);
        assert_eq!(said.len(), 1);
        assert_eq!(said[0].kind, AlertKind::CaptureDown);
        assert_eq!(said[0].capture_down_after, Some(Duration::from_secs(2)));
        assert!(said[0].message.contains("connection refused"));
        assert!(watch.tick(4_000).is_empty());
        assert_eq!(watch.next_tick_ms(), Some(61_000));
        watch.capture(true, None, 5_000);
        assert!(watch.tick(100_000).is_empty());
        // Never streaming since the start counts too.
        let mut fresh = Watch::new(BTreeSet::from([Duration::from_secs(2)]), 0);
        assert_eq!(fresh.tick(2_000).len(), 1);
    }
}
