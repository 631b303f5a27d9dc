//! Claiming due events, recording attempts and redelivering.
//!
//! Due events come from two places: retries and redeliveries have a due entry (`d`), and
//! attempt 1 of every other event is found by walking the webhook's chunks from its
//! frontier, in the order they were stored (they become due in that order: same delay,
//! later capture). The frontier is kept in memory and written with recorded attempts,
//! never past a first attempt that is claimed but not recorded, so after a crash the walk
//! resumes where an attempt may be missing; events it meets that have a state were
//! attempted already and are passed.

use std::collections::BTreeMap;

use super::chunk::{Chunk, Entry};
use super::pages::StatePage;
use super::state::EventState;
use super::value_log::Location;
use super::{Inner, SledStore, backend, keys, lanes, values};
use crate::event::Status;
use crate::store::{Claim, ClaimedEvent, DueEvents, EventRecord, FinishedAttempt, StoreError};

impl SledStore {
    pub(super) fn claim(
        &self,
        webhook: &str,
        now_ms: u64,
        limit: usize,
    ) -> Result<DueEvents, StoreError> {
        let mut inner = self.lock();
        let mut due = DueEvents::default();
        self.claim_released(&mut inner, webhook, limit, &mut due)?;
        self.claim_retries(&mut inner, webhook, now_ms, limit, &mut due)?;
        if due.events.len() < limit {
            self.claim_first_attempts(&mut inner, webhook, now_ms, limit, &mut due)?;
        }
        Ok(due)
    }

    fn claim_retries(
        &self,
        inner: &mut Inner,
        webhook: &str,
        now_ms: u64,
        limit: usize,
        due: &mut DueEvents,
    ) -> Result<(), StoreError> {
        let queue = inner.queue(webhook);
        for entry in self.tree.scan_prefix(keys::prefix(keys::DUE, webhook)) {
            let (key, value) = entry.map_err(backend("reading due events"))?;
            let Some([at, sequence]) = keys::numbers::<2>(&key, keys::DUE, webhook) else {
                continue;
            };
            if at > now_ms || due.events.len() >= limit {
                due.next_due_at_ms = Some(at);
                break;
            }
            if queue.claimed.contains(&sequence) {
                continue;
            }
            let first = keys::decode_u64(&value).unwrap_or(sequence);
            let state = self.state(webhook, first, sequence)?;
            let current = state.as_ref().is_some_and(|state| {
                state.status == Status::Pending && state.next_attempt_at_ms == Some(at)
            });
            let chunk = match current {
                true => self.load_chunk(webhook, first)?,
                false => None,
            };
            let found = match &chunk {
                Some(chunk) => chunk
                    .find_sequence(sequence)
                    .map_err(|_| truncated(webhook))?
                    .map(|index| chunk.entry(index).map_err(|_| truncated(webhook)))
                    .transpose()?,
                None => None,
            };
            let (Some(state), Some(entry)) = (state, found) else {
                // Left behind by a redelivery or a crash between writes: nothing is due.
                self.tree
                    .remove(&key)
                    .map_err(backend("removing a stale due entry"))?;
                continue;
            };
            if let (true, Some(row)) = (entry.ordered, entry.row_key)
                && !queue.lines.join(row, sequence, first, &queue.claimed)
            {
                // An earlier event of its row is pending: this one waits its turn.
                continue;
            }
            if let Some(claimed) = claimed_event(webhook, first, &entry, state.attempt_count(), at)
            {
                queue.claimed.insert(sequence);
                due.events.push(claimed);
            }
        }
        Ok(())
    }

    /// Events that waited behind an earlier event of their row, now first: attempt 1.
    fn claim_released(
        &self,
        inner: &mut Inner,
        webhook: &str,
        limit: usize,
        due: &mut DueEvents,
    ) -> Result<(), StoreError> {
        let queue = inner.queue(webhook);
        while due.events.len() < limit {
            let Some((sequence, first)) = queue.lines.next_released() else {
                break;
            };
            queue.lines.unhold(sequence);
            // Redelivered while it waited: its due entry speaks for it now.
            if self.page(webhook, first)?.0.contains(sequence) {
                continue;
            }
            let Some(chunk) = self.load_chunk(webhook, first)? else {
                continue;
            };
            let Some(index) = chunk
                .find_sequence(sequence)
                .map_err(|_| truncated(webhook))?
            else {
                continue;
            };
            let entry = chunk.entry(index).map_err(|_| truncated(webhook))?;
            if let Some(claimed) =
                claimed_event(webhook, first, &entry, 0, entry.first_attempt_at_ms)
            {
                queue.claimed.insert(sequence);
                queue.first_claims.insert(sequence);
                due.events.push(claimed);
            }
        }
        Ok(())
    }

