//! The durable store (sled): events with their rendered requests, a due-time index per
//! webhook, attempts, listing indexes, per-webhook counts and the capture checkpoint.
//!
//! Contract with the capture stage: events are written here and `flush` returns before
//! the change is acknowledged to PostgreSQL. Event ids are deterministic, so a change
//! read again after a crash finds its events already stored and adds nothing.

mod keys;
pub mod records;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Db, Tree};

use crate::change::Lsn;
use records::{AttemptRecord, EventRecord, Schedule, Status};

const CHECKPOINT_KEY: &[u8] = b"checkpoint";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store at {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: sled::Error,
    },
    #[error("store error: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored {what} is unreadable: {source}")]
    Corrupt {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("no event {0:?}")]
    NotFound(String),
    #[error("event {id:?} cannot be redelivered: its request could not be rendered ({reason})")]
    NotRedeliverable { id: String, reason: String },
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(error: TransactionError<StoreError>) -> Self {
        match error {
            TransactionError::Abort(error) => error,
            TransactionError::Storage(error) => StoreError::Sled(error),
        }
    }
}

type Abortable<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// Which events to list, newest first.
#[derive(Clone, Debug, Default)]
pub struct EventQuery {
    pub webhook: Option<String>,
    pub status: Option<Status>,
    pub limit: usize,
    /// Only events older than this insertion sequence (paging).
    pub before: Option<u64>,
}

/// Event counts by status for one webhook.
pub type Counts = BTreeMap<Status, u64>;

pub struct Store {
    db: Db,
    events: Tree,
    due: Tree,
    attempts: Tree,
    by_sequence: Tree,
    by_webhook: Tree,
    counts: Tree,
    meta: Tree,
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
        what: what.to_string(),
        source,
    })
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain records cannot fail: no maps with non-string keys.
    serde_json::to_vec(value).unwrap_or_default()
}

