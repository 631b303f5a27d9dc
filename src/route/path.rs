//! `fields` paths such as `item.total`, `old.status`, `changed` or `event.id`: they name a
//! value of the event and keep its JSON type (CONTRACT §3).

use serde_json::Value as Json;

/// The keys of the `event` object, in envelope order; `webhook` is not in the envelope.
pub(super) const EVENT_KEYS: [&str; 8] = [
    "id",
    "type",
    "model",
    "action",
    "table",
    "timestamp",
    "lsn",
    "webhook",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Root {
    Item,
    Old,
    Changed,
    Event,
}

impl Root {
    fn name(self) -> &'static str {
        match self {
            Root::Item => "item",
            Root::Old => "old",
            Root::Changed => "changed",
            Root::Event => "event",
        }
    }
}

/// A dotted path: a root, then object keys or array indexes (`item.lines.0.sku`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct FieldPath {
    root: Root,
    segments: Vec<String>,
}

impl FieldPath {
    /// Checks the path's shape; the reason is one line for a configuration error.
    pub(super) fn parse(text: &str) -> Result<FieldPath, String> {
        let mut parts = text.split('.');
        let root = match parts.next() {
            Some("item") => Root::Item,
            Some("old") => Root::Old,
            Some("changed") => Root::Changed,
            Some("event") => Root::Event,
            _ => {
                return Err(format!(
                    "invalid path {text:?}: a path starts with item, old, changed or event \
                     (such as item.total); a template needs {{{{ }}}}"
                ));
            }
        };
        let segments: Vec<String> = parts.map(str::to_string).collect();
        let is_bad_segment =
            |segment: &String| segment.is_empty() || segment.contains(char::is_whitespace);
        if segments.iter().any(is_bad_segment) {
            return Err(format!(
                "invalid path {text:?}: expected names separated by single dots, without spaces"
            ));
        }
        if root == Root::Event {
            match segments.as_slice() {
                [] => {}
                [key] if EVENT_KEYS.contains(&key.as_str()) => {}
                _ => {
                    return Err(format!(
                        "invalid path {text:?}: event has {}",
                        EVENT_KEYS.join(", ")
                    ));
                }
            }
        }
        Ok(FieldPath { root, segments })
    }

    /// The value the path names in `envelope` (CONTRACT §4) for `webhook`.
    ///
    /// Every column is present in `item` and in a known `old`, so a missing column is an
    /// error (most likely a typo). Below a column — inside `json` values — a missing key
    /// or index, or a step through null or a scalar, gives null, as documents vary.
    pub(super) fn lookup(&self, envelope: &Json, webhook: &str) -> Result<Json, String> {
        if self.root == Root::Event {
            return Ok(match self.segments.first() {
                Some(key) => event_value(envelope, webhook, key),
                None => Json::Object(
                    EVENT_KEYS
                        .iter()
                        .map(|key| (key.to_string(), event_value(envelope, webhook, key)))
                        .collect(),
                ),
            });
        }
        let mut current = envelope.get(self.root.name()).unwrap_or(&Json::Null);
        for (depth, segment) in self.segments.iter().enumerate() {
            let next = match current {
                Json::Object(entries) => entries.get(segment),
                Json::Array(elements) => segment
                    .parse::<usize>()
                    .ok()
                    .and_then(|index| elements.get(index)),
                _ => return Ok(Json::Null),
            };
            current = match next {
                Some(value) => value,
                None if depth == 0 && matches!(self.root, Root::Item | Root::Old) => {
                    return Err(format!("no column {segment:?} in {}", self.root.name()));
                }
                None => return Ok(Json::Null),
            };
        }
        Ok(current.clone())
    }
}

fn event_value(envelope: &Json, webhook: &str, key: &str) -> Json {
    if key == "webhook" {
        Json::String(webhook.to_string())
    } else {
        envelope.get(key).cloned().unwrap_or(Json::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope() -> Json {
        json!({
            "id": "evt_1", "type": "order.updated", "model": "order", "action": "update",
            "table": "public.orders", "timestamp": "2026-11-22T10:00:00Z", "lsn": "0/1",
            "item": {"id": 42, "total": "9.90", "meta": {"tags": ["a", "b"]}, "note": null},
            "old": null,
            "changed": ["total"],
        })
    }

    fn lookup(path: &str) -> Result<Json, String> {
        FieldPath::parse(path).unwrap().lookup(&envelope(), "hook")
    }

    #[test]
    fn paths_keep_the_json_type() {
        assert_eq!(lookup("item.id"), Ok(json!(42)));
        assert_eq!(lookup("item.total"), Ok(json!("9.90")));
        assert_eq!(lookup("item.meta"), Ok(json!({"tags": ["a", "b"]})));
        assert_eq!(lookup("item.meta.tags.1"), Ok(json!("b")));
        assert_eq!(lookup("item.note"), Ok(Json::Null));
        assert_eq!(lookup("changed"), Ok(json!(["total"])));
        assert_eq!(lookup("changed.0"), Ok(json!("total")));
        assert_eq!(lookup("event.webhook"), Ok(json!("hook")));
        assert_eq!(lookup("event.id"), Ok(json!("evt_1")));
        assert_eq!(lookup("event").unwrap()["webhook"], json!("hook"));
    }

    #[test]
    fn missing_values_below_a_column_are_null_but_missing_columns_are_errors() {
        assert_eq!(lookup("old.status"), Ok(Json::Null));
        assert_eq!(lookup("item.meta.missing"), Ok(Json::Null));
        assert_eq!(lookup("item.meta.tags.9"), Ok(Json::Null));
        assert_eq!(lookup("item.total.deeper"), Ok(Json::Null));
        assert_eq!(
            lookup("item.totl"),
            Err("no column \"totl\" in item".into())
        );
    }

    #[test]
    fn malformed_paths_are_rejected() {
        assert!(
            FieldPath::parse("total")
                .unwrap_err()
                .contains("starts with item")
        );
        assert!(FieldPath::parse("item..total").is_err());
        assert!(FieldPath::parse("item.").is_err());
        assert!(FieldPath::parse("Order total").is_err());
        assert!(
            FieldPath::parse("event.nope")
                .unwrap_err()
                .contains("event has id")
        );
        assert!(FieldPath::parse("event.id.x").is_err());
    }
}
