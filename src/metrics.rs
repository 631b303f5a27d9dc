//! Counters for `/metrics`, updated by ingest and delivery, rendered as Prometheus text.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::capture::{CaptureState, CaptureStatus};
use crate::event::{Attempt, ErrorKind, Status};
use crate::store::Counts;

/// Upper bounds (seconds) of the delivery latency histogram: capture to delivered.
const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0, 900.0,
];
const OUTCOMES: [&str; 8] = [
    "success", "timeout", "connect", "tls", "redirect", "status", "body", "denied",
];

#[derive(Default)]
pub struct Metrics {
    changes_captured: AtomicU64,
    events_created: AtomicU64,
    events_delivered: AtomicU64,
    events_failed: AtomicU64,
    attempts: [AtomicU64; OUTCOMES.len()],
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    relation_queries: AtomicU64,
    /// Each webhook's last hour, for its page.
    pub activity: crate::activity::ActivityLog,
    /// Inbound requests by endpoint and outcome.
    inbound: std::sync::Mutex<BTreeMap<(String, &'static str), u64>>,
}

fn outcome_index(kind: Option<ErrorKind>) -> usize {
    match kind {
        None => 0,
        Some(ErrorKind::Timeout) => 1,
        Some(ErrorKind::Connect) => 2,
        Some(ErrorKind::Tls) => 3,
        Some(ErrorKind::Redirect) => 4,
        Some(ErrorKind::Status) => 5,
        Some(ErrorKind::Body) => 6,
        Some(ErrorKind::Denied) => 7,
    }
}

impl Metrics {
    pub fn change_captured(&self) {
        self.changes_captured.fetch_add(1, Ordering::Relaxed);
    }

    /// One relation lookup query made (for a whole batch of rows).
    pub fn relation_query(&self) {
        self.relation_queries.fetch_add(1, Ordering::Relaxed);
    }

    /// One inbound request answered, by its endpoint and outcome.
    pub fn inbound_request(&self, endpoint: &str, outcome: &'static str) {
        let mut inbound = self
            .inbound
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *inbound.entry((endpoint.to_string(), outcome)).or_default() += 1;
    }

    pub fn events_created(&self, count: u64) {
        self.events_created.fetch_add(count, Ordering::Relaxed);
    }

    /// Records an attempt and what it made of its event. `latency_ms` is capture to
    /// delivery, for delivered events.
    pub fn attempt(&self, attempt: &Attempt, status: Status, latency_ms: u64) {
        self.attempts[outcome_index(attempt.error_kind)].fetch_add(1, Ordering::Relaxed);
        match status {
            Status::Delivered => {
                self.events_delivered.fetch_add(1, Ordering::Relaxed);
                let seconds = latency_ms as f64 / 1000.0;
                for (bucket, bound) in self.latency_buckets.iter().zip(LATENCY_BUCKETS) {
                    if seconds <= bound {
                        bucket.fetch_add(1, Ordering::Relaxed);
                    }
                }
                self.latency_count.fetch_add(1, Ordering::Relaxed);
                self.latency_sum_micros
                    .fetch_add(latency_ms * 1000, Ordering::Relaxed);
            }
            Status::Failed => {
                self.events_failed.fetch_add(1, Ordering::Relaxed);
            }
            Status::Pending => {}
        }
    }

    /// Prometheus text exposition of everything, with pending events from the store's
    /// counts and replication lag from the capture status.
    pub fn render(&self, counts: &BTreeMap<String, Counts>, capture: &CaptureStatus) -> String {
        let mut text = String::new();
        let counter = |text: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                text,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        let load = |value: &AtomicU64| value.load(Ordering::Relaxed);
        counter(
            &mut text,
            "rowhook_changes_captured_total",
            "Row changes read from PostgreSQL.",
            load(&self.changes_captured),
        );
        counter(
            &mut text,
            "rowhook_events_created_total",
            "Events stored (one per change and matching webhook).",
            load(&self.events_created),
        );
        counter(
            &mut text,
            "rowhook_relation_queries_total",
            "Relation lookup queries (one per relation per batch of changes).",
            load(&self.relation_queries),
        );
        counter(
            &mut text,
            "rowhook_events_delivered_total",
            "Events delivered with a 2xx answer.",
            load(&self.events_delivered),
        );
        counter(
            &mut text,
            "rowhook_events_failed_total",
            "Events that used up their attempts.",
            load(&self.events_failed),
        );
        let _ = writeln!(
            text,
            "# HELP rowhook_attempts_total Delivery attempts by outcome.\n# TYPE rowhook_attempts_total counter"
        );
        for (outcome, value) in OUTCOMES.iter().zip(&self.attempts) {
            let _ = writeln!(
                text,
                "rowhook_attempts_total{{outcome=\"{outcome}\"}} {}",
                load(value)
            );
        }
        let _ = writeln!(
            text,
            "# HELP rowhook_delivery_latency_seconds From capture to a delivered answer.\n# TYPE rowhook_delivery_latency_seconds histogram"
        );
        for (bound, value) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                text,
                "rowhook_delivery_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                load(value)
            );
        }
        let count = load(&self.latency_count);
        let _ = writeln!(
            text,
            "rowhook_delivery_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            text,
            "rowhook_delivery_latency_seconds_sum {}",
            load(&self.latency_sum_micros) as f64 / 1e6
        );
        let _ = writeln!(text, "rowhook_delivery_latency_seconds_count {count}");
        let _ = writeln!(
            text,
            "# HELP rowhook_pending_events Events waiting for an attempt, by webhook.\n# TYPE rowhook_pending_events gauge"
        );
        for (webhook, by_status) in counts {
            let pending = by_status.get(&Status::Pending).copied().unwrap_or(0);
            let _ = writeln!(
                text,
                "rowhook_pending_events{{webhook=\"{webhook}\"}} {pending}"
            );
        }
        let lag = capture.server_sent.0.saturating_sub(capture.confirmed.0);
        let _ = writeln!(
            text,
            "# HELP rowhook_replication_lag_bytes WAL the server has sent that rowhook has not yet confirmed.\n# TYPE rowhook_replication_lag_bytes gauge\nrowhook_replication_lag_bytes {lag}"
        );
        let inbound = self
            .inbound
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !inbound.is_empty() {
            let _ = writeln!(
                text,
                "# HELP rowhook_inbound_requests_total Inbound requests by endpoint and outcome.\n# TYPE rowhook_inbound_requests_total counter"
            );
            for ((endpoint, outcome), value) in inbound.iter() {
                let _ = writeln!(
                    text,
                    "rowhook_inbound_requests_total{{endpoint=\"{endpoint}\",outcome=\"{outcome}\"}} {value}"
                );
            }
        }
        drop(inbound);
        let streaming = u8::from(capture.state == CaptureState::Streaming);
        let _ = writeln!(
            text,
            "# HELP rowhook_capture_streaming 1 while the replication stream is up.\n# TYPE rowhook_capture_streaming gauge\nrowhook_capture_streaming {streaming}"
        );
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_has_its_own_outcome_label() {
        assert_eq!(OUTCOMES[outcome_index(None)], "success");
        for kind in ErrorKind::ALL {
            assert_eq!(OUTCOMES[outcome_index(Some(kind))], kind.as_str());
        }
        assert_eq!(OUTCOMES.len(), ErrorKind::ALL.len() + 1);
    }
}
