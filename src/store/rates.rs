//! A webhook's `rate` (CONTRACT §9) applied where events are claimed, so that a store
//! shared by several instances can hold it across all of them: a claim takes no more
//! events than the bucket allows, spends what it took, and says when the next may go.

use crate::rate::TokenBucket;
use crate::store::DueEvents;

fn micros(now_ms: u64) -> u64 {
    now_ms.saturating_mul(1_000)
}

/// How many of `limit` events may be claimed at `now_ms`.
pub(crate) fn allowance(bucket: &TokenBucket, now_ms: u64, limit: usize) -> usize {
    bucket.available(micros(now_ms), limit)
}

/// Spends what `due` claimed and holds its next due time back until the next token.
pub(crate) fn spend(bucket: &mut TokenBucket, now_ms: u64, due: &mut DueEvents) {
    bucket.spend(micros(now_ms), due.events.len());
    let next_token_ms = bucket.next_micros().div_ceil(1_000);
    due.next_due_at_ms = due.next_due_at_ms.map(|at| at.max(next_token_ms));
}

/// What a claim finds when the bucket has nothing left: wait for its next token.
pub(crate) fn exhausted(bucket: &TokenBucket) -> DueEvents {
    DueEvents {
        events: Vec::new(),
        next_due_at_ms: Some(bucket.next_micros().div_ceil(1_000)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate::parse_rate;

    #[test]
    fn a_claim_takes_what_the_rate_allows_and_waits_for_the_next_token() {
        let mut bucket = TokenBucket::new(parse_rate("10/s").unwrap());
        let now = 1_000_000;
        assert_eq!(
            allowance(&bucket, now, 50),
            2,
            "one owed after idleness, one now"
        );
        let mut due = DueEvents {
            events: Vec::new(),
            next_due_at_ms: Some(now),
        };
        spend(&mut bucket, now, &mut due);
        assert_eq!(due.next_due_at_ms, Some(now));
        assert_eq!(
            allowance(&bucket, now, 50),
            2,
            "nothing claimed, nothing spent"
        );
        bucket.spend(micros(now), 2);
        assert_eq!(allowance(&bucket, now, 50), 0);
        assert_eq!(exhausted(&bucket).next_due_at_ms, Some(now + 100));
    }
}
