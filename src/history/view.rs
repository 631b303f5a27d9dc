//! The history as admins read it: typed views, the same for the JSON API, the pages and
//! the CLI (which reads the API's answers back into these very types). Every secret is
//! masked on the way in: signing keys, `Authorization` values, header values that came
//! from `${VAR}`, passwords in URLs, and every `${VAR}` value wherever it appears — URL,
//! headers, body, envelope, errors, answers (the configuration's [`Secrets`]).

use serde::{Deserialize, Serialize};

use crate::config::{Config, WebhookConfig};
use crate::event::{Attempt, Request, Status};
use crate::outgoing::{Outgoing, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP};
use crate::secret::{MASK, Secrets};
use crate::store::{Counts, EventRecord, StoredEvent};
use crate::time::rfc3339_from_unix_ms;

/// One line of a listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSummary {
    pub id: String,
    pub webhook: String,
    pub model: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: Status,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub finished_at: Option<String>,
    /// Order of storing; pass the last one seen as `before` for the next page.
    pub sequence: u64,
    /// The row's primary key as text (`42`; composite `line=2,order_id=7`).
    #[serde(default)]
    pub row_key: Option<String>,
}

impl EventSummary {
    pub fn of(record: &EventRecord, secrets: &Secrets) -> EventSummary {
        EventSummary {
            id: record.id.clone(),
            webhook: record.webhook.clone(),
            model: record.model.clone(),
            kind: record.kind.clone(),
            status: record.status,
            attempts: record.attempts,
            last_status_code: record.last_status_code,
            last_error: record
                .last_error
                .as_deref()
                .map(|error| secrets.mask_all(error)),
            created_at: rfc3339_from_unix_ms(record.created_at_ms),
            next_attempt_at: record.next_attempt_at_ms.map(rfc3339_from_unix_ms),
            finished_at: record.finished_at_ms.map(rfc3339_from_unix_ms),
            sequence: record.sequence,
            row_key: record.row_key.clone(),
        }
    }
}

/// A page of a listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventList {
    pub events: Vec<EventSummary>,
    /// Where the next page starts, when this one was full.
    pub next_before: Option<u64>,
}

impl EventList {
    /// The page of `records` asked for with `limit`: only a full page may have more after it.
    pub fn page(records: &[EventRecord], limit: usize, secrets: &Secrets) -> EventList {
        let next_before = match records.last() {
            Some(last) if limit > 0 && records.len() >= limit => Some(last.sequence),
            _ => None,
        };
        EventList {
            events: records
                .iter()
                .map(|record| EventSummary::of(record, secrets))
                .collect(),
            next_before,
        }
    }
}

