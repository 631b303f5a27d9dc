//! The row index, for a row's history (CONTRACT §9). A key per event would be written at
//! a random place of sled's tree for every event and multiply the bytes written per
//! event; instead rows are hashed into [`BUCKETS`] buckets and each append writes one
//! entry per bucket it touches — `k`, bucket, the append's last sequence — listing its
//! events of that bucket. Within a bucket entries follow storing order, so a lookup
//! reads one bucket newest first and keeps the events of its row.
//!
//! Entries hold `(model, row key, queue, sequence)`. Pruning removes an entry once every
//! event it lists is older than the oldest event still stored; until then a listed event
//! that is gone is skipped when read.

use super::codec::{Reader, Truncated, Writer};

/// Few enough that a large append writes few entries; many enough that a lookup reads a
/// small share of the index.
pub(super) const BUCKETS: u16 = 256;

/// One event in the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RowEntry<'a> {
    pub(super) model: &'a str,
    pub(super) row_key: &'a str,
    pub(super) queue: &'a str,
    pub(super) sequence: u64,
}

/// The bucket of a row: FNV-1a over model and key, stable across versions and machines
/// (the index is on disk).
pub(super) fn bucket(model: &str, row_key: &str) -> u8 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in model.bytes().chain([0]).chain(row_key.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(BUCKETS)) as u8
}

pub(super) fn encode(entries: &[RowEntry<'_>]) -> Vec<u8> {
    let mut writer = Writer::with_capacity(entries.len() * 32);
    for entry in entries {
        writer.text(entry.model);
        writer.text(entry.row_key);
        writer.text(entry.queue);
        writer.varint(entry.sequence);
    }
    writer.bytes
}

pub(super) fn decode(bytes: &[u8]) -> Result<Vec<RowEntry<'_>>, Truncated> {
    let mut reader = Reader::new(bytes);
    let mut entries = Vec::new();
    while reader.position() < bytes.len() {
        entries.push(RowEntry {
            model: reader.text()?,
            row_key: reader.text()?,
            queue: reader.text()?,
            sequence: reader.varint()?,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_rows_spread_over_buckets() {
        let entries = [
            RowEntry {
                model: "order",
                row_key: "42",
                queue: "erp",
                sequence: 7,
            },
            RowEntry {
                model: "order",
                row_key: "line=2,order_id=7",
                queue: "erp+backfill",
                sequence: 1 << 40,
            },
        ];
        let bytes = encode(&entries);
        assert_eq!(decode(&bytes).unwrap(), entries);
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert_eq!(bucket("order", "42"), bucket("order", "42"));
        let used: std::collections::HashSet<u8> = (0..10_000)
            .map(|number| bucket("order", &number.to_string()))
            .collect();
        assert_eq!(used.len(), usize::from(BUCKETS));
        // The model is part of the row's identity.
        let differs = (0..100).any(|number| {
            bucket("order", &number.to_string()) != bucket("customer", &number.to_string())
        });
        assert!(differs);
    }
}
