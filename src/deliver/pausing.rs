//! `pause_after` (CONTRACT §9): a webhook whose attempts have failed without a single
//! success for that long pauses itself, and says so to the alerts.

use std::time::Duration;

use tracing::{error, warn};

use super::{Context, Outcome};

/// `pause_after`: pauses the webhooks of `batch` that have been failing, without a
/// single success, for that long.
pub(super) async fn pause_failing(context: &Context, batch: &[Outcome]) {
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
            match context.store.set_paused(webhook, true).await {
                Ok(()) => context.alerts.paused(webhook, pause_after),
                Err(error) => error!(%webhook, %error, "cannot pause the failing webhook"),
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

#[cfg(test)]
mod tests {
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
