//! `[delivery]` and the same keys as per-webhook overrides.

use std::time::Duration;

use toml::Table;

use super::reader::{Reader, key_path};
use super::{DeliveryConfig, Ordering};
use crate::deny::{DenyList, DenyRange};
use crate::rate::parse_rate;

/// The keys of `[delivery]`, which every webhook may set for itself too.
pub(super) const KEYS: [&str; 8] = [
    "timeout",
    "retry",
    "event_id_header",
    "concurrency",
    "rate",
    "pause_after",
    "ordering",
    "max_body",
];

/// `max_body` when the file does not say (CONTRACT §12).
pub(super) const DEFAULT_MAX_BODY: usize = 10 * 1024 * 1024;

/// Keys of `[delivery]` alone: they hold for every webhook and cannot be overridden.
const GLOBAL_KEYS: [&str; 1] = ["deny"];

/// Headers the HTTP client sets itself; configuration may not.
pub(super) const CLIENT_HEADERS: [&str; 3] = ["content-length", "transfer-encoding", "connection"];

/// Besides the client's, headers the event id cannot take over: they already mean
/// something in every request.
const MEANINGFUL_HEADERS: [&str; 4] = ["host", "user-agent", "content-type", "authorization"];

fn defaults() -> DeliveryConfig {
    DeliveryConfig {
        timeout: Duration::from_secs(3),
        retry: [5, 240, 480].map(Duration::from_secs).to_vec(),
        event_id_header: "webhook-id".to_string(),
        concurrency: 256,
        rate: None,
        pause_after: None,
        ordering: Ordering::None,
        max_body: DEFAULT_MAX_BODY,
    }
}

pub(super) fn read_global(reader: &mut Reader, document: &Table) -> DeliveryConfig {
    match reader.table(document, "", "delivery") {
        Some(table) => {
            let known: Vec<&str> = KEYS.iter().chain(&GLOBAL_KEYS).copied().collect();
            reader.reject_unknown_keys("delivery", table, &known);
            read_overrides(reader, table, "delivery", &defaults())
        }
        None => defaults(),
    }
}

/// Reports the keys of a webhook's or alert target's table that are neither its `own`
/// nor delivery overrides. A `[delivery]`-only key gets its reason, not "unknown key":
/// the name is right, the place is not.
pub(super) fn reject_unknown_target_keys(
    reader: &mut Reader,
    table: &Table,
    path: &str,
    own: &[&str],
) {
    let known: Vec<&str> = own
        .iter()
        .chain(&KEYS)
        .chain(&GLOBAL_KEYS)
        .copied()
        .collect();
    reader.reject_unknown_keys(path, table, &known);
    for key in GLOBAL_KEYS {
        if table.contains_key(key) {
            reader.error(
                key_path(path, key),
                "only in [delivery]: one deny list holds for every webhook and alert target",
            );
        }
    }
}

/// `[delivery] deny`: every entry a range name, a CIDR block or an address. A mistaken
/// entry is reported at its own key path (`delivery.deny[1]`) and left out.
pub(super) fn read_deny(reader: &mut Reader, document: &Table) -> DenyList {
    let Some(table) = document.get("delivery").and_then(|value| value.as_table()) else {
        return DenyList::default();
    };
    let Some(entries) = reader.string_array(table, "delivery", "deny") else {
        return DenyList::default();
    };
    let mut ranges = Vec::with_capacity(entries.len());
    for (path, entry) in entries {
        match DenyRange::parse(entry.text.trim()) {
            Ok(range) => ranges.push(range),
            Err(error) => reader.error(path, error),
        }
    }
    DenyList::new(ranges)
}

/// `base` with the delivery keys found in `table` (at key path `path`) applied. A key
/// with a mistake is reported and `base`'s value kept, so the caller can go on
/// validating.
pub(super) fn read_overrides(
    reader: &mut Reader,
    table: &Table,
    path: &str,
    base: &DeliveryConfig,
) -> DeliveryConfig {
    let mut delivery = base.clone();
    if let Some(timeout) = reader.duration(table, path, "timeout") {
        if timeout.is_zero() {
            reader.error(key_path(path, "timeout"), "must be greater than 0s");
        }
        delivery.timeout = timeout;
    }
    if let Some(retry) = reader.duration_array(table, path, "retry") {
        if retry.is_empty() {
            reader.error(
                key_path(path, "retry"),
                "must list at least one delay (one per attempt)",
            );
        } else {
            delivery.retry = retry;
        }
    }
    if let Some(header) = reader.string(table, path, "event_id_header") {
        let lower_name = header.text.to_ascii_lowercase();
        if CLIENT_HEADERS.contains(&lower_name.as_str())
            || MEANINGFUL_HEADERS.contains(&lower_name.as_str())
        {
            reader.error(
                key_path(path, "event_id_header"),
                format!("{lower_name:?} already means something else in every request; pick another header name"),
            );
        } else if is_header_name(&header.text) {
            delivery.event_id_header = lower_name;
        } else {
            reader.error(
                key_path(path, "event_id_header"),
                invalid_header_name(&header.text),
            );
        }
    }
    if let Some(concurrency) = reader.integer(table, path, "concurrency") {
        match usize::try_from(concurrency) {
            Ok(concurrency) if concurrency >= 1 => delivery.concurrency = concurrency,
            _ => reader.error(key_path(path, "concurrency"), "must be at least 1"),
        }
    }
    if let Some(pause_after) = reader.duration(table, path, "pause_after") {
        if pause_after.is_zero() {
            reader.error(key_path(path, "pause_after"), "must be greater than 0s");
        } else {
            delivery.pause_after = Some(pause_after);
        }
    }
    if let Some(ordering) = reader.string(table, path, "ordering") {
        match ordering.text.as_str() {
            "none" => delivery.ordering = Ordering::None,
            "row" => delivery.ordering = Ordering::Row,
            other => reader.error(
                key_path(path, "ordering"),
                format!("unknown ordering {other:?}: expected \"none\" or \"row\""),
            ),
        }
    }
    if let Some(max_body) = reader.size(table, path, "max_body") {
        delivery.max_body = max_body;
    }
    if let Some(rate) = reader.string(table, path, "rate") {
        match parse_rate(&rate.text) {
            Ok(rate) => delivery.rate = Some(rate),
            Err(reason) => reader.error(key_path(path, "rate"), reason),
        }
    }
    delivery
}

/// An HTTP field name: one or more token characters (RFC 9110, section 5.1).
pub(super) fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

pub(super) fn invalid_header_name(name: &str) -> String {
    format!("invalid header name {name:?}: expected letters, digits and !#$%&'*+-.^_`|~")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_tokens() {
        for name in [
            "webhook-id",
            "X-Request-ID",
            "x_custom",
            "a!#$%&'*+-.^_`|~9",
        ] {
            assert!(is_header_name(name), "{name}");
        }
        for name in ["", "x id", "x:id", "x(id)", "é", "x\nid"] {
            assert!(!is_header_name(name), "{name:?}");
        }
    }
}
