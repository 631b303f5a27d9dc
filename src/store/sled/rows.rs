//! Per-row ordering (CONTRACT §9, `ordering = "row"`): the events of one row wait for
//! each other. Each queue keeps, in memory, a *line* per row: its ordered events that are
//! pending, by sequence. Only the first of a line may be claimed, and only while no other
//! of its line is under way; the rest are *held*.
//!
//! A held event has no state yet, so it holds the durable frontier back: after a restart
//! the walk meets it again. Lines are rebuilt on open from the due entries (retries and
//! redeliveries, the only pending events with a state), before any walk, so an event
//! walked after a restart still waits behind its row's earlier retry.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::chunk::Chunk;
use super::{Inner, SledStore, backend, keys};
use crate::event::Status;
use crate::store::StoreError;

#[derive(Default)]
pub(super) struct Lines {
    /// By row key: its pending ordered events, sequence to the first sequence of their
    /// chunk.
    rows: HashMap<String, BTreeMap<u64, u64>>,
    /// Walked past without a claim: waiting behind an earlier event of their row.
    held: BTreeSet<u64>,
    /// Held events whose turn has come, to be claimed as first attempts.
    released: BTreeMap<u64, u64>,
}

impl Lines {
    /// Puts an event into its row's line; whether it may be claimed now.
    pub(super) fn join(
        &mut self,
        row: &str,
        sequence: u64,
        first: u64,
        claimed: &HashSet<u64>,
    ) -> bool {
        self.rows
            .entry(row.to_string())
            .or_default()
            .insert(sequence, first);
        self.may_go(row, sequence, claimed)
    }

    /// The walk met an event that must wait: it holds the durable frontier back.
    pub(super) fn hold(&mut self, sequence: u64) {
        self.held.insert(sequence);
    }

    /// Whether the event may be claimed: first in its line, and nothing of its line
    /// under way (a redelivery may put an earlier event in front of one in flight).
    pub(super) fn may_go(&self, row: &str, sequence: u64, claimed: &HashSet<u64>) -> bool {
        let Some(line) = self.rows.get(row) else {
            return true;
        };
        line.keys().next() == Some(&sequence)
            && !line
                .keys()
                .any(|other| *other != sequence && claimed.contains(other))
    }

    /// The event is pending with a state of its own (a redelivery): it is in its line
    /// and no longer held.
    pub(super) fn rejoin(&mut self, row: &str, sequence: u64, first: u64) {
        self.rows
            .entry(row.to_string())
            .or_default()
            .insert(sequence, first);
        self.unhold(sequence);
    }

    /// The event was claimed, or got a state: it no longer holds the frontier.
    pub(super) fn unhold(&mut self, sequence: u64) {
        self.held.remove(&sequence);
        self.released.remove(&sequence);
    }

    /// The event is delivered or failed: the next of its row gets its turn. Whether
    /// there is a next one (the lane should look again).
    pub(super) fn leave(&mut self, row: &str, sequence: u64) -> bool {
        let Some(line) = self.rows.get_mut(row) else {
            return false;
        };
        line.remove(&sequence);
        match line.iter().next() {
            Some((next, first)) => {
                if self.held.contains(next) {
                    self.released.insert(*next, *first);
                }
                true
            }
            None => {
                self.rows.remove(row);
                false
            }
        }
    }

    /// The earliest held event: the durable frontier may not pass it.
    pub(super) fn first_held(&self) -> Option<u64> {
        self.held.first().copied()
    }

    /// The earliest released event, and its chunk.
    pub(super) fn next_released(&self) -> Option<(u64, u64)> {
        self.released
            .first_key_value()
            .map(|(sequence, first)| (*sequence, *first))
    }
}

impl SledStore {
    /// Rebuilds the lines of every queue that has held ordered events from its due
    /// entries: the pending events with a state. Run on open, before any walk; a store
    /// without ordered webhooks reads nothing here.
    pub(super) fn recover_lines(&self, inner: &mut Inner) -> Result<(), StoreError> {
        for queue_name in self.webhooks()? {
            let ordered = self
                .tree
                .contains_key(keys::ordered(&queue_name))
                .map_err(backend("reading ordered queues"))?;
            if !ordered {
                continue;
            }
            let mut chunks: HashMap<u64, Option<Chunk>> = HashMap::new();
            let queue = inner.queue(&queue_name);
            for entry in self.tree.scan_prefix(keys::prefix(keys::DUE, &queue_name)) {
                let (key, value) = entry.map_err(backend("reading due events"))?;
                let Some([at, sequence]) = keys::numbers::<2>(&key, keys::DUE, &queue_name) else {
                    continue;
                };
                let Some(first) = keys::decode_u64(&value) else {
                    continue;
                };
                let chunk = match chunks.entry(first) {
                    Entry::Occupied(known) => known.into_mut(),
                    Entry::Vacant(unknown) => unknown.insert(self.load_chunk(&queue_name, first)?),
                };
                let Some(chunk) = chunk.as_ref() else {
                    continue;
                };
                let Ok(Some(index)) = chunk.find_sequence(sequence) else {
                    continue;
                };
                let Ok(entry) = chunk.entry(index) else {
                    continue;
                };
                let (true, Some(row)) = (entry.ordered, entry.row_key) else {
                    continue;
                };
                let current = self
                    .state(&queue_name, first, sequence)?
                    .is_some_and(|state| {
                        state.status == Status::Pending && state.next_attempt_at_ms == Some(at)
                    });
                if current {
                    queue.lines.rejoin(row, sequence, first);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_lets_one_event_of_a_row_go_at_a_time() {
        let mut lines = Lines::default();
        let mut claimed = HashSet::new();
        assert!(lines.join("42", 1, 0, &claimed));
        claimed.insert(1);
        assert!(!lines.join("42", 2, 0, &claimed));
        lines.hold(2);
        assert!(!lines.join("42", 3, 0, &claimed));
        lines.hold(3);
        // Other rows are not held up.
        assert!(lines.join("7", 4, 0, &claimed));
        assert_eq!(lines.first_held(), Some(2));
        claimed.remove(&1);
        assert!(lines.leave("42", 1));
        assert_eq!(lines.next_released(), Some((2, 0)));
        lines.unhold(2);
        assert_eq!(lines.next_released(), None);
        assert_eq!(lines.first_held(), Some(3));
        assert!(lines.may_go("42", 2, &claimed));
        assert!(!lines.may_go("42", 3, &claimed));
        assert!(lines.leave("42", 2));
        assert_eq!(lines.next_released(), Some((3, 0)));
        lines.unhold(3);
        assert!(!lines.leave("42", 3));
        assert_eq!(lines.first_held(), None);
    }

    #[test]
    fn a_redelivered_earlier_event_waits_for_the_one_under_way() {
        let mut lines = Lines::default();
        let mut claimed = HashSet::new();
        assert!(lines.join("42", 5, 0, &claimed));
        claimed.insert(5);
        lines.rejoin("42", 2, 0);
        assert!(!lines.may_go("42", 2, &claimed));
        claimed.remove(&5);
        assert!(lines.may_go("42", 2, &claimed));
        assert!(!lines.may_go("42", 5, &claimed));
    }
}
