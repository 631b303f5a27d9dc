//! The retry schedule of CONTRACT §2 as pure arithmetic on Unix milliseconds: ingest
//! uses it for attempt 1, the store for every later one (it knows whether an admin asked
//! for a redelivery meanwhile).
//!
//! `retry = [d1, d2, …, dn]` allows at most `n` attempts. Attempt 1 is due `d1` after the
//! change was captured; attempt `k + 1` is due `d(k+1)` after attempt `k` failed, so a
//! slow receiver pushes the later attempts back instead of making them pile up.
//! A redelivery asked for by an admin is one immediate attempt, outside that list.
//!
//! Times saturate at `u64::MAX` instead of overflowing: an absurd duration means
//! "never", not a panic or a time in the past.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which retry schedule governs an event's next attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Schedule {
    /// The webhook's `retry` list, counted from the first attempt.
    Regular,
    /// One immediate attempt asked for by an admin after `after_attempts` attempts.
    Redelivery { after_attempts: u32 },
}

/// When attempt 1 is due. An empty schedule (which configuration validation rejects)
/// is treated as "deliver at once" so that a captured event is never stranded.
pub fn first_attempt_at(captured_at_ms: u64, schedule: &[Duration]) -> u64 {
    let delay = schedule.first().copied().unwrap_or(Duration::ZERO);
    captured_at_ms.saturating_add(milliseconds(delay))
}

/// When the next attempt is due after an attempt failed at `failed_at_ms`, or `None`
/// when the event has no attempt left and is `failed`.
///
/// `attempts_made` counts every attempt of the event so far, the failed one included
/// (redeliveries too: the numbering never restarts).
///
/// Under [`Schedule::Redelivery`] the event owes exactly one attempt beyond the
/// `after_attempts` it had when the admin asked. Once an attempt past that count has
/// failed, the event is failed again. A failure at or below that count is an attempt
/// that was already in flight when the admin asked; the redelivery is still owed and is
/// due at once.
pub fn next_attempt_at(
    schedule: &[Duration],
    event_schedule: Schedule,
    attempts_made: u32,
    failed_at_ms: u64,
) -> Option<u64> {
    match event_schedule {
        Schedule::Redelivery { after_attempts } => {
            (attempts_made <= after_attempts).then_some(failed_at_ms)
        }
        Schedule::Regular => {
            // Attempt k + 1 uses d(k+1), which is index k of the list.
            let index = usize::try_from(attempts_made).ok()?;
            let delay = schedule.get(index)?;
            Some(failed_at_ms.saturating_add(milliseconds(*delay)))
        }
    }
}

/// What becomes of an event after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterAttempt {
    Delivered,
    /// Pending, with its next attempt due at this time.
    DueAt(u64),
    Failed,
}

/// Where attempt `number` (finished at `finished_at_ms`) leaves its event: delivered on
/// success, else due again as the schedule (or an owed redelivery) says, else failed.
pub fn after_attempt(
    schedule: &[Duration],
    event_schedule: Schedule,
    number: u32,
    succeeded: bool,
    finished_at_ms: u64,
) -> AfterAttempt {
    if succeeded {
        return AfterAttempt::Delivered;
    }
    match next_attempt_at(schedule, event_schedule, number, finished_at_ms) {
        Some(at) => AfterAttempt::DueAt(at),
        None => AfterAttempt::Failed,
    }
}

fn milliseconds(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPTURED: u64 = 1_700_000_000_000;

    fn seconds(values: &[u64]) -> Vec<Duration> {
        values.iter().copied().map(Duration::from_secs).collect()
    }

    #[test]
    fn default_schedule_is_three_attempts() {
        let schedule = seconds(&[5, 240, 480]);
        let first = first_attempt_at(CAPTURED, &schedule);
        assert_eq!(first, CAPTURED + 5_000);

        // Attempt 1 took 3 s to time out: attempt 2 counts from its failure.
        let first_failed = first + 3_000;
        let second = next_attempt_at(&schedule, Schedule::Regular, 1, first_failed);
        assert_eq!(second, Some(first_failed + 240_000));

        let second_failed = first_failed + 240_000 + 100;
        let third = next_attempt_at(&schedule, Schedule::Regular, 2, second_failed);
        assert_eq!(third, Some(second_failed + 480_000));

        let third_failed = second_failed + 480_000 + 100;
        assert_eq!(
            next_attempt_at(&schedule, Schedule::Regular, 3, third_failed),
            None
        );
    }

    #[test]
    fn single_zero_delay_is_one_immediate_attempt() {
        let schedule = seconds(&[0]);
        assert_eq!(first_attempt_at(CAPTURED, &schedule), CAPTURED);
        assert_eq!(
            next_attempt_at(&schedule, Schedule::Regular, 1, CAPTURED + 10),
            None
        );
    }

    #[test]
    fn sub_second_delays_keep_their_milliseconds() {
        let schedule = vec![
            Duration::ZERO,
            Duration::from_millis(200),
            Duration::from_millis(400),
        ];
        assert_eq!(first_attempt_at(CAPTURED, &schedule), CAPTURED);
        assert_eq!(
            next_attempt_at(&schedule, Schedule::Regular, 1, CAPTURED + 7),
            Some(CAPTURED + 207)
        );
        assert_eq!(
            next_attempt_at(&schedule, Schedule::Regular, 2, CAPTURED + 300),
            Some(CAPTURED + 700)
        );
        assert_eq!(
            next_attempt_at(&schedule, Schedule::Regular, 3, CAPTURED + 800),
            None
        );
    }

    #[test]
    fn attempts_beyond_the_list_are_never_scheduled() {
        let schedule = seconds(&[5, 240, 480]);
        assert_eq!(
            next_attempt_at(&schedule, Schedule::Regular, 7, CAPTURED),
            None
        );
        assert_eq!(
            next_attempt_at(&schedule, Schedule::Regular, u32::MAX, CAPTURED),
            None
        );
    }

    #[test]
    fn empty_schedule_delivers_once_at_capture() {
        assert_eq!(first_attempt_at(CAPTURED, &[]), CAPTURED);
        assert_eq!(next_attempt_at(&[], Schedule::Regular, 1, CAPTURED), None);
    }

    #[test]
    fn redelivery_is_one_attempt_then_failed() {
        let schedule = seconds(&[5, 240, 480]);
        let redelivery = Schedule::Redelivery { after_attempts: 3 };
        // Attempt 4, the redelivery, failed: no fifth attempt, whatever the list says.
        assert_eq!(next_attempt_at(&schedule, redelivery, 4, CAPTURED), None);
        // Even when the list would have allowed more attempts.
        let early = Schedule::Redelivery { after_attempts: 1 };
        assert_eq!(next_attempt_at(&schedule, early, 2, CAPTURED), None);
    }

    #[test]
    fn redelivery_still_owed_after_an_in_flight_failure() {
        let schedule = seconds(&[5, 240, 480]);
        let redelivery = Schedule::Redelivery { after_attempts: 3 };
        assert_eq!(
            next_attempt_at(&schedule, redelivery, 3, CAPTURED),
            Some(CAPTURED)
        );
    }

    #[test]
    fn huge_delays_saturate() {
        let schedule = vec![Duration::MAX, Duration::MAX];
        assert_eq!(first_attempt_at(CAPTURED, &schedule), u64::MAX);
        assert_eq!(
            next_attempt_at(&schedule, Schedule::Regular, 1, CAPTURED),
            Some(u64::MAX)
        );
    }
}
