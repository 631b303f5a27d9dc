//! Key encodings. Everything lives in one sled tree, so that every write of an append or
//! of a batch of attempts is one atomic `apply_batch`; the first byte says which kind of
//! record a key belongs to, then the webhook name and a zero byte (names never contain
//! one). Numbers are big-endian, so byte order is numeric order.

const SEPARATOR: u8 = 0;

/// A webhook's events of one append: `c`, webhook, first sequence.
pub(super) const CHUNK: u8 = b'c';
/// Which chunks hold a span of event ids: `r`, webhook, lowest id.
pub(super) const RANGE: u8 = b'r';
/// The state page of a chunk (its events attempted or redelivered): `s`, webhook, the
/// chunk's first sequence.
pub(super) const STATE: u8 = b's';
/// A retry or redelivery due: `d`, webhook, due time, sequence; the value is the event's
/// chunk (its first sequence).
pub(super) const DUE: u8 = b'd';
/// A failed event, for listing failures without a scan: `f`, webhook, sequence; the
/// value is the event's chunk.
pub(super) const FAILED: u8 = b'f';
/// A webhook that has events: `w`, webhook.
pub(super) const WEBHOOK: u8 = b'w';
/// Where the first-attempt scan of a webhook may start after a restart: `q`, webhook.
pub(super) const FRONTIER: u8 = b'q';
/// A paused webhook: `p`, webhook.
pub(super) const PAUSED: u8 = b'p';
/// The row index (`row_index`): `k`, bucket, the last sequence of the append the entry
/// lists events of.
pub(super) const ROW: u8 = b'k';
/// An inbound request's log entry: `n`, its sequence.
pub(super) const INBOUND: u8 = b'n';
/// A queue that has held events under `ordering = "row"`: `o`, queue. Only such queues
/// have lines to rebuild when the store opens.
pub(super) const ORDERED: u8 = b'o';
/// A backfill job: `j`, its id.
pub(super) const BACKFILL: u8 = b'j';
pub(super) const CHECKPOINT: &[u8] = b"m-checkpoint";
pub(super) const NEXT_SEQUENCE: &[u8] = b"m-next-sequence";

/// The prefix of every key of `kind` that belongs to `webhook`.
pub(super) fn prefix(kind: u8, webhook: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + webhook.len() + 1 + 16);
    key.push(kind);
    key.extend_from_slice(webhook.as_bytes());
    key.push(SEPARATOR);
    key
}

fn with_numbers(kind: u8, webhook: &str, numbers: &[u64]) -> Vec<u8> {
    let mut key = prefix(kind, webhook);
    for number in numbers {
        key.extend_from_slice(&number.to_be_bytes());
    }
    key
}

pub(super) fn chunk(webhook: &str, first_sequence: u64) -> Vec<u8> {
    with_numbers(CHUNK, webhook, &[first_sequence])
}

pub(super) fn state(webhook: &str, chunk_first: u64) -> Vec<u8> {
    with_numbers(STATE, webhook, &[chunk_first])
}

pub(super) fn due(webhook: &str, due_at_ms: u64, sequence: u64) -> Vec<u8> {
    with_numbers(DUE, webhook, &[due_at_ms, sequence])
}

pub(super) fn failed(webhook: &str, sequence: u64) -> Vec<u8> {
    with_numbers(FAILED, webhook, &[sequence])
}

pub(super) fn range(webhook: &str, lowest_id: &str) -> Vec<u8> {
    let mut key = prefix(RANGE, webhook);
    key.extend_from_slice(lowest_id.as_bytes());
    key
}

pub(super) fn row_bucket(bucket: u8) -> Vec<u8> {
    vec![ROW, bucket]
}

pub(super) fn row_entry(bucket: u8, last_sequence: u64) -> Vec<u8> {
    let mut key = row_bucket(bucket);
    key.extend_from_slice(&last_sequence.to_be_bytes());
    key
}

pub(super) fn inbound(sequence: u64) -> Vec<u8> {
    let mut key = vec![INBOUND];
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

pub(super) fn backfill(job: u32) -> Vec<u8> {
    let mut key = vec![BACKFILL];
    key.extend_from_slice(&job.to_be_bytes());
    key
}

pub(super) fn webhook(webhook: &str) -> Vec<u8> {
    prefix(WEBHOOK, webhook)
}

pub(super) fn ordered(queue: &str) -> Vec<u8> {
    prefix(ORDERED, queue)
}

pub(super) fn paused(webhook: &str) -> Vec<u8> {
    prefix(PAUSED, webhook)
}

/// The webhook a `p` key names.
pub(super) fn paused_name(key: &[u8]) -> Option<String> {
    let name = key.strip_prefix(&[PAUSED])?.strip_suffix(&[SEPARATOR])?;
    String::from_utf8(name.to_vec()).ok()
}

pub(super) fn frontier(webhook: &str) -> Vec<u8> {
    prefix(FRONTIER, webhook)
}

/// The numbers after a key's webhook prefix (`count` of them), or `None` when the key is
/// not of that shape.
pub(super) fn numbers<const COUNT: usize>(
    key: &[u8],
    kind: u8,
    webhook: &str,
) -> Option<[u64; COUNT]> {
    let rest = key.strip_prefix(prefix(kind, webhook).as_slice())?;
    if rest.len() != COUNT * 8 {
        return None;
    }
    let mut numbers = [0u64; COUNT];
    for (number, bytes) in numbers.iter_mut().zip(rest.chunks_exact(8)) {
        *number = u64::from_be_bytes(bytes.try_into().ok()?);
    }
    Some(numbers)
}

/// The webhook a `w` key names.
pub(super) fn webhook_name(key: &[u8]) -> Option<String> {
    let name = key.strip_prefix(&[WEBHOOK])?.strip_suffix(&[SEPARATOR])?;
    String::from_utf8(name.to_vec()).ok()
}

/// The lowest id of a range key.
pub(super) fn range_lowest_id<'a>(key: &'a [u8], webhook: &str) -> Option<&'a str> {
    let rest = key.strip_prefix(prefix(RANGE, webhook).as_slice())?;
    std::str::from_utf8(rest).ok()
}

pub(super) fn decode_u64(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_webhook_then_number() {
        assert!(due("orders", 5, 9) < due("orders", 1_000, 1));
        assert!(due("orders", 1_000, 1) < due("orders-2", 1, 1));
        assert!(!due("orders-2", 1, 1).starts_with(&prefix(DUE, "orders")));
        assert!(chunk("hook", 255) < chunk("hook", 256));
        assert!(range("hook", "evt_a") < range("hook", "evt_b"));
    }

    #[test]
    fn numbers_come_back_out_of_keys() {
        assert_eq!(
            numbers::<2>(&due("orders", 7, 42), DUE, "orders"),
            Some([7, 42])
        );
        assert_eq!(numbers::<2>(&due("orders", 7, 42), DUE, "invoices"), None);
        assert_eq!(numbers::<1>(&chunk("w", 3), CHUNK, "w"), Some([3]));
        assert_eq!(numbers::<1>(&due("w", 3, 4), DUE, "w"), None);
        assert_eq!(
            webhook_name(&webhook("order-hook")).as_deref(),
            Some("order-hook")
        );
        assert_eq!(range_lowest_id(&range("w", "evt_1"), "w"), Some("evt_1"));
        assert_eq!(decode_u64(&9u64.to_be_bytes()), Some(9));
        assert_eq!(decode_u64(b"short"), None);
    }
}
