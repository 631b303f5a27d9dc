//! The durable store (sled): events with their rendered requests, a due-time index per
//! webhook, attempts, listing indexes and the capture checkpoint; per-webhook counts are
//! kept in memory beside it.
//!
//! Contract with the capture stage: events are written here and `flush` returns before
//! the change is acknowledged to PostgreSQL. Event ids are deterministic, so a change
//! read again after a crash finds its events already stored and adds nothing.

mod keys;
pub mod records;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use sled::{Db, Tree};

use crate::change::Lsn;
use records::{AttemptRecord, EventRecord, Schedule, Status, StoredRequest};

const CACHE_BYTES: u64 = 32 * 1024 * 1024;

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

/// Which events to list, newest first.
#[derive(Clone, Debug, Default)]
pub struct EventQuery {
    pub webhook: Option<String>,
    pub status: Option<Status>,
    pub limit: usize,
    /// Only events older than this insertion sequence (paging).
    pub before: Option<u64>,
}

/// What `Store::due` found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DueEvents {
    /// Due time and id of each event due now, earliest first.
    pub found: Vec<(u64, String)>,
    /// When the earliest entry left waiting is due.
    pub next: Option<u64>,
    /// The key of the last entry in `found`: where the next look may start.
    pub cursor: Option<Vec<u8>>,
}

/// Event counts by status for one webhook.
pub type Counts = BTreeMap<Status, u64>;

/// Everything is one tree so that each change of an event and its indexes is one atomic
/// batch (sled's multi-tree transactions cost far more). Writers take `writes` so that
/// read-modify-write of an event and of the counters never interleave.
pub struct Store {
    db: Db,
    /// Event states, the due index, listing indexes and attempts.
    tree: Tree,
    /// Request heads and bodies, written once per event; apart so that rewriting the
    /// small states never drags large bodies along.
    requests: Tree,
    /// The capture checkpoint.
    meta: Tree,
    counts: Mutex<CountTable>,
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

/// An event as stored: its small mutable state under one key, written on every attempt;
/// the request's method, URL and headers (and the envelope when the body is not the
/// envelope itself) under another, and the body raw under a third, each written once.
/// This keeps what each attempt rewrites small.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredState {
    webhook: String,
    model: String,
    kind: String,
    created_at_ms: u64,
    sequence: u64,
    status: Status,
    attempts: u32,
    schedule: Schedule,
    next_attempt_at_ms: Option<u64>,
    last_status_code: Option<u16>,
    last_error: Option<String>,
    finished_at_ms: Option<u64>,
    render_error: Option<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredRequestHead {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    /// Absent when the body is the envelope (the default JSON format).
    envelope: Option<serde_json::Value>,
}

impl StoredState {
    fn of(event: &EventRecord) -> StoredState {
        StoredState {
            webhook: event.webhook.clone(),
            model: event.model.clone(),
            kind: event.kind.clone(),
            created_at_ms: event.created_at_ms,
            sequence: event.sequence,
            status: event.status,
            attempts: event.attempts,
            schedule: event.schedule,
            next_attempt_at_ms: event.next_attempt_at_ms,
            last_status_code: event.last_status_code,
            last_error: event.last_error.clone(),
            finished_at_ms: event.finished_at_ms,
            render_error: event.render_error.clone(),
        }
    }

