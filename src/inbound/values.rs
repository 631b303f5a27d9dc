//! The value of each column of an inbound row, from the request (CONTRACT §11): as text,
//! which PostgreSQL then casts to the column's type; `None` (NULL) for what is missing.

use axum::http::HeaderMap;
use serde_json::Value;

use crate::config::{ColumnSource, PathStep};
use crate::time::rfc3339_from_unix_ms;

/// The body as the columns see it.
pub(crate) enum ReceivedBody<'a> {
    Json(&'a Value),
    /// Not JSON (a form, plain text): `body` is the text, paths find nothing.
    Text(&'a str),
}

pub(crate) struct Received<'a> {
    pub(crate) headers: &'a HeaderMap,
    pub(crate) query: Option<&'a str>,
    pub(crate) body: ReceivedBody<'a>,
    pub(crate) received_at_ms: u64,
}

pub(crate) fn column_values(
    columns: &[(String, ColumnSource)],
    received: &Received<'_>,
) -> Vec<Option<String>> {
    columns
        .iter()
        .map(|(_, source)| value_of(source, received))
        .collect()
}

fn value_of(source: &ColumnSource, received: &Received<'_>) -> Option<String> {
    match source {
        ColumnSource::Header(name) => received
            .headers
            .get(name.as_str())
            .and_then(|value| value.to_str().ok())
            .map(str::to_string),
        ColumnSource::Query(name) => received.query.and_then(|query| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        }),
        ColumnSource::Body => match received.body {
            ReceivedBody::Json(value) => json_text(value),
            ReceivedBody::Text(text) => Some(text.to_string()),
        },
        ColumnSource::BodyPath(steps) => match received.body {
            ReceivedBody::Json(value) => follow(value, steps).and_then(json_text),
            ReceivedBody::Text(_) => None,
        },
        ColumnSource::Now => Some(rfc3339_from_unix_ms(received.received_at_ms)),
        ColumnSource::Text(text) => Some(text.clone()),
    }
}

fn follow<'v>(mut value: &'v Value, steps: &[PathStep]) -> Option<&'v Value> {
    for step in steps {
        value = match step {
            PathStep::Key(key) => value.get(key)?,
            PathStep::Index(index) => value.get(*index)?,
        };
    }
    Some(value)
}

/// A string as it is, numbers and booleans as written, objects and arrays as JSON, null
/// as NULL.
fn json_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use serde_json::json;

    use super::*;
    use crate::config::parse_column_source;

    #[test]
    fn each_source_gives_its_text_or_null() {
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", HeaderValue::from_static("msg_1"));
        let body = json!({"task": {"title": "Call back", "lines": [{"qty": 2}]}, "done": false, "none": null});
        let received = Received {
            headers: &headers,
            query: Some("source=bpium&empty="),
            body: ReceivedBody::Json(&body),
            received_at_ms: 1_700_000_000_000,
        };
        let sources = [
            "headers.webhook-id",
            "headers.missing",
            "query.source",
            "query.nothing",
            "body.task.title",
            "body.task.lines[0].qty",
            "body.task.lines[5].qty",
            "body.done",
            "body.none",
            "body.task",
            "now",
            "'fixed'",
        ];
        let columns: Vec<(String, ColumnSource)> = sources
            .iter()
            .map(|source| (source.to_string(), parse_column_source(source).unwrap()))
            .collect();
        let values = column_values(&columns, &received);
        assert_eq!(
            values,
            vec![
                Some("msg_1".into()),
                None,
                Some("bpium".into()),
                None,
                Some("Call back".into()),
                Some("2".into()),
                None,
                Some("false".into()),
                None,
                Some(r#"{"title":"Call back","lines":[{"qty":2}]}"#.into()),
                Some("2023-11-14T22:13:20.000000Z".into()),
                Some("fixed".into()),
            ]
        );
        let text = Received {
            body: ReceivedBody::Text("a=1"),
            ..received
        };
        let body_columns = [
            ("b".to_string(), ColumnSource::Body),
            ("c".to_string(), parse_column_source("body.a").unwrap()),
        ];
        assert_eq!(
            column_values(&body_columns, &text),
            vec![Some("a=1".into()), None]
        );
    }
}
