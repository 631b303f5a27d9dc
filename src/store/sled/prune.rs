//! Retention: delivered and failed events that finished before the cutoff go, with their
//! states and index entries. A chunk goes whole once all its events may go; one where at
//! least half may go is rewritten with the rest; otherwise it waits, because a chunk
//! entry without its state would read as an event never attempted.

use super::chunk::{self, Chunk};
use super::claim::truncated;
use super::{SledStore, backend, keys, ranges};
use crate::event::{NewEvent, Status};
use crate::store::StoreError;

impl SledStore {
    pub(super) fn prune_before(&self, cutoff_ms: u64) -> Result<u64, StoreError> {
        let mut pruned = 0;
        for webhook in self.webhooks()? {
            let prefix = keys::prefix(keys::CHUNK, &webhook);
            for entry in self.tree.scan_prefix(&prefix) {
                let (key, value) = entry.map_err(backend("pruning events"))?;
                let chunk = self.chunk_at(&webhook, &key, value)?;
                let oldest = match chunk.len() {
                    0 => None,
                    _ => Some(
                        chunk
                            .entry(0)
                            .map_err(|_| truncated(&webhook))?
                            .created_at_ms,
                    ),
                };
                // Chunks are in storing order: none after this one finished before the cutoff.
                if oldest.is_some_and(|created| created >= cutoff_ms) {
                    break;
                }
                pruned += self.prune_chunk(&webhook, &chunk, cutoff_ms)?;
            }
        }
        Ok(pruned)
    }

    fn prune_chunk(&self, webhook: &str, chunk: &Chunk, cutoff_ms: u64) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let mut goes = Vec::new();
        let mut stays = Vec::new();
        for index in 0..chunk.len() {
            let entry = chunk.entry(index).map_err(|_| truncated(webhook))?;
            let state = self.state(webhook, entry.sequence)?;
            let (status, finished) = match (&state, entry.render_error()) {
                (Some(state), _) => (state.status, state.finished_at_ms),
                (None, Some(_)) => (Status::Failed, Some(entry.created_at_ms)),
                (None, None) => (Status::Pending, None),
            };
            let prunable = status != Status::Pending && finished.is_some_and(|at| at < cutoff_ms);
            if prunable {
                goes.push((entry, status));
            } else {
                stays.push(entry);
            }
        }
        if goes.is_empty() || goes.len() < stays.len() {
            return Ok(0);
        }
        let mut writes = sled::Batch::default();
        let key = keys::chunk(webhook, chunk.first_sequence());
        for (entry, _) in &goes {
            writes.remove(keys::state(webhook, entry.sequence));
            writes.remove(keys::failed(webhook, entry.sequence));
        }
        if stays.is_empty() {
            writes.remove(key);
            let ids = goes.iter().map(|(entry, _)| entry.id);
            let (lowest, highest) = (ids.clone().min(), ids.max());
            if let (Some(lowest), Some(highest)) = (lowest, highest) {
                let spans =
                    ranges::naming(&self.tree, webhook, lowest, highest, chunk.first_sequence())?;
                for mut span in spans {
                    span.chunks.retain(|first| *first != chunk.first_sequence());
                    if span.chunks.is_empty() {
                        writes.remove(span.key(webhook));
                    } else {
                        writes.insert(span.key(webhook), span.value());
                    }
                }
            }
        } else {
            let kept: Vec<NewEvent> = stays
                .iter()
                .map(|entry| entry.to_new_event(webhook, chunk.model()))
                .collect();
            let numbered: Vec<(u64, &NewEvent)> = stays
                .iter()
                .zip(&kept)
                .map(|(entry, event)| (entry.sequence, event))
                .collect();
            writes.insert(
                key,
                chunk::encode(chunk.model(), chunk.first_sequence(), &numbered),
            );
        }
        self.tree
            .apply_batch(writes)
            .map_err(backend("pruning events"))?;
        for (_, status) in &goes {
            inner.count(webhook, *status, -1);
        }
        // The walk's parsed copy may be this chunk.
        inner.queue(webhook).chunk = None;
        Ok(goes.len() as u64)
    }
}
