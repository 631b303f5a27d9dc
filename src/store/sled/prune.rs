//! Retention: delivered and failed events that finished before the cutoff go, with their
//! states and index entries. A chunk goes whole once all its events may go; one where at
//! least half may go is rewritten with the rest; otherwise it waits, because a chunk
//! entry without its state would read as an event never attempted. Then the value log
//! is compacted, so that disk follows what is live.

use super::chunk::{self, Chunk};
use super::claim::truncated;
use super::value_log::Location;
use super::{SledStore, backend, keys, ranges, row_index, values};
use crate::event::{NewEvent, Status};
use crate::store::StoreError;

impl SledStore {
    pub(super) async fn prune_before(&self, cutoff_ms: u64) -> Result<u64, StoreError> {
        let mut pruned = 0;
        for webhook in self.webhooks()? {
            let prefix = keys::prefix(keys::CHUNK, &webhook);
            for entry in self.tree.scan_prefix(&prefix) {
                let (key, value) = entry.map_err(backend("pruning events"))?;
                let location = values::location_of(&value);
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
                pruned += self.prune_chunk(&webhook, &chunk, location, cutoff_ms)?;
                // A long retention pass gives way to the stages sharing this thread.
                tokio::task::yield_now().await;
            }
        }
        self.prune_row_index()?;
        self.compact().await?;
        Ok(pruned)
    }

    /// Removes the row index entries that list only events older than the oldest event
    /// still stored.
    fn prune_row_index(&self) -> Result<(), StoreError> {
        let mut oldest = self.lock().next_sequence;
        for webhook in self.webhooks()? {
            let first = self
                .tree
                .scan_prefix(keys::prefix(keys::CHUNK, &webhook))
                .keys()
                .next()
                .transpose()
                .map_err(backend("pruning the row index"))?;
            if let Some(key) = first
                && let Some([sequence]) = keys::numbers::<1>(&key, keys::CHUNK, &webhook)
            {
                oldest = oldest.min(sequence);
            }
        }
        let mut writes = sled::Batch::default();
        for bucket in 0..row_index::BUCKETS {
            let bucket = bucket as u8;
            for key in self
                .tree
                .range(keys::row_bucket(bucket)..keys::row_entry(bucket, oldest))
                .keys()
            {
                writes.remove(key.map_err(backend("pruning the row index"))?);
            }
        }
        self.tree
            .apply_batch(writes)
            .map_err(backend("pruning the row index"))
    }

    fn prune_chunk(
        &self,
        webhook: &str,
        chunk: &Chunk,
        location: Option<Location>,
        cutoff_ms: u64,
    ) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let first = chunk.first_sequence();
        let (mut page, old_page) = self.page(webhook, first)?;
        let mut goes = Vec::new();
        let mut stays = Vec::new();
        for index in 0..chunk.len() {
            let entry = chunk.entry(index).map_err(|_| truncated(webhook))?;
            let (status, finished) = match (page.get(entry.sequence), entry.render_error()) {
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
        let key = keys::chunk(webhook, first);
        let mut live = Vec::new();
        let mut gone: Vec<Location> = location.into_iter().collect();
        for (entry, _) in &goes {
            page.remove(entry.sequence);
            writes.remove(keys::failed(webhook, entry.sequence));
        }
        if stays.is_empty() {
            writes.remove(key);
            let ids = goes.iter().map(|(entry, _)| entry.id);
            let (lowest, highest) = (ids.clone().min(), ids.max());
            if let (Some(lowest), Some(highest)) = (lowest, highest) {
                for mut span in ranges::naming(&self.tree, webhook, lowest, highest, first)? {
                    span.chunks.retain(|chunk| *chunk != first);
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
            let encoded = chunk::encode(chunk.model(), first, &numbered);
            for stored in self.store_values(&[&encoded], values::CHUNKS)? {
                writes.insert(key.as_slice(), stored.value);
                live.extend(stored.location);
            }
        }
        let (page_live, page_gone) =
            self.write_pages(&mut writes, &[(webhook.to_string(), first, page, old_page)])?;
        self.tree
            .apply_batch(writes)
            .map_err(backend("pruning events"))?;
        live.extend(page_live);
        gone.extend(page_gone);
        self.account(&live, &gone);
        for (_, status) in &goes {
            inner.count(webhook, *status, -1);
        }
        // The walk's parsed copy may be this chunk.
        inner.queue(webhook).chunk = None;
        Ok(goes.len() as u64)
    }

    /// Writes the live values of sparse log segments again at the log's end, then deletes
    /// the segments nothing points into — once sled's index saying so is flushed, so that
    /// a crash never leaves an entry pointing into a deleted file.
    async fn compact(&self) -> Result<(), StoreError> {
        self.flush_now().await?;
        let sparse = self.value_log.tidy()?;
        if sparse.is_empty() {
            return Ok(());
        }
        for webhook in self.webhooks()? {
            for kind in [keys::CHUNK, keys::STATE] {
                for entry in self.tree.scan_prefix(keys::prefix(kind, &webhook)) {
                    let (key, value) = entry.map_err(backend("compacting the value log"))?;
                    let Some(old) =
                        values::location_of(&value).filter(|old| sparse.contains(&old.segment))
                    else {
                        continue;
                    };
                    let _inner = self.lock();
                    let bytes = self.value_log.read(old)?;
                    // Synced: the copy replaces the only other one, which is about to go.
                    let placement = values::Placement {
                        sync: true,
                        ..match kind {
                            keys::CHUNK => values::CHUNKS,
                            _ => values::PAGES,
                        }
                    };
                    let Some(moved) = self.store_values(&[&bytes], placement)?.pop() else {
                        continue;
                    };
                    // Only if nothing rewrote the value meanwhile.
                    let swapped = self
                        .tree
                        .compare_and_swap(&key, Some(&value), Some(moved.value))
                        .map_err(backend("compacting the value log"))?;
                    if swapped.is_ok() {
                        self.account(&moved.location.into_iter().collect::<Vec<_>>(), &[old]);
                    }
                }
            }
        }
        self.flush_now().await?;
        self.value_log.tidy()?;
        Ok(())
    }
}
