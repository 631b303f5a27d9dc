//! Key encodings. Everything lives in one sled tree (so that every change is one atomic
//! batch); the first byte says which kind of record a key belongs to. Numbers are
//! big-endian so that byte order is numeric order; a zero byte separates a name from what
//! follows (names and event ids never contain one).

const SEPARATOR: u8 = 0;

/// The kinds of record, each a key prefix.
pub const EVENT: u8 = b'e';
pub const REQUEST: u8 = b'r';
pub const DUE: u8 = b'd';
pub const ATTEMPT: u8 = b'a';
pub const BY_SEQUENCE: u8 = b's';
pub const BY_WEBHOOK: u8 = b'w';
pub const CHECKPOINT: &[u8] = b"checkpoint";

/// A record of `kind` keyed by event id alone: its state, request or body.
pub fn by_id(kind: u8, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + id.len());
    key.push(kind);
    key.extend_from_slice(id.as_bytes());
    key
}

/// The event's mutable state (status, attempts, due time), rewritten on every attempt.
pub fn event(id: &str) -> Vec<u8> {
    by_id(EVENT, id)
}

/// `due`: webhook, due time, event id — one webhook's due events in time order.
pub fn due(webhook: &str, due_at_ms: u64, event_id: &str) -> Vec<u8> {
    let mut key = prefix(DUE, webhook);
    key.extend_from_slice(&due_at_ms.to_be_bytes());
    key.extend_from_slice(event_id.as_bytes());
    key
}

/// Splits a `due` key (after its webhook prefix) into due time and event id.
pub fn parse_due(key: &[u8], webhook: &str) -> Option<(u64, String)> {
    let rest = key.strip_prefix(prefix(DUE, webhook).as_slice())?;
    let (time, id) = rest.split_at_checked(8)?;
    let time = u64::from_be_bytes(time.try_into().ok()?);
    Some((time, String::from_utf8(id.to_vec()).ok()?))
}

/// The prefix of every key of `kind` that is keyed by `name` first.
pub fn prefix(kind: u8, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + name.len() + 1 + 8 + 64);
    key.push(kind);
    key.extend_from_slice(name.as_bytes());
    key.push(SEPARATOR);
    key
}

/// `attempts`: event id, attempt number.
pub fn attempt(event_id: &str, number: u32) -> Vec<u8> {
    let mut key = prefix(ATTEMPT, event_id);
    key.extend_from_slice(&number.to_be_bytes());
    key
}

/// `by_webhook`: webhook, insertion sequence.
pub fn webhook_sequence(webhook: &str, sequence: u64) -> Vec<u8> {
    let mut key = prefix(BY_WEBHOOK, webhook);
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

/// `by_sequence`: insertion sequence alone.
pub fn sequence(sequence: u64) -> [u8; 9] {
    let mut key = [BY_SEQUENCE; 9];
    key[1..].copy_from_slice(&sequence.to_be_bytes());
    key
}

pub fn decode_u64(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_be_bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_keys_sort_by_webhook_then_time() {
        let early = due("orders", 5, "evt_b");
        let late = due("orders", 1_000, "evt_a");
        let other = due("orders-2", 1, "evt_c");
        assert!(early < late, "time orders within a webhook");
        assert!(
            late < other,
            "a webhook's keys stay together before a longer name"
        );
        assert_eq!(
            parse_due(&late, "orders"),
            Some((1_000, "evt_a".to_string()))
        );
        assert_eq!(parse_due(&late, "invoices"), None);
    }

    #[test]
    fn a_webhook_prefix_never_matches_a_longer_name() {
        let key = due("orders-2", 1, "evt_c");
        assert!(!key.starts_with(&prefix(DUE, "orders")));
    }

    #[test]
    fn attempts_sort_by_number() {
        assert!(attempt("evt_1", 2) < attempt("evt_1", 10));
        assert!(!attempt("evt_10", 1).starts_with(&prefix(ATTEMPT, "evt_1")));
    }

    #[test]
    fn numbers_round_trip() {
        assert_eq!(decode_u64(&sequence(42)[1..]), 42);
        assert!(sequence(255) < sequence(256));
        assert_eq!(decode_u64(b"short"), 0);
        assert!(webhook_sequence("w", 9) < webhook_sequence("w", 10));
    }
}
