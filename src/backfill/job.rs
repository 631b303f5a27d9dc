//! A backfill job as the store keeps it and the API shows it: what it sends, where its
//! cursor stands, how far it got.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Running,
    Done,
    Cancelled,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Cancelled => "cancelled",
            JobState::Failed => "failed",
        }
    }

    pub fn is_finished(self) -> bool {
        self != JobState::Running
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillJob {
    /// From 1, in the order jobs were started.
    pub id: u32,
    pub model: String,
    /// The webhooks it sends to, fixed when it started.
    pub webhooks: Vec<String>,
    /// `--where`: an SQL condition on the model's table, as given.
    #[serde(rename = "where")]
    pub condition: Option<String>,
    /// Rows read per page.
    pub batch: u32,
    pub state: JobState,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The primary key of the last row sent (each column's text), `None` before the
    /// first page: the next page starts after it.
    pub cursor: Option<Vec<String>>,
    pub rows_done: u64,
    /// The planner's estimate of the rows it reads, when it started.
    pub rows_estimated: u64,
    pub events_created: u64,
    pub started_at_ms: u64,
    pub updated_at_ms: u64,
    pub finished_at_ms: Option<u64>,
}

/// What `rowhook backfill` asks the service for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillRequest {
    pub model: String,
    #[serde(default)]
    pub webhooks: Vec<String>,
    #[serde(rename = "where", default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub batch: Option<u32>,
}
