//! What the store answers questions with: typed records of events, their counts, and
//! which events a listing asks for.

use std::collections::BTreeMap;

use crate::event::{Attempt, Request, Status};

/// Event counts by status for one webhook.
pub type Counts = BTreeMap<Status, u64>;

/// Which events to list, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventQuery {
    pub webhook: Option<String>,
    pub status: Option<Status>,
    /// At most this many; 0 means all.
    pub limit: usize,
    /// Only events stored before this sequence number (paging: pass the last one seen).
    pub before: Option<u64>,
    /// Only the events of one row, found through the row index, not a scan.
    pub row: Option<RowQuery>,
}

/// One row of a model: its primary key as [`crate::model::row_key`] writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowQuery {
    pub model: String,
    pub key: String,
}

/// One event's facts as a listing shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    pub id: String,
    pub webhook: String,
    pub model: String,
    /// `<model>.created|updated|deleted`.
    pub kind: String,
    /// When the change was captured, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Order of storing: larger is newer.
    pub sequence: u64,
    pub status: Status,
    pub attempts: u32,
    /// When the next attempt is due, while pending.
    pub next_attempt_at_ms: Option<u64>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    /// When the event reached delivered or failed (retention counts from here).
    pub finished_at_ms: Option<u64>,
    /// Why the request could not be rendered; such an event is failed from the start.
    pub render_error: Option<String>,
    /// The row's primary key as text, when its table has one.
    pub row_key: Option<String>,
}

/// One event whole: its facts, what it sends, and every attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub record: EventRecord,
    /// `None` when the request could not be rendered.
    pub request: Option<Request>,
    /// The envelope of CONTRACT §4, as JSON text.
    pub envelope: String,
    pub attempts: Vec<Attempt>,
}
