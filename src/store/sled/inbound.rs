//! The inbound request log: one entry per request, `n` and a sequence number, the record
//! as JSON. Written without a flush of its own (the next append or flush carries it),
//! pruned with the events.

use super::{SledStore, backend, keys};
use crate::inbound::{InboundQuery, InboundRecord};
use crate::store::StoreError;

impl SledStore {
    pub(super) fn write_inbound(&self, records: Vec<InboundRecord>) -> Result<(), StoreError> {
        let mut writes = sled::Batch::default();
        let mut inner = self.lock();
        for mut record in records {
            record.sequence = inner.next_inbound;
            inner.next_inbound += 1;
            let value = serde_json::to_vec(&record)
                .map_err(|error| StoreError::corrupt("inbound log", error.to_string()))?;
            writes.insert(keys::inbound(record.sequence), value);
        }
        self.tree
            .apply_batch(writes)
            .map_err(backend("logging inbound requests"))
    }

    pub(super) fn read_inbound(
        &self,
        query: &InboundQuery,
    ) -> Result<Vec<InboundRecord>, StoreError> {
        let limit = if query.limit == 0 {
            usize::MAX
        } else {
            query.limit
        };
        let mut found = Vec::new();
        for entry in self.tree.scan_prefix([keys::INBOUND]).values().rev() {
            let value = entry.map_err(backend("reading the inbound log"))?;
            let Ok(record) = serde_json::from_slice::<InboundRecord>(&value) else {
                continue;
            };
            let wanted = query
                .endpoint
                .as_ref()
                .is_none_or(|endpoint| *endpoint == record.endpoint)
                && query
                    .outcome
                    .is_none_or(|outcome| outcome == record.outcome);
            if wanted {
                found.push(record);
                if found.len() >= limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// The next sequence of the log, from its last entry.
    pub(super) fn next_inbound_sequence(&self) -> Result<u64, StoreError> {
        let last = self
            .tree
            .scan_prefix([keys::INBOUND])
            .keys()
            .next_back()
            .transpose()
            .map_err(backend("reading the inbound log"))?;
        Ok(last
            .and_then(|key| key.get(1..).and_then(keys::decode_u64))
            .map_or(0, |sequence| sequence + 1))
    }

    /// Deletes entries received before `cutoff_ms` (entries are in time order).
    pub(super) fn prune_inbound(&self, cutoff_ms: u64) -> Result<u64, StoreError> {
        let mut writes = sled::Batch::default();
        let mut pruned = 0;
        for entry in self.tree.scan_prefix([keys::INBOUND]) {
            let (key, value) = entry.map_err(backend("pruning the inbound log"))?;
            let old = serde_json::from_slice::<InboundRecord>(&value)
                .map_or(true, |record| record.received_at_ms < cutoff_ms);
            if !old {
                break;
            }
            writes.remove(key);
            pruned += 1;
        }
        self.tree
            .apply_batch(writes)
            .map_err(backend("pruning the inbound log"))?;
        Ok(pruned)
    }
}
