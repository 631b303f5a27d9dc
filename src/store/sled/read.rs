//! Reading the history back: one event by id, listings newest first, the facts of an
//! event from its chunk entry and its state.

use std::collections::HashMap;

use super::chunk::{Chunk, Entry};
use super::claim::truncated;
use super::state::EventState;
use super::{SledStore, backend, keys, lanes, ranges, row_index};
use crate::event::Status;
use crate::store::{EventQuery, EventRecord, RowQuery, StoreError, StoredEvent};

/// An event's facts: its entry, and its state once it has one.
pub(super) fn record_of(
    webhook: &str,
    model: &str,
    entry: &Entry<'_>,
    state: Option<&EventState>,
) -> EventRecord {
    let render_error = entry.render_error().map(str::to_string);
    let (status, attempts, next_attempt_at_ms, finished_at_ms) = match (state, &render_error) {
        (Some(state), _) => (
            state.status,
            state.attempt_count(),
            state.next_attempt_at_ms,
            state.finished_at_ms,
        ),
        (None, Some(_)) => (Status::Failed, 0, None, Some(entry.created_at_ms)),
        (None, None) => (Status::Pending, 0, Some(entry.first_attempt_at_ms), None),
    };
    let last = state.and_then(|state| state.attempts.last());
    EventRecord {
        id: entry.id.to_string(),
        webhook: lanes::webhook_of(webhook).to_string(),
        model: model.to_string(),
        kind: entry.kind.to_string(),
        created_at_ms: entry.created_at_ms,
        sequence: entry.sequence,
        status,
        attempts,
        next_attempt_at_ms,
        last_status_code: last.and_then(|attempt| attempt.status_code),
        last_error: last
            .and_then(|attempt| attempt.error.clone())
            .or_else(|| render_error.clone()),
        finished_at_ms,
        render_error,
        row_key: entry.row_key.map(str::to_string),
    }
}

impl SledStore {
    /// The webhook, chunk and index of the event `id`.
    pub(super) fn locate(&self, id: &str) -> Result<Option<(String, Chunk, usize)>, StoreError> {
        let mut webhooks = self.webhooks()?;
        // Event ids end in `_<webhook>`: ask that webhook first.
        webhooks.sort_by_key(|queue| !id.ends_with(&format!("_{}", lanes::webhook_of(queue))));
        for webhook in webhooks {
            let Some(span) = ranges::containing(&self.tree, &webhook, id)? else {
                continue;
            };
            for first in span.chunks.iter().rev() {
                let Some(chunk) = self.load_chunk(&webhook, *first)? else {
                    continue;
                };
                if let Some(index) = chunk.find_id(id).map_err(|_| truncated(&webhook))? {
                    return Ok(Some((webhook, chunk, index)));
                }
            }
        }
        Ok(None)
    }

    pub(super) fn find_event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError> {
        let Some((webhook, chunk, index)) = self.locate(id)? else {
            return Ok(None);
        };
        let entry = chunk.entry(index).map_err(|_| truncated(&webhook))?;
        let state = self.state(&webhook, chunk.first_sequence(), entry.sequence)?;
        Ok(Some(StoredEvent {
            record: record_of(&webhook, chunk.model(), &entry, state.as_ref()),
            request: entry.request(),
            envelope: entry.envelope().to_string(),
            attempts: state.map(|state| state.attempts).unwrap_or_default(),
        }))
    }

    pub(super) fn list_events(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        let limit = if query.limit == 0 {
            usize::MAX
        } else {
            query.limit
        };
        let before = query.before.unwrap_or(u64::MAX);
        if let Some(row) = &query.row {
            return self.row_events(query, row, before, limit);
        }
        let webhooks = match &query.webhook {
            Some(webhook) => lanes::queues_of(webhook).to_vec(),
            None => self.webhooks()?,
        };
        let mut found = Vec::new();
        for webhook in &webhooks {
            let listed = match query.status {
                Some(Status::Failed) => self.failed_events(webhook, before, limit)?,
                status => self.events_newest_first(webhook, before, limit, status)?,
            };
            found.extend(listed);
        }
        // Each webhook's list is newest first; merged, the newest of all come first.
        found.sort_by_key(|record| std::cmp::Reverse(record.sequence));
        found.truncate(limit);
        Ok(found)
    }

