//! The history as admins see it — the same JSON for the API, the CLI and the pages —
//! with every secret masked: signing keys, `Authorization` values, header values that
//! came from `${VAR}`, and passwords in URLs.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::config::{Config, WebhookConfig};
use crate::deliver::client::{AttemptOptions, outgoing_headers};
use crate::source::database_url::{MASK, mask_url_password};
use crate::source::value::rfc3339_from_unix_micros;
use crate::store::Counts;
use crate::store::records::{AttemptRecord, EventRecord, Status, StoredRequest};

/// RFC 3339 (UTC, microseconds) of a Unix time in milliseconds.
pub fn time_text(unix_ms: u64) -> String {
    rfc3339_from_unix_micros(unix_ms.saturating_mul(1000) as i64)
}

/// One line of a listing.
pub fn event_summary(event: &EventRecord) -> Value {
    json!({
        "id": event.id,
        "webhook": event.webhook,
        "model": event.model,
        "type": event.kind,
        "status": event.status.as_str(),
        "attempts": event.attempts,
        "last_status_code": event.last_status_code,
        "last_error": event.last_error,
        "created_at": time_text(event.created_at_ms),
        "next_attempt_at": event.next_attempt_at_ms.map(time_text),
        "finished_at": event.finished_at_ms.map(time_text),
        "sequence": event.sequence,
    })
}

/// The request exactly as an attempt sends it, secrets masked: the stored headers plus
/// those delivery adds (user-agent, event id, signing headers; the signature itself
/// changes with every attempt's timestamp).
pub fn request_view(
    event: &EventRecord,
    request: &StoredRequest,
    webhook: Option<&WebhookConfig>,
) -> Value {
    let options = webhook.map(|webhook| AttemptOptions {
        number: event.attempts + 1,
        event_id: &event.id,
        event_id_header: &webhook.delivery.event_id_header,
        secret: webhook.secret.as_deref(),
        timeout: webhook.delivery.timeout,
    });
    let headers = options
        .and_then(|options| outgoing_headers(request, &options, 0).ok())
        .unwrap_or_else(|| request.headers.clone());
    let headers: Vec<Value> = headers
        .into_iter()
        .map(|(name, value)| {
            let secret = name.eq_ignore_ascii_case("authorization")
                || webhook.is_some_and(|webhook| webhook.is_secret_header(&name));
            let shown = if secret {
                MASK.to_string()
            } else if name.eq_ignore_ascii_case("webhook-signature") {
                "v1,… (signed at each attempt)".to_string()
            } else if name.eq_ignore_ascii_case("webhook-timestamp") {
                "… (each attempt's Unix time)".to_string()
            } else {
                value
            };
            json!([name, shown])
        })
        .collect();
    json!({
        "method": request.method,
        "url": mask_url_password(&request.url),
        "headers": headers,
        "body": request.body,
    })
}

pub fn attempt_view(attempt: &AttemptRecord) -> Value {
    json!({
        "number": attempt.number,
        "started_at": time_text(attempt.started_at_ms),
        "duration_ms": attempt.duration_ms,
        "status_code": attempt.status_code,
        "outcome": attempt.error_kind.map_or("success", |kind| kind.as_str()),
        "error": attempt.error,
        "response_body": attempt.response_body,
    })
}

/// The event, the request it sends, and every attempt.
pub fn event_detail(event: &EventRecord, attempts: &[AttemptRecord], config: &Config) -> Value {
    let webhook = config
        .webhooks
        .iter()
        .find(|webhook| webhook.name == event.webhook);
    let mut detail = event_summary(event);
    if let Value::Object(fields) = &mut detail {
        fields.insert("envelope".into(), event.envelope_value());
        fields.insert("render_error".into(), json!(event.render_error));
        fields.insert(
            "request".into(),
            request_view(event, &event.request, webhook),
        );
        fields.insert(
            "attempts".into(),
            Value::Array(attempts.iter().map(attempt_view).collect()),
        );
    }
    detail
}

/// Every configured webhook with its counts by status (zero when it has no events).
pub fn webhooks(config: &Config, counts: &BTreeMap<String, Counts>) -> Value {
    let list: Vec<Value> = config
        .webhooks
        .iter()
        .map(|webhook| {
            let counts = counts.get(&webhook.name);
            let count = |status: Status| {
                counts
                    .and_then(|counts| counts.get(&status))
                    .copied()
                    .unwrap_or(0)
            };
            json!({
                "name": webhook.name,
                "model": webhook.model,
                "active": webhook.active,
                "method": webhook.method.as_str(),
                "url": mask_url_password(&webhook.url),
                "on": webhook.on.iter().map(|action| action.as_str()).collect::<Vec<_>>(),
                "counts": {
                    "pending": count(Status::Pending),
                    "delivered": count(Status::Delivered),
                    "failed": count(Status::Failed),
                },
            })
        })
        .collect();
    Value::Array(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::Schedule;
    use std::path::Path;

    fn config() -> Config {
        let text = r#"
[source]
url = "postgres://u:pw@localhost/db"
[models.order]
table = "orders"
[[webhooks]]
name = "hook"
model = "order"
url = "https://user:hunter2@example.com/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
headers = { Authorization = "Bearer abc", X-Api-Key = "${KEY}", X-Plain = "visible" }
"#;
        let environment = |name: &str| (name == "KEY").then(|| "key-from-env".to_string());
        crate::config::parse(Path::new("rowhook.toml"), text, &environment).unwrap()
    }

    fn event() -> EventRecord {
        EventRecord {
            id: "evt_1".into(),
            webhook: "hook".into(),
            model: "order".into(),
            kind: "order.created".into(),
            envelope: None,
            request: StoredRequest {
                method: "POST".into(),
                url: "https://user:hunter2@example.com/hook".into(),
                headers: vec![
                    ("Authorization".into(), "Bearer abc".into()),
                    ("X-Api-Key".into(), "key-from-env".into()),
                    ("X-Plain".into(), "visible".into()),
                    ("content-type".into(), "application/json".into()),
                ],
                body: Some(r#"{"id":"evt_1"}"#.into()),
            },
            created_at_ms: 1_000,
            sequence: 1,
            status: Status::Pending,
            attempts: 0,
            schedule: Schedule::Regular,
            next_attempt_at_ms: Some(2_000),
            last_status_code: None,
            last_error: None,
            finished_at_ms: None,
            render_error: None,
        }
    }

    #[test]
    fn secrets_never_show() {
        let config = config();
        let text = event_detail(&event(), &[], &config).to_string();
        for secret in [
            "hunter2",
            "Bearer abc",
            "key-from-env",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ] {
            assert!(!text.contains(secret), "{secret} shown in {text}");
        }
        assert!(text.contains("visible"));
        assert!(text.contains("webhook-signature"));
        assert!(text.contains(r#""envelope":{"id":"evt_1"}"#), "{text}");
        let listing = webhooks(&config, &BTreeMap::new()).to_string();
        assert!(!listing.contains("hunter2"), "{listing}");
        assert!(listing.contains(r#""pending":0"#));
    }
}
