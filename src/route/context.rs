//! The Liquid context of CONTRACT §3: `item`, `old`, `changed` and `event`.
//!
//! liquid clones whatever a template looks up, so the row data only has to be converted
//! once per change and can then be shared by all of that change's webhooks: the top
//! level is a view over the shared part plus the event's own `event` object.

use std::cell::OnceCell;
use std::fmt;

use liquid::model::{DisplayCow, KStringCow, Object, ObjectView, State, Value, ValueView};
use serde_json::Value as Json;

use crate::change::Change;

/// A JSON value as a liquid value. liquid holds integers as i64: a larger one (possible
/// only inside `json` columns) becomes the string of its exact digits rather than a
/// rounded float.
pub(super) fn to_liquid(json: &Json) -> Value {
    match json {
        Json::Null => Value::Nil,
        Json::Bool(flag) => Value::scalar(*flag),
        Json::Number(number) => match number.as_i64() {
            Some(integer) => Value::scalar(integer),
            None if number.is_u64() => Value::scalar(number.to_string()),
            // serde_json numbers are finite, so this is always a float.
            None => Value::scalar(number.as_f64().unwrap_or_default()),
        },
        Json::String(text) => Value::scalar(text.clone()),
        Json::Array(elements) => Value::Array(elements.iter().map(to_liquid).collect()),
        Json::Object(entries) => Value::Object(
            entries
                .iter()
                .map(|(key, value)| (key.clone().into(), to_liquid(value)))
                .collect(),
        ),
    }
}

/// `item`, `old` and `changed`: the same for every webhook of a change.
#[derive(Debug)]
pub(super) struct ChangeContext {
    item: Value,
    old: Value,
    changed: Value,
}

impl ChangeContext {
    pub(super) fn new(change: &Change) -> ChangeContext {
        let row = |row: &crate::change::Row| {
            Value::Object(
                row.iter()
                    .map(|(column, value)| (column.clone().into(), to_liquid(value)))
                    .collect(),
            )
        };
        ChangeContext {
            item: row(&change.item),
            old: change.old.as_ref().map_or(Value::Nil, row),
            changed: change.changed.as_ref().map_or(Value::Nil, |columns| {
                Value::Array(columns.iter().cloned().map(Value::scalar).collect())
            }),
        }
    }
}

/// A [`ChangeContext`] built on first use: changes whose webhooks have no templates
/// never pay for it.
#[derive(Default)]
pub(super) struct LazyChangeContext(OnceCell<ChangeContext>);

impl LazyChangeContext {
    pub(super) fn get(&self, change: &Change) -> &ChangeContext {
        self.0.get_or_init(|| ChangeContext::new(change))
    }
}

/// The `event` object: `id`, `type`, `model`, `action`, `table`, `timestamp`, `lsn`,
/// `webhook`.
pub(super) fn event_object<'a>(entries: impl IntoIterator<Item = (&'a str, String)>) -> Object {
    entries
        .into_iter()
        .map(|(key, value)| (key.to_string().into(), Value::scalar(value)))
        .collect()
}

/// The top level of the context for one event.
#[derive(Debug)]
pub(super) struct Globals<'a> {
    pub(super) change: &'a ChangeContext,
    pub(super) event: Object,
}

const GLOBAL_NAMES: [&str; 4] = ["item", "old", "changed", "event"];

impl Globals<'_> {
    fn lookup(&self, name: &str) -> Option<&dyn ValueView> {
        match name {
            "item" => Some(&self.change.item),
            "old" => Some(&self.change.old),
            "changed" => Some(&self.change.changed),
            "event" => Some(&self.event),
            _ => None,
        }
    }
}

impl ObjectView for Globals<'_> {
    fn as_value(&self) -> &dyn ValueView {
        self
    }
    fn size(&self) -> i64 {
        GLOBAL_NAMES.len() as i64
    }
    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        Box::new(GLOBAL_NAMES.into_iter().map(KStringCow::from_static))
    }
    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        Box::new(
            GLOBAL_NAMES
                .into_iter()
                .filter_map(|name| self.lookup(name)),
        )
    }
    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn ValueView)> + 'k> {
        Box::new(GLOBAL_NAMES.into_iter().filter_map(|name| {
            self.lookup(name)
                .map(|value| (KStringCow::from_static(name), value))
        }))
    }
    fn contains_key(&self, index: &str) -> bool {
        self.lookup(index).is_some()
    }
    fn get<'s>(&'s self, index: &str) -> Option<&'s dyn ValueView> {
        self.lookup(index)
    }
}

/// Templates see the top level only through lookups; this view exists because
/// `ObjectView` requires it.
impl ValueView for Globals<'_> {
    fn as_debug(&self) -> &dyn fmt::Debug {
        self
    }
    fn render(&self) -> DisplayCow<'_> {
        DisplayCow::Borrowed(&"")
    }
    fn source(&self) -> DisplayCow<'_> {
        DisplayCow::Borrowed(&"globals")
    }
    fn type_name(&self) -> &'static str {
        "object"
    }
    fn query_state(&self, state: State) -> bool {
        matches!(state, State::Truthy)
    }
    fn to_kstr(&self) -> KStringCow<'_> {
        KStringCow::from_static("")
    }
    fn to_value(&self) -> Value {
        Value::Object(
            self.iter()
                .map(|(key, value)| (key.into_owned(), value.to_value()))
                .collect(),
        )
    }
    fn as_object(&self) -> Option<&dyn ObjectView> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_maps_onto_liquid_values() {
        let value = to_liquid(&json!({
            "n": 1, "big": 18446744073709551615u64, "f": 0.5, "b": false, "s": "x",
            "nothing": null, "list": [1, [2]],
        }));
        let object = value.as_object().unwrap();
        assert_eq!(object.get("n").unwrap().to_kstr(), "1");
        assert_eq!(object.get("big").unwrap().type_name(), "string");
        assert_eq!(object.get("big").unwrap().to_kstr(), "18446744073709551615");
        assert_eq!(object.get("f").unwrap().to_kstr(), "0.5");
        assert_eq!(object.get("b").unwrap().to_kstr(), "false");
        assert!(object.get("nothing").unwrap().is_nil());
        assert_eq!(object.get("list").unwrap().as_array().unwrap().size(), 2);
    }
}
