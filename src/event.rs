//! The values that cross the boundary between routing, the store and delivery: a new
//! event with the exact request it sends, its status, and the attempts made for it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The request an event sends, rendered once when the change is captured. The headers
/// delivery adds per attempt (user agent, event id, signature) are not part of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
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

impl fmt::Display for Status {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
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

/// What an event carries besides its identity: the request to send, or why none could be
/// rendered (such an event is failed from the start and cannot be redelivered).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Rendered {
        request: Request,
        /// The envelope of CONTRACT §4 as JSON text, when the body is something else;
        /// `None` when the body is the envelope itself, so it is kept once.
        envelope: Option<String>,
    },
    Unrendered {
        /// Why the request could not be rendered, naming the webhook key at fault.
        reason: String,
        envelope: String,
    },
}

/// A change matched to a webhook, ready to be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// Deterministic (CONTRACT §4): the same change read again has the same id.
    pub id: String,
    pub webhook: String,
    pub model: String,
    /// `<model>.created|updated|deleted`.
    pub kind: String,
    /// When the change was captured, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// When attempt 1 is due.
    pub first_attempt_at_ms: u64,
    pub content: Content,
    pub lane: Lane,
    /// The row's primary key as text ([`crate::model::row_key`]), for the row's history
    /// and per-row ordering; `None` when the table has no primary key.
    pub row_key: Option<String>,
    /// Under `ordering = "row"`: attempted only once no earlier event of the same row
    /// (and webhook, and lane) is pending.
    pub ordered: bool,
}

/// Which of its webhook's queues an event waits in. Delivery takes live events first, so
/// changes never wait behind a backfill's rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    #[default]
    Live,
    Backfill,
}

impl NewEvent {
    /// The status an event starts in.
    pub fn initial_status(&self) -> Status {
        match self.content {
            Content::Rendered { .. } => Status::Pending,
            Content::Unrendered { .. } => Status::Failed,
        }
    }

    /// Roughly how many bytes the event holds, for bounding batches in memory.
    pub fn size(&self) -> usize {
        let text = match &self.content {
            Content::Rendered { request, envelope } => {
                request.url.len()
                    + request.body.as_ref().map_or(0, String::len)
                    + request
                        .headers
                        .iter()
                        .map(|(name, value)| name.len() + value.len())
                        .sum::<usize>()
                    + envelope.as_ref().map_or(0, String::len)
            }
            Content::Unrendered { reason, envelope } => reason.len() + envelope.len(),
        };
        let row = self.row_key.as_ref().map_or(0, String::len);
        self.id.len() + self.webhook.len() + self.model.len() + self.kind.len() + text + row + 64
    }
}

/// Why an attempt failed (CONTRACT §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    Timeout,
    Connect,
    Tls,
    Redirect,
    Status,
    Body,
    /// The target's address is in a `delivery.deny` range (CONTRACT §12); nothing was
    /// sent.
    Denied,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Timeout,
        ErrorKind::Connect,
        ErrorKind::Tls,
        ErrorKind::Redirect,
        ErrorKind::Status,
        ErrorKind::Body,
        ErrorKind::Denied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Redirect => "redirect",
            ErrorKind::Status => "status",
            ErrorKind::Body => "body",
            ErrorKind::Denied => "denied",
        }
    }
}

/// One delivery attempt, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
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

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.error_kind.is_none()
    }
}
