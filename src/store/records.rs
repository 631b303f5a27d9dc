//! What the store keeps: events with the exact request they send, and their attempts.

use serde::{Deserialize, Serialize};

/// The request an event sends, rendered once when the change is captured. Signing
/// headers are added per attempt (their timestamp is the attempt's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRequest {
    pub method: String,
    pub url: String,
    /// Header name and value, in order; includes `content-type` when there is a body.
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Delivered,
    Failed,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Pending, Status::Delivered, Status::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
        }
    }
}

impl std::str::FromStr for Status {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| {
                format!("unknown status {text:?}: expected pending, delivered or failed")
            })
    }
}

/// Which retry schedule governs the event's next attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Schedule {
    /// The webhook's `retry` list, counted from the first attempt.
    Regular,
    /// One immediate attempt asked for by an admin after `after_attempts` attempts.
    Redelivery { after_attempts: u32 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: String,
    pub webhook: String,
    pub model: String,
    /// `<model>.created|updated|deleted`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The full envelope (CONTRACT §4) when the body is something else; `None` when the
    /// body is the envelope itself (format json without fields or body), so it is stored
    /// once. `envelope_value` gives it either way.
    pub envelope: Option<serde_json::Value>,
    pub request: StoredRequest,
    /// When the change was captured (stored), milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Insertion order, for listing newest first.
    pub sequence: u64,
    pub status: Status,
    pub attempts: u32,
    pub schedule: Schedule,
    /// When the next attempt is due, while pending.
    pub next_attempt_at_ms: Option<u64>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    /// When the event reached delivered or failed (retention counts from here).
    pub finished_at_ms: Option<u64>,
    /// Why the request could not be rendered; such an event is failed from the start and
    /// cannot be redelivered (fix the template and replay the change instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render_error: Option<String>,
}

impl EventRecord {
    /// The event's envelope, from wherever it is kept.
    pub fn envelope_value(&self) -> serde_json::Value {
        match &self.envelope {
            Some(envelope) => envelope.clone(),
            None => self
                .request
                .body
                .as_deref()
                .and_then(|body| serde_json::from_str(body).ok())
                .unwrap_or_default(),
        }
    }
}

/// Why an attempt failed (CONTRACT §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    Timeout,
    Connect,
    Tls,
    Redirect,
    Status,
    Body,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Redirect => "redirect",
            ErrorKind::Status => "status",
            ErrorKind::Body => "body",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// 1 for the first attempt; redeliveries continue the numbering.
    pub number: u32,
    pub started_at_ms: u64,
    pub duration_ms: u64,
    pub status_code: Option<u16>,
    /// `None` when the attempt succeeded.
    pub error_kind: Option<ErrorKind>,
    pub error: Option<String>,
    /// The first 4 KiB of the response body, as text (invalid UTF-8 replaced).
    pub response_body: String,
}

impl AttemptRecord {
    pub fn succeeded(&self) -> bool {
        self.error_kind.is_none()
    }
}
