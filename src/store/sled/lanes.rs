//! Each webhook has two queues: its live events, and a backfill's. Inside this backend a
//! queue is named like a webhook and keyed like one — the backfill queue's name is the
//! webhook's with a suffix no webhook name can have — so claiming, recording and pruning
//! work on either alike; at the interface, queues fold back into their webhook.

use std::borrow::Cow;

use crate::event::Lane;

/// Webhook names are `[a-z0-9_-]`: a `+` marks the backfill queue.
const BACKFILL_SUFFIX: &str = "+backfill";

/// The queue of `webhook`'s events in `lane`.
pub(super) fn queue_name(webhook: &str, lane: Lane) -> Cow<'_, str> {
    match lane {
        Lane::Live => Cow::Borrowed(webhook),
        Lane::Backfill => Cow::Owned(format!("{webhook}{BACKFILL_SUFFIX}")),
    }
}

/// The webhook a queue belongs to.
pub(super) fn webhook_of(queue: &str) -> &str {
    queue.strip_suffix(BACKFILL_SUFFIX).unwrap_or(queue)
}

/// The lane a queue holds.
pub(super) fn lane_of(queue: &str) -> Lane {
    if queue.ends_with(BACKFILL_SUFFIX) {
        Lane::Backfill
    } else {
        Lane::Live
    }
}

/// Both queues of `webhook`, live first.
pub(super) fn queues_of(webhook: &str) -> [String; 2] {
    [
        webhook.to_string(),
        queue_name(webhook, Lane::Backfill).into_owned(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_fold_back_into_their_webhook() {
        assert_eq!(queue_name("orders", Lane::Live), "orders");
        assert_eq!(queue_name("orders", Lane::Backfill), "orders+backfill");
        assert_eq!(webhook_of("orders+backfill"), "orders");
        assert_eq!(webhook_of("orders"), "orders");
        assert_eq!(lane_of("orders+backfill"), Lane::Backfill);
        assert_eq!(lane_of("orders"), Lane::Live);
        assert_eq!(queues_of("a"), ["a".to_string(), "a+backfill".to_string()]);
    }
}
