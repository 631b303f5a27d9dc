//! The event envelope of CONTRACT §4: what `tail` prints and `format = "json"` sends.

use serde_json::{Map, Value};

use crate::change::Change;
use crate::time::rfc3339_from_unix_micros;

/// The envelope of `change` as a model's event. `id` is absent where no event exists yet
/// (`rowhook tail`).
pub fn envelope(change: &Change, model: &str, id: Option<&str>) -> Value {
    let mut envelope = Map::with_capacity(10);
    if let Some(id) = id {
        envelope.insert("id".into(), Value::String(id.to_string()));
    }
    envelope.insert(
        "type".into(),
        Value::String(format!("{model}.{}", change.action.past_tense())),
    );
    envelope.insert("model".into(), Value::String(model.to_string()));
    envelope.insert(
        "action".into(),
        Value::String(change.action.as_str().into()),
    );
    envelope.insert("table".into(), Value::String(change.table.to_string()));
    envelope.insert(
        "timestamp".into(),
        Value::String(rfc3339_from_unix_micros(change.commit_time_micros)),
    );
    envelope.insert("lsn".into(), Value::String(change.lsn.to_string()));
    envelope.insert("item".into(), Value::Object(change.item.clone()));
    envelope.insert(
        "old".into(),
        change.old.clone().map(Value::Object).unwrap_or(Value::Null),
    );
    envelope.insert(
        "changed".into(),
        change
            .changed
            .as_ref()
            .map(|columns| columns.iter().cloned().map(Value::String).collect())
            .unwrap_or(Value::Null),
    );
    Value::Object(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::{Action, Lsn, Position, Row, TableName};
    use serde_json::json;

    fn row(value: Value) -> Row {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("test rows are objects"),
        }
    }

    #[test]
    fn envelope_has_the_contract_keys_in_order() {
        let change = Change {
            action: Action::Update,
            table: TableName::new("public", "orders"),
            item: row(json!({"id": 42, "status": "paid"})),
            old: Some(row(json!({"id": 42, "status": "new"}))),
            changed: Some(vec!["status".into()]),
            lsn: Lsn(0x16B3748),
            position: Position {
                transaction: 1,
                sequence: 0,
            },
            // 2026-11-22T10:00:00.123456Z
            commit_time_micros: 1_795_341_600_123_456,
        };
        let text = envelope(&change, "order", Some("evt_1")).to_string();
        assert_eq!(
            text,
            r#"{"id":"evt_1","type":"order.updated","model":"order","action":"update","table":"public.orders","timestamp":"2026-11-22T10:00:00.123456Z","lsn":"0/16B3748","item":{"id":42,"status":"paid"},"old":{"id":42,"status":"new"},"changed":["status"]}"#
        );
        let without_id = envelope(&change, "order", None);
        assert!(without_id.get("id").is_none());
    }
}