    fn into_event(self, id: &str, head: StoredRequestHead, body: Option<String>) -> EventRecord {
        EventRecord {
            id: id.to_string(),
            webhook: self.webhook,
            model: self.model,
            kind: self.kind,
            envelope: head.envelope,
            request: StoredRequest {
                method: head.method,
                url: head.url,
                headers: head.headers,
                body,
            },
            created_at_ms: self.created_at_ms,
            sequence: self.sequence,
            status: self.status,
            attempts: self.attempts,
            schedule: self.schedule,
            next_attempt_at_ms: self.next_attempt_at_ms,
            last_status_code: self.last_status_code,
            last_error: self.last_error,
            finished_at_ms: self.finished_at_ms,
            render_error: self.render_error,
        }
    }
}

/// A request as stored: the head's length (4 bytes, big-endian), the head as JSON, then
/// a presence byte and the raw body — one value, so an attempt reads it in one go.
fn encode_request(head: &StoredRequestHead, body: Option<&str>) -> Vec<u8> {
    let head = encode(head);
    let mut bytes = Vec::with_capacity(4 + head.len() + 1 + body.map_or(0, str::len));
    bytes.extend_from_slice(&(head.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&head);
    match body {
        Some(body) => {
            bytes.push(1);
            bytes.extend_from_slice(body.as_bytes());
        }
        None => bytes.push(0),
    }
    bytes
}

fn decode_request(
    id: &str,
    bytes: &[u8],
) -> Result<(StoredRequestHead, Option<String>), StoreError> {
    let corrupt = || StoreError::Corrupt {
        what: id.to_string(),
        source: serde::de::Error::custom("request value too short"),
    };
    let (length, rest) = bytes.split_at_checked(4).ok_or_else(corrupt)?;
    let length = u32::from_be_bytes(length.try_into().map_err(|_| corrupt())?) as usize;
    let (head, rest) = rest.split_at_checked(length).ok_or_else(corrupt)?;
    let head = decode(id, head)?;
    let body = match rest.split_first() {
        Some((1, body)) => Some(String::from_utf8_lossy(body).into_owned()),
        _ => None,
    };
    Ok((head, body))
}

/// Event counts by webhook and status, kept in memory: computed from the stored states
/// when the store opens and adjusted with every change. (Persisting them would rewrite
/// one hot key on every write, which sled pays for by rewriting whole pages.)
#[derive(Default)]
struct CountTable(BTreeMap<String, Counts>);

impl CountTable {
    fn add(&mut self, webhook: &str, status: Status, delta: i64) {
        let count = self
            .0
            .entry(webhook.to_string())
            .or_default()
            .entry(status)
            .or_default();
        *count = count.saturating_add_signed(delta);
    }
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        // sled caches up to 1 GiB by default; the working set here is the due index and
        // recent events, so a small cache keeps memory flat without slowing writes.
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .open()
            .map_err(open_error)?;
        let store = Store {
            tree: db.open_tree("events").map_err(open_error)?,
            requests: db.open_tree("requests").map_err(open_error)?,
            meta: db.open_tree("meta").map_err(open_error)?,
            db,
            counts: Mutex::new(CountTable::default()),
        };
        let mut counts = CountTable::default();
        for entry in store.tree.scan_prefix([keys::EVENT]) {
            let (key, value) = entry?;
            let state: StoredState = decode(&String::from_utf8_lossy(&key[1..]), &value)?;
            counts.add(&state.webhook, state.status, 1);
        }
        *store.lock() = counts;
        Ok(store)
    }

    /// Writers hold this lock, so that the read-modify-write of an event and of the
    /// counts never interleave.
    fn lock(&self) -> MutexGuard<'_, CountTable> {
        // The counts are plain numbers; a panic elsewhere leaves nothing half-written.
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A number larger than every one handed out before, for `EventRecord::sequence`.
    pub fn next_sequence(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?)
    }