/// The request exactly as an attempt sends it, secrets masked: the stored headers plus
/// those delivery adds (user agent, event id, signing headers — the signature itself
/// changes with every attempt's timestamp, so it is described, not shown).
pub fn masked_request(
    id: &str,
    request: &Request,
    webhook: Option<&WebhookConfig>,
    secrets: &Secrets,
) -> Request {
    let outgoing = webhook.map(|webhook| Outgoing {
        event_id: id,
        event_id_header: &webhook.delivery.event_id_header,
        secret: webhook.secret.as_deref(),
    });
    let headers = outgoing
        .and_then(|outgoing| outgoing.headers(request, 0).ok())
        .unwrap_or_else(|| request.headers.clone());
    let headers = headers
        .into_iter()
        .map(|(name, value)| {
            let secret = name.eq_ignore_ascii_case("authorization")
                || webhook.is_some_and(|webhook| webhook.is_secret_header(&name));
            let shown = if secret {
                MASK.to_string()
            } else if name.eq_ignore_ascii_case(WEBHOOK_SIGNATURE) {
                "v1,… (signed at each attempt)".to_string()
            } else if name.eq_ignore_ascii_case(WEBHOOK_TIMESTAMP) {
                "… (each attempt's Unix time)".to_string()
            } else {
                secrets.mask_all(&value)
            };
            (name, shown)
        })
        .collect();
    Request {
        method: request.method.clone(),
        url: secrets.mask_all(&request.url),
        headers,
        body: request
            .body
            .as_deref()
            .map(|body| secrets.mask(body).into_owned()),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptView {
    pub number: u32,
    pub started_at: String,
    pub duration_ms: u64,
    pub status_code: Option<u16>,
    /// `success`, or the error kind (`timeout`, `connect`, `tls`, `redirect`, `status`,
    /// `body`, `denied`).
    pub outcome: String,
    pub error: Option<String>,
    pub response_body: String,
}

impl AttemptView {
    pub fn of(attempt: &Attempt, secrets: &Secrets) -> AttemptView {
        AttemptView {
            number: attempt.number,
            started_at: rfc3339_from_unix_ms(attempt.started_at_ms),
            duration_ms: attempt.duration_ms,
            status_code: attempt.status_code,
            outcome: attempt
                .error_kind
                .map_or("success", |kind| kind.as_str())
                .to_string(),
            error: attempt
                .error
                .as_deref()
                .map(|error| secrets.mask_all(error)),
            // A receiver may echo what it was sent.
            response_body: secrets.mask(&attempt.response_body).into_owned(),
        }
    }
}

/// One event whole: its facts, envelope, the request it sends and every attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventDetail {
    pub id: String,
    pub webhook: String,
    pub model: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: Status,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub finished_at: Option<String>,
    pub sequence: u64,
    pub envelope: serde_json::Value,
    pub render_error: Option<String>,
    /// Secrets masked; absent when the request could not be rendered.
    pub request: Option<Request>,
    pub attempts: Vec<AttemptView>,
}

impl EventDetail {
    pub fn of(event: &StoredEvent, config: &Config) -> EventDetail {
        let record = &event.record;
        let secrets = &config.secrets;
        let summary = EventSummary::of(record, secrets);
        let webhook = config.webhook(&record.webhook);
        let mut envelope = serde_json::from_str(&event.envelope).unwrap_or_default();
        secrets.mask_json(&mut envelope);
        EventDetail {
            id: summary.id,
            webhook: summary.webhook,
            model: summary.model,
            kind: summary.kind,
            status: summary.status,
            last_status_code: summary.last_status_code,
            last_error: summary.last_error,
            created_at: summary.created_at,
            next_attempt_at: summary.next_attempt_at,
            finished_at: summary.finished_at,
            sequence: summary.sequence,
            envelope,
            render_error: record
                .render_error
                .as_deref()
                .map(|error| secrets.mask_all(error)),
            request: event
                .request
                .as_ref()
                .map(|request| masked_request(&record.id, request, webhook, secrets)),
            attempts: event
                .attempts
                .iter()
                .map(|attempt| AttemptView::of(attempt, secrets))
                .collect(),
        }
    }
}

/// Counts by status, zero when a webhook has none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
}

impl StatusCounts {
    pub fn of(counts: Option<&Counts>) -> StatusCounts {
        let count = |status| {
            counts
                .and_then(|counts| counts.get(&status))
                .copied()
                .unwrap_or(0)
        };
        StatusCounts {
            pending: count(Status::Pending),
            delivered: count(Status::Delivered),
            failed: count(Status::Failed),
        }
    }
}

/// A configured webhook with its counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSummary {
    pub name: String,
    pub model: String,
    pub active: bool,
    pub method: String,
    pub url: String,
    pub on: Vec<String>,
    pub counts: StatusCounts,
    /// Delivery paused (CONTRACT §9): events are created and wait.
    #[serde(default)]
    pub paused: bool,
    /// `rate`, as configured (`50/s`), when the webhook has one.
    #[serde(default)]
    pub rate: Option<String>,
}

impl WebhookSummary {
    pub fn of(
        webhook: &WebhookConfig,
        counts: Option<&Counts>,
        paused: bool,
        secrets: &Secrets,
    ) -> WebhookSummary {
        WebhookSummary {
            name: webhook.name.clone(),
            model: webhook.model.clone(),
            active: webhook.active,
            method: webhook.method.as_str().to_string(),
            url: secrets.mask_all(&webhook.url),
            on: webhook
                .on
                .iter()
                .map(|action| action.as_str().to_string())
                .collect(),
            counts: StatusCounts::of(counts),
            paused,
            rate: webhook.delivery.rate.map(|rate| rate.to_string()),
        }
    }
}