    fn events_newest_first(
        &self,
        webhook: &str,
        before: u64,
        limit: usize,
        status: Option<Status>,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let start = keys::prefix(keys::CHUNK, webhook);
        let end = keys::chunk(webhook, before);
        let mut found = Vec::new();
        for entry in self.tree.range(start..end).rev() {
            let (key, value) = entry.map_err(backend("listing events"))?;
            let chunk = self.chunk_at(webhook, &key, value)?;
            let (page, _) = self.page(webhook, chunk.first_sequence())?;
            for index in (0..chunk.len()).rev() {
                let entry = chunk.entry(index).map_err(|_| truncated(webhook))?;
                if entry.sequence >= before {
                    continue;
                }
                let state = page.get(entry.sequence);
                let record = record_of(webhook, chunk.model(), &entry, state);
                if status.is_none_or(|status| status == record.status) {
                    found.push(record);
                    if found.len() >= limit {
                        return Ok(found);
                    }
                }
            }
        }
        Ok(found)
    }

    /// The events of one row, newest first, from its bucket of the row index: only the
    /// chunks holding them are read.
    fn row_events(
        &self,
        query: &EventQuery,
        row: &RowQuery,
        before: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let bucket = row_index::bucket(&row.model, &row.key);
        let mut found = Vec::new();
        let mut chunks: HashMap<String, Option<Chunk>> = HashMap::new();
        for entry in self
            .tree
            .scan_prefix(keys::row_bucket(bucket))
            .values()
            .rev()
        {
            let value = entry.map_err(backend("listing a row's events"))?;
            let entries = row_index::decode(&value)
                .map_err(|_| StoreError::corrupt("row index", "truncated entry"))?;
            for listed in entries.iter().rev() {
                let wanted = listed.model == row.model
                    && listed.row_key == row.key
                    && listed.sequence < before
                    && query
                        .webhook
                        .as_deref()
                        .is_none_or(|webhook| webhook == lanes::webhook_of(listed.queue));
                if !wanted {
                    continue;
                }
                let chunk = chunks.entry(listed.queue.to_string()).or_default();
                let Some(record) = self.record_at(listed.queue, None, listed.sequence, chunk)?
                else {
                    continue;
                };
                if query.status.is_none_or(|status| status == record.status) {
                    found.push(record);
                    if found.len() >= limit {
                        return Ok(found);
                    }
                }
            }
        }
        Ok(found)
    }

    fn failed_events(
        &self,
        webhook: &str,
        before: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let start = keys::prefix(keys::FAILED, webhook);
        let end = keys::failed(webhook, before);
        let mut found = Vec::new();
        let mut chunk: Option<Chunk> = None;
        for entry in self.tree.range(start..end).rev() {
            let (key, value) = entry.map_err(backend("listing failed events"))?;
            let Some([sequence]) = keys::numbers::<1>(&key, keys::FAILED, webhook) else {
                continue;
            };
            let first = keys::decode_u64(&value);
            if let Some(record) = self.record_at(webhook, first, sequence, &mut chunk)?
                && record.status == Status::Failed
            {
                found.push(record);
                if found.len() >= limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// The record of event `sequence` (in the chunk starting at `first`, when known),
    /// reusing `chunk` when it is that chunk.
    fn record_at(
        &self,
        webhook: &str,
        first: Option<u64>,
        sequence: u64,
        chunk: &mut Option<Chunk>,
    ) -> Result<Option<EventRecord>, StoreError> {
        let holds = |chunk: &Chunk| -> Result<Option<usize>, StoreError> {
            chunk
                .find_sequence(sequence)
                .map_err(|_| truncated(webhook))
        };
        let index = match chunk.as_ref().map(holds).transpose()?.flatten() {
            Some(index) => Some(index),
            None => {
                *chunk = match first {
                    Some(first) => self.load_chunk(webhook, first)?,
                    None => self.chunk_holding(webhook, sequence)?,
                };
                chunk.as_ref().map(holds).transpose()?.flatten()
            }
        };
        let (Some(chunk), Some(index)) = (chunk.as_ref(), index) else {
            return Ok(None);
        };
        let entry = chunk.entry(index).map_err(|_| truncated(webhook))?;
        let state = self.state(webhook, chunk.first_sequence(), entry.sequence)?;
        Ok(Some(record_of(
            webhook,
            chunk.model(),
            &entry,
            state.as_ref(),
        )))
    }
}