    fn claim_first_attempts(
        &self,
        inner: &mut Inner,
        webhook: &str,
        now_ms: u64,
        limit: usize,
        due: &mut DueEvents,
    ) -> Result<(), StoreError> {
        let queue = inner.queue(webhook);
        let prefix = keys::prefix(keys::CHUNK, webhook);
        let start = match &queue.chunk {
            Some(chunk) => chunk.first_sequence(),
            None => self
                .chunk_holding(webhook, queue.frontier)?
                .map_or(queue.frontier, |chunk| chunk.first_sequence()),
        };
        'chunks: for entry in self.tree.range(keys::chunk(webhook, start)..) {
            let (key, value) = entry.map_err(backend("reading events"))?;
            if !key.starts_with(&prefix) {
                break;
            }
            let chunk = match queue.chunk.take() {
                Some(cached) if keys::chunk(webhook, cached.first_sequence()) == *key => cached,
                _ => self.chunk_at(webhook, &key, value)?,
            };
            let first = chunk.first_sequence();
            let mut index =
                first_index_from(&chunk, queue.frontier).map_err(|_| truncated(webhook))?;
            // Read only if some event here may have a state (it has pages only then).
            let mut page: Option<StatePage> = None;
            while index < chunk.len() {
                let entry = chunk.entry(index).map_err(|_| truncated(webhook))?;
                if page.is_none() {
                    page = Some(self.page(webhook, first)?.0);
                }
                let attempted = page
                    .as_ref()
                    .is_some_and(|page| page.contains(entry.sequence));
                if entry.render_error().is_some() || attempted {
                    // Failed from the start, or attempted or redelivered already: its
                    // state and due entry speak for it.
                    queue.frontier = entry.sequence + 1;
                    index += 1;
                    continue;
                }
                if entry.first_attempt_at_ms > now_ms || due.events.len() >= limit {
                    let at = entry.first_attempt_at_ms;
                    due.next_due_at_ms = Some(due.next_due_at_ms.map_or(at, |next| next.min(at)));
                    queue.chunk = Some(chunk);
                    break 'chunks;
                }
                if let (true, Some(row)) = (entry.ordered, entry.row_key)
                    && !queue.lines.join(row, entry.sequence, first, &queue.claimed)
                {
                    // Waits behind an earlier event of its row; released when that one
                    // is delivered or failed.
                    queue.lines.hold(entry.sequence);
                    queue.frontier = entry.sequence + 1;
                    index += 1;
                    continue;
                }
                let at = entry.first_attempt_at_ms;
                if let Some(claimed) = claimed_event(webhook, first, &entry, 0, at) {
                    queue.claimed.insert(entry.sequence);
                    queue.first_claims.insert(entry.sequence);
                    due.events.push(claimed);
                }
                queue.frontier = entry.sequence + 1;
                index += 1;
            }
            // Walked to its end; kept, since the next walk starts in it if no later
            // chunk exists yet.
            queue.chunk = Some(chunk);
        }
        Ok(())
    }

    pub(super) fn record(&self, finished: Vec<FinishedAttempt>) -> Result<Vec<Status>, StoreError> {
        let mut inner = self.lock();
        let mut writes = sled::Batch::default();
        let mut statuses = vec![Status::Pending; finished.len()];
        // Queues where an event's turn came behind one that finished.
        let mut next_in_line: Vec<String> = Vec::new();
        // By page, so that each page is read and written once.
        let mut by_page: BTreeMap<(String, u64), Vec<(usize, FinishedAttempt)>> = BTreeMap::new();
        for (index, done) in finished.into_iter().enumerate() {
            let queue_name = lanes::queue_name(&done.webhook, done.claim.lane).into_owned();
            let queue = inner.queue(&queue_name);
            queue.claimed.remove(&done.claim.sequence);
            queue.first_claims.remove(&done.claim.sequence);
            by_page
                .entry((queue_name, done.claim.group))
                .or_default()
                .push((index, done));
        }
        let mut pages = Vec::with_capacity(by_page.len());
        for ((webhook, first), attempts) in by_page {
            let (mut page, old_value) = self.page(&webhook, first)?;
            for (index, done) in attempts {
                let sequence = done.claim.sequence;
                let stored = page.get(sequence).cloned();
                // Only an event with a state has due entries: attempt 1 is found by the walk.
                let had_state = stored.is_some();
                let mut state = stored.unwrap_or_else(|| EventState::initial(done.claim.due_at_ms));
                let transition = state.record(done.attempt, &done.retry, done.finished_at_ms);
                if had_state {
                    writes.remove(keys::due(&webhook, done.claim.due_at_ms, sequence));
                    if let Some(previous) = transition.previous_due_at_ms
                        && previous != done.claim.due_at_ms
                    {
                        writes.remove(keys::due(&webhook, previous, sequence));
                    }
                }
                if let Some(next) = state.next_attempt_at_ms {
                    writes.insert(keys::due(&webhook, next, sequence), &first.to_be_bytes());
                }
                if state.status == Status::Failed {
                    writes.insert(keys::failed(&webhook, sequence), &first.to_be_bytes());
                }
                inner.moved(&webhook, transition.from, state.status);
                if let Some(row) = &done.claim.row_key
                    && state.status != Status::Pending
                    && inner.queue(&webhook).lines.leave(row, sequence)
                {
                    next_in_line.push(webhook.clone());
                }
                statuses[index] = state.status;
                page.insert(sequence, state);
            }
            pages.push((webhook, first, page, old_value));
        }
        let (live, gone) = self.write_pages(&mut writes, &pages)?;
        let touched: Vec<String> = pages.iter().map(|(webhook, ..)| webhook.clone()).collect();
        for webhook in touched {
            let queue = inner.queue(&webhook);
            let durable = [
                queue.first_claims.first().copied(),
                queue.lines.first_held(),
            ]
            .into_iter()
            .flatten()
            .fold(queue.frontier, u64::min);
            if durable > queue.durable_frontier {
                queue.durable_frontier = durable;
                writes.insert(keys::frontier(&webhook), &durable.to_be_bytes());
            }
        }
        self.tree
            .apply_batch(writes)
            .map_err(backend("recording attempts"))?;
        self.account(&live, &gone);
        drop(inner);
        for queue in next_in_line {
            self.wakeups.wake(lanes::webhook_of(&queue));
        }
        Ok(statuses)
    }

    /// Adds the new versions of `pages` to `writes` (empty pages are removed); returns the
    /// log locations that become live and those that go, for after the batch is applied.
    pub(super) fn write_pages(
        &self,
        writes: &mut sled::Batch,
        pages: &[(String, u64, StatePage, Option<sled::IVec>)],
    ) -> Result<(Vec<Location>, Vec<Location>), StoreError> {
        let encoded: Vec<Vec<u8>> = pages
            .iter()
            .map(|(_, first, page, _)| page.encode(*first))
            .collect();
        let bodies: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
        let stored = self.store_values(&bodies, values::PAGES)?;
        let mut live = Vec::new();
        let mut gone = Vec::new();
        for ((webhook, first, page, old), stored) in pages.iter().zip(stored) {
            gone.extend(old.as_deref().and_then(values::location_of));
            let key = keys::state(webhook, *first);
            if page.is_empty() {
                writes.remove(key);
            } else {
                writes.insert(key, stored.value);
                live.extend(stored.location);
            }
        }
        Ok((live, gone))
    }

    pub(super) fn write_redelivery(
        &self,
        id: &str,
        now_ms: u64,
    ) -> Result<EventRecord, StoreError> {
        let mut inner = self.lock();
        let (webhook, chunk, index) = self
            .locate(id)?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let entry = chunk.entry(index).map_err(|_| truncated(&webhook))?;
        if let Some(reason) = entry.render_error() {
            return Err(StoreError::NotRedeliverable {
                id: id.to_string(),
                reason: reason.to_string(),
            });
        }
        let (sequence, first) = (entry.sequence, chunk.first_sequence());
        let (mut page, old_value) = self.page(&webhook, first)?;
        let mut state = page
            .get(sequence)
            .cloned()
            .unwrap_or_else(|| EventState::initial(entry.first_attempt_at_ms));
        // An attempt under way counts as made: the redelivery is one more after it.
        let queue = inner.queue(&webhook);
        let in_flight = queue.claimed.contains(&sequence);
        if let (true, Some(row)) = (entry.ordered, entry.row_key) {
            queue.lines.rejoin(row, sequence, first);
        }
        let made = state.attempt_count() + u32::from(in_flight);
        let transition = state.redeliver(made, now_ms);
        let mut writes = sled::Batch::default();
        if let Some(previous) = transition.previous_due_at_ms {
            writes.remove(keys::due(&webhook, previous, sequence));
        }
        writes.insert(keys::due(&webhook, now_ms, sequence), &first.to_be_bytes());
        writes.remove(keys::failed(&webhook, sequence));
        let record = super::read::record_of(&webhook, chunk.model(), &entry, Some(&state));
        page.insert(sequence, state);
        let (live, gone) =
            self.write_pages(&mut writes, &[(webhook.clone(), first, page, old_value)])?;
        self.tree
            .apply_batch(writes)
            .map_err(backend("queueing a redelivery"))?;
        self.account(&live, &gone);
        inner.moved(&webhook, transition.from, Status::Pending);
        Ok(record)
    }
}

/// The index of the first entry at or after `sequence`.
fn first_index_from(chunk: &Chunk, sequence: u64) -> Result<usize, super::codec::Truncated> {
    let (mut low, mut high) = (0, chunk.len());
    while low < high {
        let middle = (low + high) / 2;
        if chunk.head(middle)?.0 < sequence {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    Ok(low)
}

fn claimed_event(
    webhook: &str,
    group: u64,
    entry: &Entry<'_>,
    attempts: u32,
    due_at_ms: u64,
) -> Option<ClaimedEvent> {
    Some(ClaimedEvent {
        id: entry.id.to_string(),
        webhook: lanes::webhook_of(webhook).to_string(),
        created_at_ms: entry.created_at_ms,
        request: entry.request()?,
        attempts,
        claim: Claim {
            sequence: entry.sequence,
            group,
            due_at_ms,
            lane: lanes::lane_of(webhook),
            row_key: entry.row_key.filter(|_| entry.ordered).map(str::to_string),
        },
    })
}

pub(super) fn truncated(webhook: &str) -> StoreError {
    StoreError::corrupt(format!("events of {webhook:?}"), "truncated chunk")
}
