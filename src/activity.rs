//! What each webhook's delivery has done over the last hour, minute by minute, for its
//! page (CONTRACT §9): successful and failed attempts, delivery latency, the last error.
//! Kept in memory by the running service, so it covers the time since it started.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Minutes kept: the last hour.
pub const MINUTES: usize = 60;
/// Latencies kept per minute for percentiles; beyond that a minute's are sampled by
/// replacing every other, so a busy minute weighs no more than a quiet one.
const SAMPLES_PER_MINUTE: usize = 512;
const MINUTE_MS: u64 = 60_000;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Minute {
    /// Minutes since the Unix epoch.
    index: u64,
    delivered: u64,
    failed: u64,
    /// Capture to delivery, milliseconds, of delivered events.
    latencies_ms: Vec<u64>,
}

/// One webhook's last hour.
#[derive(Debug, Default)]
pub struct Activity {
    minutes: VecDeque<Minute>,
    last_error: Option<(u64, String)>,
}

/// One webhook's last hour, as a page shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActivityView {
    /// Successful and failed attempts per minute, oldest first, the current minute last;
    /// always [`MINUTES`] entries.
    pub per_minute: Vec<(u64, u64)>,
    /// Capture-to-delivery latency of the events delivered in the hour.
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    /// When (Unix milliseconds) and what.
    pub last_error: Option<(u64, String)>,
}

impl Activity {
    /// An attempt finished at `now_ms`: delivered with `latency_ms`, or failed with `error`.
    pub fn record(&mut self, now_ms: u64, outcome: Result<u64, &str>) {
        let index = now_ms / MINUTE_MS;
        if self
            .minutes
            .back()
            .is_none_or(|minute| minute.index < index)
        {
            self.minutes.push_back(Minute {
                index,
                ..Minute::default()
            });
        }
        while self
            .minutes
            .front()
            .is_some_and(|minute| minute.index + MINUTES as u64 <= index)
        {
            self.minutes.pop_front();
        }
        let Some(minute) = self.minutes.back_mut() else {
            return;
        };
        match outcome {
            Ok(latency_ms) => {
                minute.delivered += 1;
                if minute.latencies_ms.len() < SAMPLES_PER_MINUTE {
                    minute.latencies_ms.push(latency_ms);
                } else {
                    let slot = (minute.delivered as usize) % SAMPLES_PER_MINUTE;
                    minute.latencies_ms[slot] = latency_ms;
                }
            }
            Err(error) => {
                minute.failed += 1;
                self.last_error = Some((now_ms, error.to_string()));
            }
        }
    }

    pub fn view(&self, now_ms: u64) -> ActivityView {
        let current = now_ms / MINUTE_MS;
        let first = current + 1 - MINUTES as u64;
        let mut per_minute = vec![(0, 0); MINUTES];
        let mut latencies = Vec::new();
        for minute in &self.minutes {
            if minute.index < first || minute.index > current {
                continue;
            }
            per_minute[(minute.index - first) as usize] = (minute.delivered, minute.failed);
            latencies.extend_from_slice(&minute.latencies_ms);
        }
        latencies.sort_unstable();
        ActivityView {
            per_minute,
            p50_ms: percentile(&latencies, 50),
            p99_ms: percentile(&latencies, 99),
            last_error: self.last_error.clone(),
        }
    }
}

/// The nearest-rank percentile of sorted `values`.
fn percentile(sorted: &[u64], percent: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// Every webhook's activity, shared by delivery (which records) and the pages.
#[derive(Debug, Default)]
pub struct ActivityLog(Mutex<HashMap<String, Activity>>);

impl ActivityLog {
    pub fn record(&self, webhook: &str, now_ms: u64, outcome: Result<u64, &str>) {
        let mut log = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match log.get_mut(webhook) {
            Some(activity) => activity.record(now_ms, outcome),
            None => {
                let mut activity = Activity::default();
                activity.record(now_ms, outcome);
                log.insert(webhook.to_string(), activity);
            }
        }
    }

    pub fn view(&self, webhook: &str, now_ms: u64) -> ActivityView {
        let log = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match log.get(webhook) {
            Some(activity) => activity.view(now_ms),
            None => Activity::default().view(now_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_700_000_000_000 / MINUTE_MS * MINUTE_MS;

    #[test]
    fn minutes_of_the_last_hour_oldest_first() {
        let mut activity = Activity::default();
        activity.record(T, Ok(10));
        activity.record(T + 1, Err("HTTP 500"));
        activity.record(T + 30 * MINUTE_MS, Ok(30));
        activity.record(T + 30 * MINUTE_MS + 5, Ok(20));
        let view = activity.view(T + 59 * MINUTE_MS);
        assert_eq!(view.per_minute.len(), MINUTES);
        assert_eq!(view.per_minute[0], (1, 1));
        assert_eq!(view.per_minute[30], (2, 0));
        assert_eq!(view.per_minute[59], (0, 0));
        assert_eq!(view.p50_ms, Some(20));
        assert_eq!(view.p99_ms, Some(30));
        assert_eq!(view.last_error, Some((T + 1, "HTTP 500".to_string())));
        // An hour on, the first minute has left the window.
        let later = activity.view(T + 60 * MINUTE_MS);
        assert_eq!(later.per_minute[29], (2, 0));
        assert_eq!(later.per_minute.iter().map(|(ok, _)| ok).sum::<u64>(), 2);
        activity.record(T + 90 * MINUTE_MS, Ok(1));
        assert_eq!(activity.minutes.len(), 1);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50), Some(50));
        assert_eq!(percentile(&values, 99), Some(99));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn a_busy_minute_keeps_a_bounded_sample() {
        let mut activity = Activity::default();
        for number in 0..10_000 {
            activity.record(T, Ok(number));
        }
        assert_eq!(activity.minutes[0].latencies_ms.len(), SAMPLES_PER_MINUTE);
        assert_eq!(activity.view(T).per_minute[59], (10_000, 0));
    }
}