    /// Stores a new event with its indexes, unless an event with its id exists already
    /// (a change read again). Returns whether it was new. Not durable until `flush`.
    ///
    /// sled's atomic batches cost ten times what single writes do, so writes are single
    /// and ordered instead: sled recovers a prefix of its log, and the event's state is
    /// written last, so after a crash an event either exists whole or not at all (and its
    /// change, not yet acknowledged, is read again). Index entries left without a state
    /// are skipped by readers and cleaned up by `due` and `prune`.
    pub fn insert(&self, event: &EventRecord) -> Result<bool, StoreError> {
        let mut counts = self.lock();
        let key = keys::event(&event.id);
        if self.tree.contains_key(&key)? {
            return Ok(false);
        }
        let body = event.request.body.as_deref();
        let head = StoredRequestHead {
            method: event.request.method.clone(),
            url: event.request.url.clone(),
            headers: event.request.headers.clone(),
            envelope: event.envelope.clone(),
        };
        self.requests.insert(
            keys::by_id(keys::REQUEST, &event.id),
            encode_request(&head, body),
        )?;
        if let (Status::Pending, Some(at)) = (event.status, event.next_attempt_at_ms) {
            self.tree
                .insert(keys::due(&event.webhook, at, &event.id), &[])?;
        }
        self.tree
            .insert(keys::sequence(event.sequence), event.id.as_bytes())?;
        self.tree.insert(
            keys::webhook_sequence(&event.webhook, event.sequence),
            event.id.as_bytes(),
        )?;
        self.tree.insert(key, encode(&StoredState::of(event)))?;
        counts.add(&event.webhook, event.status, 1);
        Ok(true)
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
            .get(keys::CHECKPOINT)?
            .map(|value| Lsn(keys::decode_u64(&value)))
            .unwrap_or_default())
    }

    /// Moves the checkpoint forward (never back).
    pub fn set_checkpoint(&self, lsn: Lsn) -> Result<(), StoreError> {
        let _writing = self.lock();
        if lsn > self.checkpoint()? {
            self.meta.insert(keys::CHECKPOINT, &lsn.0.to_be_bytes())?;
        }
        Ok(())
    }

    pub fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        match self.state(id)? {
            Some(state) => self.with_request(id, state),
            None => Ok(None),
        }
    }

    fn with_request(
        &self,
        id: &str,
        state: StoredState,
    ) -> Result<Option<EventRecord>, StoreError> {
        let Some(bytes) = self.requests.get(keys::by_id(keys::REQUEST, id))? else {
            return Ok(None);
        };
        let (head, body) = decode_request(id, &bytes)?;
        Ok(Some(state.into_event(id, head, body)))
    }

    fn state(&self, id: &str) -> Result<Option<StoredState>, StoreError> {
        match self.tree.get(keys::event(id))? {
            Some(bytes) => Ok(Some(decode(id, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Up to `limit` due times and ids of `webhook`'s events due at `now_ms`, earliest
    /// first, leaving out those in `skip` (already being attempted) and, with `after`,
    /// every entry up to that key (a cursor: entries before it were handed out already).
    /// Also says when the earliest entry left waiting is due, and the key of the last
    /// entry handed out (the next cursor).
    pub fn due(
        &self,
        webhook: &str,
        now_ms: u64,
        limit: usize,
        skip: &HashSet<String>,
        after: Option<&[u8]>,
    ) -> Result<DueEvents, StoreError> {
        let prefix = keys::prefix(keys::DUE, webhook);
        let entries = match after {
            Some(cursor) => self.tree.range::<&[u8], _>((
                std::ops::Bound::Excluded(cursor),
                std::ops::Bound::Unbounded,
            )),
            None => self.tree.range::<&[u8], _>(prefix.as_slice()..),
        };
        let mut due = DueEvents::default();
        for entry in entries {
            let (key, _) = entry?;
            if !key.starts_with(&prefix) {
                break;
            }
            let Some((at, id)) = keys::parse_due(&key, webhook) else {
                continue;
            };
            if skip.contains(&id) {
                continue;
            }
            if at > now_ms || due.found.len() >= limit {
                due.next = Some(at);
                break;
            }
            due.found.push((at, id));
            due.cursor = Some(key.to_vec());
        }
        Ok(due)
    }

    /// The event behind a due entry, if the entry still describes it (pending and due at
    /// that time). Otherwise the entry is left over from a crash between writes, and is
    /// removed.
    pub fn event_if_due(
        &self,
        webhook: &str,
        at: u64,
        id: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        let _writing = self.lock();
        match self.state(id)? {
            Some(state)
                if state.status == Status::Pending && state.next_attempt_at_ms == Some(at) =>
            {
                self.with_request(id, state)
            }
            _ => {
                self.tree.remove(keys::due(webhook, at, id))?;
                Ok(None)
            }
        }
    }

    /// Records an attempt and moves the event on: delivered, due again at `next_attempt_at`,
    /// or failed when there is none.
    pub fn finish_attempt(
        &self,
        id: &str,
        attempt: &AttemptRecord,
        next_attempt_at: Option<u64>,
        now_ms: u64,
    ) -> Result<Status, StoreError> {
        let mut counts = self.lock();
        let mut state = self
            .state(id)?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        self.tree
            .insert(keys::attempt(id, attempt.number), encode(attempt))?;
        state.attempts = state.attempts.max(attempt.number);
        state.last_status_code = attempt.status_code;
        state.last_error = attempt.error.clone();
        let status = if attempt.succeeded() {
            Status::Delivered
        } else if next_attempt_at.is_some() {
            Status::Pending
        } else {
            Status::Failed
        };
        self.move_event(&mut counts, id, &mut state, status, next_attempt_at, now_ms)?;
        Ok(status)
    }

    /// Queues the event for one immediate attempt; its attempts so far are kept.
    pub fn redeliver(&self, id: &str, now_ms: u64) -> Result<EventRecord, StoreError> {
        let mut counts = self.lock();
        let mut state = self
            .state(id)?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        if let Some(reason) = &state.render_error {
            return Err(StoreError::NotRedeliverable {
                id: id.to_string(),
                reason: reason.clone(),
            });
        }
        state.schedule = Schedule::Redelivery {
            after_attempts: state.attempts,
        };
        self.move_event(
            &mut counts,
            id,
            &mut state,
            Status::Pending,
            Some(now_ms),
            now_ms,
        )?;
        drop(counts);
        self.event(id)?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// Sets status and due time, keeping the due index and counts in step. The new due
    /// entry is written before the state and the old one removed after it, so a crash in
    /// between leaves an extra entry (cleaned up when met), never a pending event without one.
    fn move_event(
        &self,
        counts: &mut CountTable,
        id: &str,
        state: &mut StoredState,
        status: Status,
        next_attempt_at: Option<u64>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let previous = state.next_attempt_at_ms;
        if state.status != status {
            counts.add(&state.webhook, state.status, -1);
            counts.add(&state.webhook, status, 1);
        }
        state.status = status;
        state.next_attempt_at_ms = match status {
            Status::Pending => next_attempt_at,
            _ => None,
        };
        state.finished_at_ms = match status {
            Status::Pending => None,
            _ => Some(now_ms),
        };
        if let Some(at) = state.next_attempt_at_ms {
            self.tree.insert(keys::due(&state.webhook, at, id), &[])?;
        }
        self.tree.insert(keys::event(id), encode(&*state))?;
        if let Some(previous) = previous
            && Some(previous) != state.next_attempt_at_ms
        {
            self.tree.remove(keys::due(&state.webhook, previous, id))?;
        }
        Ok(())
    }

    pub fn attempts(&self, id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        self.tree
            .scan_prefix(keys::prefix(keys::ATTEMPT, id))
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
        let before = query.before.unwrap_or(u64::MAX);
        let (start, end) = match &query.webhook {
            Some(webhook) => (
                keys::prefix(keys::BY_WEBHOOK, webhook),
                keys::webhook_sequence(webhook, before),
            ),
            None => (vec![keys::BY_SEQUENCE], keys::sequence(before).to_vec()),
        };
        let mut found = Vec::new();
        for entry in self.tree.range(start..end).rev() {
            if found.len() >= limit {
                break;
            }
            let (key, id) = entry?;
            let id = String::from_utf8_lossy(&id).into_owned();
            let Some(event) = self.event(&id)? else {
                continue;
            };
            // An entry left by an insert a crash cut short; the event was stored again
            // under a later sequence.
            if key[key.len() - 8..] != event.sequence.to_be_bytes() {
                continue;
            }
            if query.status.is_none_or(|status| status == event.status) {
                found.push(event);
            }
        }
        Ok(found)
    }

    /// Counts by status for every webhook that has events.
    pub fn counts(&self) -> BTreeMap<String, Counts> {
        self.lock().0.clone()
    }

    /// Deletes delivered and failed events that finished before `cutoff_ms`, with their
    /// attempts and index entries. Returns how many were deleted.
    pub fn prune(&self, cutoff_ms: u64) -> Result<usize, StoreError> {
        let mut pruned = 0;
        for entry in self.tree.scan_prefix([keys::BY_SEQUENCE]) {
            let (sequence_key, id) = entry?;
            let id = String::from_utf8_lossy(&id).into_owned();
            let mut counts = self.lock();
            let Some(event) = self.event(&id)? else {
                self.tree.remove(sequence_key)?;
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
            // State first: once it is gone the event is gone, whatever a crash leaves.
            self.tree.remove(keys::event(&id))?;
            counts.add(&event.webhook, event.status, -1);
            let attempt_keys: Vec<sled::IVec> = self
                .tree
                .scan_prefix(keys::prefix(keys::ATTEMPT, &id))
                .keys()
                .collect::<Result<_, _>>()?;
            for key in attempt_keys {
                self.tree.remove(key)?;
            }
            self.tree.remove(keys::sequence(event.sequence))?;
            self.tree
                .remove(keys::webhook_sequence(&event.webhook, event.sequence))?;
            self.requests.remove(keys::by_id(keys::REQUEST, &id))?;
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