fn adjust_count(
    counts: &TransactionalTree,
    webhook: &str,
    status: Status,
    delta: i64,
) -> Abortable<()> {
    let key = keys::count(webhook, status);
    let current = counts
        .get(&key)?
        .map(|value| keys::decode_u64(&value))
        .unwrap_or(0);
    let updated = current.saturating_add_signed(delta);
    counts.insert(key, &updated.to_be_bytes())?;
    Ok(())
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let db = sled::Config::new().path(path).open().map_err(open_error)?;
        let tree = |name: &str| db.open_tree(name).map_err(open_error);
        Ok(Store {
            events: tree("events")?,
            due: tree("due")?,
            attempts: tree("attempts")?,
            by_sequence: tree("by_sequence")?,
            by_webhook: tree("by_webhook")?,
            counts: tree("counts")?,
            meta: tree("meta")?,
            db,
        })
    }

    /// A number larger than every one handed out before, for `EventRecord::sequence`.
    pub fn next_sequence(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?)
    }

    /// Stores a new event with its indexes, unless an event with its id exists already
    /// (a change read again). Returns whether it was new. Not durable until `flush`.
    pub fn insert(&self, event: &EventRecord) -> Result<bool, StoreError> {
        let record = encode(event);
        let trees = (
            &self.events,
            &self.due,
            &self.by_sequence,
            &self.by_webhook,
            &self.counts,
        );
        let inserted = trees.transaction(|(events, due, by_sequence, by_webhook, counts)| {
            if events.get(event.id.as_bytes())?.is_some() {
                return Ok(false);
            }
            events.insert(event.id.as_bytes(), record.as_slice())?;
            if let (Status::Pending, Some(at)) = (event.status, event.next_attempt_at_ms) {
                due.insert(keys::due(&event.webhook, at, &event.id), &[])?;
            }
            by_sequence.insert(&keys::sequence(event.sequence), event.id.as_bytes())?;
            by_webhook.insert(
                keys::webhook_sequence(&event.webhook, event.sequence),
                event.id.as_bytes(),
            )?;
            adjust_count(counts, &event.webhook, event.status, 1)?;
            Ok(true)
        })?;
        Ok(inserted)
    }

    /// Makes everything written so far durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// The position up to which every change's events are stored (durable after `flush`).
    pub fn checkpoint(&self) -> Result<Lsn, StoreError> {
        Ok(self
            .meta
            .get(CHECKPOINT_KEY)?
            .map(|value| Lsn(keys::decode_u64(&value)))
            .unwrap_or_default())
    }

    /// Moves the checkpoint forward (never back).
    pub fn set_checkpoint(&self, lsn: Lsn) -> Result<(), StoreError> {
        self.meta.fetch_and_update(CHECKPOINT_KEY, |current| {
            let current = current.map(keys::decode_u64).unwrap_or(0);
            Some(current.max(lsn.0).to_be_bytes().to_vec())
        })?;
        Ok(())
    }

    pub fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        match self.events.get(id.as_bytes())? {
            Some(bytes) => Ok(Some(decode(id, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Up to `limit` ids of `webhook`'s events due at `now_ms`, earliest first, leaving
    /// out those in `skip` (already being attempted).
    pub fn due(
        &self,
        webhook: &str,
        now_ms: u64,
        limit: usize,
        skip: &HashSet<String>,
    ) -> Result<Vec<String>, StoreError> {
        let mut found = Vec::new();
        for entry in self.due.scan_prefix(keys::prefix(webhook)) {
            if found.len() >= limit {
                break;
            }
            let (key, _) = entry?;
            let Some((at, id)) = keys::parse_due(&key, webhook) else {
                continue;
            };
            if at > now_ms {
                break;
            }
            if !skip.contains(&id) {
                found.push(id);
            }
        }
        Ok(found)
    }

    /// When the earliest of `webhook`'s due events not in `skip` is due.
    pub fn next_due_at(
        &self,
        webhook: &str,
        skip: &HashSet<String>,
    ) -> Result<Option<u64>, StoreError> {
        for entry in self.due.scan_prefix(keys::prefix(webhook)) {
            let (key, _) = entry?;
            if let Some((at, id)) = keys::parse_due(&key, webhook)
                && !skip.contains(&id)
            {
                return Ok(Some(at));
            }
        }
        Ok(None)
    }

    /// Records an attempt and moves the event on: delivered, due again at `next_attempt_at`,
    /// or failed when there is none.
    pub fn finish_attempt(
        &self,
        id: &str,
        attempt: &AttemptRecord,
        next_attempt_at: Option<u64>,
        now_ms: u64,
    ) -> Result<EventRecord, StoreError> {
        let attempt_bytes = encode(attempt);
        let trees = (&self.events, &self.due, &self.attempts, &self.counts);
        let updated = trees.transaction(|(events, due, attempts, counts)| {
            let mut event = self.event_in(events, id)?;
            attempts.insert(keys::attempt(id, attempt.number), attempt_bytes.as_slice())?;
            event.attempts = event.attempts.max(attempt.number);
            event.last_status_code = attempt.status_code;
            event.last_error = attempt.error.clone();
            let status = if attempt.succeeded() {
                Status::Delivered
            } else if next_attempt_at.is_some() {
                Status::Pending
            } else {
                Status::Failed
            };
            self.move_event(
                events,
                due,
                counts,
                &mut event,
                status,
                next_attempt_at,
                now_ms,
            )?;
            Ok(event)
        })?;
        Ok(updated)
    }

    /// Queues the event for one immediate attempt; its attempts so far are kept.
    pub fn redeliver(&self, id: &str, now_ms: u64) -> Result<EventRecord, StoreError> {
        let trees = (&self.events, &self.due, &self.counts);
        let updated = trees.transaction(|(events, due, counts)| {
            let mut event = self.event_in(events, id)?;
            if let Some(reason) = &event.render_error {
                return Err(ConflictableTransactionError::Abort(
                    StoreError::NotRedeliverable {
                        id: id.to_string(),
                        reason: reason.clone(),
                    },
                ));
            }
            event.schedule = Schedule::Redelivery {
                after_attempts: event.attempts,
            };
            self.move_event(
                events,
                due,
                counts,
                &mut event,
                Status::Pending,
                Some(now_ms),
                now_ms,
            )?;
            Ok(event)
        })?;
        Ok(updated)
    }

    fn event_in(&self, events: &TransactionalTree, id: &str) -> Abortable<EventRecord> {
        let bytes = events.get(id.as_bytes())?.ok_or_else(|| {
            ConflictableTransactionError::Abort(StoreError::NotFound(id.to_string()))
        })?;
        decode(id, &bytes).map_err(ConflictableTransactionError::Abort)
    }

    /// Sets status and due time, keeping the due index and counts in step.
    #[allow(clippy::too_many_arguments)]
    fn move_event(
        &self,
        events: &TransactionalTree,
        due: &TransactionalTree,
        counts: &TransactionalTree,
        event: &mut EventRecord,
        status: Status,
        next_attempt_at: Option<u64>,
        now_ms: u64,
    ) -> Abortable<()> {
        if let Some(previous) = event.next_attempt_at_ms {
            due.remove(keys::due(&event.webhook, previous, &event.id))?;
        }
        if event.status != status {
            adjust_count(counts, &event.webhook, event.status, -1)?;
            adjust_count(counts, &event.webhook, status, 1)?;
        }
        event.status = status;
        event.next_attempt_at_ms = match status {
            Status::Pending => next_attempt_at,
            _ => None,
        };
        event.finished_at_ms = match status {
            Status::Pending => None,
            _ => Some(now_ms),
        };
        if let Some(at) = event.next_attempt_at_ms {
            due.insert(keys::due(&event.webhook, at, &event.id), &[])?;
        }
        events.insert(event.id.as_bytes(), encode(event))?;
        Ok(())
    }

    pub fn attempts(&self, id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        self.attempts
            .scan_prefix(keys::prefix(id))
            .map(|entry| {
                let (_, value) = entry?;
                decode(id, &value)
            })
            .collect()
    }

    /// Events matching `query`, newest first.
    pub fn list(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        let limit = if query.limit == 0 {
            usize::MAX
        } else {
            query.limit
        };
        let ids: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> =
            match &query.webhook {
                Some(webhook) => {
                    let start = keys::prefix(webhook);
                    let end = keys::webhook_sequence(webhook, query.before.unwrap_or(u64::MAX));
                    Box::new(self.by_webhook.range(start..end).rev())
                }
                None => {
                    let end = keys::sequence(query.before.unwrap_or(u64::MAX));
                    Box::new(self.by_sequence.range(..end).rev())
                }
            };
        let mut found = Vec::new();
        for entry in ids {
            if found.len() >= limit {
                break;
            }
            let (_, id) = entry?;
            let id = String::from_utf8_lossy(&id).into_owned();
            let Some(event) = self.event(&id)? else {
                continue;
            };
            if query.status.is_none_or(|status| status == event.status) {
                found.push(event);
            }
        }
        Ok(found)
    }

    /// Counts by status for every webhook that has events.
    pub fn counts(&self) -> Result<BTreeMap<String, Counts>, StoreError> {
        let mut all: BTreeMap<String, Counts> = BTreeMap::new();
        for entry in self.counts.iter() {
            let (key, value) = entry?;
            let Some(split) = key.iter().position(|byte| *byte == 0) else {
                continue;
            };
            let webhook = String::from_utf8_lossy(&key[..split]).into_owned();
            let Ok(status) = String::from_utf8_lossy(&key[split + 1..]).parse::<Status>() else {
                continue;
            };
            *all.entry(webhook).or_default().entry(status).or_default() += keys::decode_u64(&value);
        }
        Ok(all)
    }

    /// Deletes delivered and failed events that finished before `cutoff_ms`, with their
    /// attempts and index entries. Returns how many were deleted.
    pub fn prune(&self, cutoff_ms: u64) -> Result<usize, StoreError> {
        let mut pruned = 0;
        for entry in self.by_sequence.iter() {
            let (sequence_key, id) = entry?;
            let id = String::from_utf8_lossy(&id).into_owned();
            let Some(event) = self.event(&id)? else {
                self.by_sequence.remove(sequence_key)?;
                continue;
            };
            // Events are in creation order: none created after the cutoff finished before it.
            if event.created_at_ms >= cutoff_ms {
                break;
            }
            if event.status == Status::Pending
                || event.finished_at_ms.is_none_or(|at| at >= cutoff_ms)
            {
                continue;
            }
            let attempt_keys: Vec<sled::IVec> = self
                .attempts
                .scan_prefix(keys::prefix(&id))
                .keys()
                .collect::<Result<_, _>>()?;
            let trees = (
                &self.events,
                &self.attempts,
                &self.by_sequence,
                &self.by_webhook,
                &self.counts,
            );
            trees.transaction(|(events, attempts, by_sequence, by_webhook, counts)| {
                events.remove(id.as_bytes())?;
                for key in &attempt_keys {
                    attempts.remove(key)?;
                }
                by_sequence.remove(&keys::sequence(event.sequence))?;
                by_webhook.remove(keys::webhook_sequence(&event.webhook, event.sequence))?;
                adjust_count(counts, &event.webhook, event.status, -1)?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })?;
            pruned += 1;
        }
        Ok(pruned)
    }

    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
