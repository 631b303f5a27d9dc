//! What the request log keeps of each inbound request (CONTRACT §11): never credentials,
//! never the body.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How an inbound request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum InboundOutcome {
    /// A row was inserted and committed.
    Accepted,
    /// Its `dedupe` value was there already: no row added, answered as accepted.
    Duplicate,
    /// Missing or wrong credentials or signature.
    Unauthorized,
    /// Not a POST.
    Method,
    TooLarge,
    BadJson,
    /// The insert failed (database down, a value the column type refuses, a timeout).
    InsertFailed,
    /// The body did not arrive in time.
    Timeout,
}

impl InboundOutcome {
    pub const ALL: [InboundOutcome; 8] = [
        InboundOutcome::Accepted,
        InboundOutcome::Duplicate,
        InboundOutcome::Unauthorized,
        InboundOutcome::Method,
        InboundOutcome::TooLarge,
        InboundOutcome::BadJson,
        InboundOutcome::InsertFailed,
        InboundOutcome::Timeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InboundOutcome::Accepted => "accepted",
            InboundOutcome::Duplicate => "duplicate",
            InboundOutcome::Unauthorized => "unauthorized",
            InboundOutcome::Method => "method",
            InboundOutcome::TooLarge => "too_large",
            InboundOutcome::BadJson => "bad_json",
            InboundOutcome::InsertFailed => "insert_failed",
            InboundOutcome::Timeout => "timeout",
        }
    }
}

impl fmt::Display for InboundOutcome {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl std::str::FromStr for InboundOutcome {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        InboundOutcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = InboundOutcome::ALL.iter().map(|o| o.as_str()).collect();
                format!("unknown outcome {text:?}: expected {}", known.join(", "))
            })
    }
}

/// One inbound request, as logged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundRecord {
    /// Order of logging: larger is newer; filled in by the store.
    #[serde(default)]
    pub sequence: u64,
    /// Unix milliseconds.
    pub received_at_ms: u64,
    pub endpoint: String,
    pub outcome: InboundOutcome,
    /// The answer's status code.
    pub status: u16,
    /// The sender's event id (`webhook-id`, or the `dedupe` value) when known.
    pub event_id: Option<String>,
    pub body_bytes: u64,
    /// Why it was refused or failed, when it was.
    pub reason: Option<String>,
}

/// Which log entries to list, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InboundQuery {
    pub endpoint: Option<String>,
    pub outcome: Option<InboundOutcome>,
    /// At most this many; 0 means all.
    pub limit: usize,
}
