//! Appending a batch: deduplicate against the id index, give the new events sequence
//! numbers, write each webhook's events as chunks with their id-index spans, the next
//! sequence and the checkpoint — one atomic batch.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use super::row_index::{self, RowEntry};
use super::{SledStore, backend, chunk, jobs, keys, lanes, ranges, values};
use crate::event::{NewEvent, Status};
use crate::store::{Appended, NewEvents, StoreError};

/// A chunk holds at most this many events, or about this many bytes (one larger event
/// gets a chunk of its own): large enough that writes are few, small enough that reading
/// one event does not drag a megabyte along.
const CHUNK_EVENTS: usize = 256;
const CHUNK_BYTES: usize = 64 * 1024;

impl SledStore {
    /// Writes the batch; returns what was new and which webhooks got events. Not yet
    /// flushed.
    pub(super) fn write_appended(
        &self,
        batch: NewEvents,
    ) -> Result<(Appended, Vec<String>), StoreError> {
        // Drained outbox rows are the source's to delete: this store is not in its
        // database.
        let NewEvents {
            events,
            resume_after,
            backfill,
            drained_outbox: _,
        } = batch;
        // Events wait in their webhook's queue for their lane.
        let queues: Vec<Cow<'_, str>> = events
            .iter()
            .map(|event| lanes::queue_name(&event.webhook, event.lane))
            .collect();
        let _appending = self
            .appending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());

        // By webhook; an id seen twice in the batch (a transaction sent again after a
        // reconnect) is kept once.
        let mut seen = HashSet::with_capacity(events.len());
        let mut by_webhook: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (event, queue) in events.iter().zip(&queues) {
            if seen.insert(event.id.as_str()) {
                by_webhook.entry(queue).or_default().push(&event.id);
            }
        }
        let mut placements = HashMap::with_capacity(by_webhook.len());
        let mut stored_already = HashSet::new();
        for (webhook, mut ids) in by_webhook {
            ids.sort_unstable();
            let (stored, placement) = ranges::place(&self.tree, webhook, &ids, |first| {
                self.load_chunk(webhook, first)
            })?;
            stored_already.extend(stored);
            placements.insert(webhook, placement);
        }

        // Sequence numbers in arrival order, so listings show the newest first.
        seen.clear();
        let fresh: Vec<(&NewEvent, &str)> = events
            .iter()
            .zip(&queues)
            .filter(|(event, _)| {
                seen.insert(event.id.as_str()) && !stored_already.contains(&event.id)
            })
            .map(|(event, queue)| (event, queue.as_ref()))
            .collect();
        let created = fresh.len();
        let (first, known, checkpoint) = {
            let mut inner = self.lock();
            let first = inner.next_sequence;
            inner.next_sequence += created as u64;
            let known: HashSet<String> = inner.counts.keys().cloned().collect();
            (first, known, inner.checkpoint)
        };
        let next = first + created as u64;
        let mut planned: BTreeMap<&str, Vec<(u64, &NewEvent)>> = BTreeMap::new();
        for (offset, (event, queue)) in fresh.into_iter().enumerate() {
            planned
                .entry(queue)
                .or_default()
                .push((first + offset as u64, event));
        }
        let mut writes = sled::Batch::default();
        let mut touched = Vec::with_capacity(planned.len());
        let mut added: Vec<(String, u64, u64)> = Vec::with_capacity(planned.len());
        let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut row_entries: BTreeMap<u8, Vec<RowEntry<'_>>> = BTreeMap::new();
        for (webhook, numbered) in planned {
            let mut chunk_firsts = Vec::new();
            for group in chunk_groups(&numbered) {
                let Some((chunk_first, first_event)) = group.first() else {
                    continue;
                };
                for (sequence, event) in group {
                    // Failed from the start: listed with the other failures.
                    if event.initial_status() == Status::Failed {
                        writes.insert(keys::failed(webhook, *sequence), &chunk_first.to_be_bytes());
                    }
                }
                encoded.push((
                    keys::chunk(webhook, *chunk_first),
                    chunk::encode(&first_event.model, *chunk_first, group),
                ));
                chunk_firsts.push(*chunk_first);
            }
            for &(sequence, event) in &numbered {
                if let Some(row_key) = &event.row_key {
                    let entry = RowEntry {
                        model: &event.model,
                        row_key,
                        queue: webhook,
                        sequence,
                    };
                    row_entries
                        .entry(row_index::bucket(&event.model, row_key))
                        .or_default()
                        .push(entry);
                }
            }
            if let Some(placement) = placements.remove(webhook) {
                for span in placement.spans(&chunk_firsts) {
                    writes.insert(span.key(webhook), span.value());
                }
            }
            if !known.contains(webhook) {
                writes.insert(keys::webhook(webhook), &[]);
            }
            if numbered.iter().any(|(_, event)| event.ordered) {
                writes.insert(keys::ordered(webhook), &[]);
            }
            let failed = numbered
                .iter()
                .filter(|(_, event)| event.initial_status() == Status::Failed)
                .count() as u64;
            added.push((webhook.to_string(), numbered.len() as u64 - failed, failed));
            touched.push(webhook.to_string());
        }
        let bodies: Vec<&[u8]> = encoded.iter().map(|(_, chunk)| chunk.as_slice()).collect();
        let stored = self.store_values(&bodies, values::CHUNKS)?;
        let mut logged = Vec::new();
        for ((key, _), stored) in encoded.iter().zip(stored) {
            writes.insert(key.as_slice(), stored.value);
            logged.extend(stored.location);
        }
        if created > 0 {
            for (bucket, mut entries) in row_entries {
                entries.sort_by_key(|entry| entry.sequence);
                writes.insert(
                    keys::row_entry(bucket, next - 1),
                    row_index::encode(&entries),
                );
            }
        }
        writes.insert(keys::NEXT_SEQUENCE, &next.to_be_bytes());
        if let Some(job) = &backfill {
            writes.insert(keys::backfill(job.id), jobs::encode(job));
        }
        let advance = resume_after.filter(|lsn| checkpoint.is_none_or(|stored| *lsn > stored));
        if let Some(lsn) = advance {
            writes.insert(keys::CHECKPOINT, &lsn.0.to_be_bytes());
        }
        self.tree
            .apply_batch(writes)
            .map_err(backend("storing new events"))?;
        self.account(&logged, &[]);

        let mut inner = self.lock();
        if advance.is_some() {
            inner.checkpoint = advance;
        }
        for (webhook, pending, failed) in added {
            inner.count(&webhook, Status::Pending, pending as i64);
            inner.count(&webhook, Status::Failed, failed as i64);
        }
        Ok((Appended { created }, touched))
    }
}

/// Splits one webhook's events into chunks by count and size.
fn chunk_groups<'a>(events: &'a [(u64, &'a NewEvent)]) -> Vec<&'a [(u64, &'a NewEvent)]> {
    let mut groups = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (index, (_, event)) in events.iter().enumerate() {
        let size = event.size();
        let full = index - start >= CHUNK_EVENTS || (bytes + size > CHUNK_BYTES && index > start);
        if full {
            groups.push(&events[start..index]);
            start = index;
            bytes = 0;
        }
        bytes += size;
    }
    if start < events.len() {
        groups.push(&events[start..]);
    }
    groups
}
