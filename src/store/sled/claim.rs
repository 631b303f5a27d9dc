//! Claiming due events, recording attempts and redelivering.
//!
//! Due events come from two places: retries and redeliveries have a due entry (`d`), and
//! attempt 1 of every other event is found by walking the webhook's chunks from its
//! frontier, in the order they were stored (they become due in that order: same delay,
//! later capture). The frontier is kept in memory and written with recorded attempts,
//! never past a first attempt that is claimed but not recorded, so after a crash the walk
//! resumes where an attempt may be missing; events it meets that have a state were
//! attempted already and are passed.

use super::chunk::{Chunk, Entry};
use super::state::EventState;
use super::{Inner, SledStore, backend, keys};
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
            let (key, _) = entry.map_err(backend("reading due events"))?;
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
            let state = self.state(webhook, sequence)?;
            let current = state.as_ref().is_some_and(|state| {
                state.status == Status::Pending && state.next_attempt_at_ms == Some(at)
            });
            let chunk = match current {
                true => self.chunk_holding(webhook, sequence)?,
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
            if let Some(claimed) = claimed_event(webhook, &entry, state.attempt_count(), at) {
                queue.claimed.insert(sequence);
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
            let mut index =
                first_index_from(&chunk, queue.frontier).map_err(|_| truncated(webhook))?;
            while index < chunk.len() {
                let entry = chunk.entry(index).map_err(|_| truncated(webhook))?;
                if entry.render_error().is_some()
                    || self
                        .tree
                        .contains_key(keys::state(webhook, entry.sequence))
                        .map_err(backend("reading an event's state"))?
                {
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
                let at = entry.first_attempt_at_ms;
                if let Some(claimed) = claimed_event(webhook, &entry, 0, at) {
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
        let mut statuses = Vec::with_capacity(finished.len());
        let mut touched = Vec::new();
        for done in finished {
            let webhook = done.webhook.as_str();
            let sequence = done.claim.sequence;
            let queue = inner.queue(webhook);
            queue.claimed.remove(&sequence);
            queue.first_claims.remove(&sequence);
            if !touched.iter().any(|name: &String| name == webhook) {
                touched.push(webhook.to_string());
            }
            let mut state = self
                .state(webhook, sequence)?
                .unwrap_or_else(|| EventState::initial(done.claim.due_at_ms));
            let transition = state.record(done.attempt, &done.retry, done.finished_at_ms);
            writes.remove(keys::due(webhook, done.claim.due_at_ms, sequence));
            if let Some(previous) = transition.previous_due_at_ms {
                writes.remove(keys::due(webhook, previous, sequence));
            }
            if let Some(next) = state.next_attempt_at_ms {
                writes.insert(keys::due(webhook, next, sequence), &[]);
            }
            if state.status == Status::Failed {
                writes.insert(keys::failed(webhook, sequence), &[]);
            }
            writes.insert(keys::state(webhook, sequence), state.encode());
            inner.moved(webhook, transition.from, state.status);
            statuses.push(state.status);
        }
        for webhook in touched {
            let queue = inner.queue(&webhook);
            let durable = queue
                .first_claims
                .first()
                .copied()
                .unwrap_or(queue.frontier)
                .min(queue.frontier);
            if durable > queue.durable_frontier {
                queue.durable_frontier = durable;
                writes.insert(keys::frontier(&webhook), &durable.to_be_bytes());
            }
        }
        self.tree
            .apply_batch(writes)
            .map_err(backend("recording attempts"))?;
        Ok(statuses)
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
        let sequence = entry.sequence;
        let mut state = self
            .state(&webhook, sequence)?
            .unwrap_or_else(|| EventState::initial(entry.first_attempt_at_ms));
        // An attempt under way counts as made: the redelivery is one more after it.
        let in_flight = inner.queue(&webhook).claimed.contains(&sequence);
        let made = state.attempt_count() + u32::from(in_flight);
        let transition = state.redeliver(made, now_ms);
        let mut writes = sled::Batch::default();
        if let Some(previous) = transition.previous_due_at_ms {
            writes.remove(keys::due(&webhook, previous, sequence));
        }
        writes.insert(keys::due(&webhook, now_ms, sequence), &[]);
        writes.remove(keys::failed(&webhook, sequence));
        writes.insert(keys::state(&webhook, sequence), state.encode());
        self.tree
            .apply_batch(writes)
            .map_err(backend("queueing a redelivery"))?;
        inner.moved(&webhook, transition.from, state.status);
        Ok(super::read::record_of(
            &webhook,
            chunk.model(),
            &entry,
            Some(&state),
        ))
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
    entry: &Entry<'_>,
    attempts: u32,
    due_at_ms: u64,
) -> Option<ClaimedEvent> {
    Some(ClaimedEvent {
        id: entry.id.to_string(),
        webhook: webhook.to_string(),
        created_at_ms: entry.created_at_ms,
        request: entry.request()?,
        attempts,
        claim: Claim {
            sequence: entry.sequence,
            due_at_ms,
        },
    })
}

pub(super) fn truncated(webhook: &str) -> StoreError {
    StoreError::corrupt(format!("events of {webhook:?}"), "truncated chunk")
}
