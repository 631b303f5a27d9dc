//! What an index entry holds for a chunk or a state page: the bytes themselves when they
//! are small (sled copes well with small values), or where they are in the value log.

use sled::IVec;

use super::SledStore;
use super::value_log::Location;
use crate::store::StoreError;

const INLINE: u8 = 0;
const LOGGED: u8 = 1;

/// How a value is stored: up to this size in sled; above it in the log, synced or not.
#[derive(Clone, Copy)]
pub(super) struct Placement {
    pub(super) inline_up_to: usize,
    pub(super) sync: bool,
}

/// Chunks: up to 8 KiB in sled (a single event's append then takes one flush), larger
/// ones in the log, durable before their index entry is written.
pub(super) const CHUNKS: Placement = Placement {
    inline_up_to: 8 * 1024,
    sync: true,
};
/// State pages: rewritten often, so always in the log (sled rewrites a whole node of
/// neighbours with every few updates of a value); not synced (attempt records are not
/// durable one by one).
pub(super) const PAGES: Placement = Placement {
    inline_up_to: 0,
    sync: false,
};

/// An index value, and the log location it points at when it does.
pub(super) struct Stored {
    pub(super) value: Vec<u8>,
    pub(super) location: Option<Location>,
}

/// Where a logged value's index entry says it is.
pub(super) fn location_of(value: &[u8]) -> Option<Location> {
    let rest = value.strip_prefix(&[LOGGED])?;
    if rest.len() != 20 {
        return None;
    }
    Some(Location {
        segment: u64::from_be_bytes(rest[0..8].try_into().ok()?),
        offset: u64::from_be_bytes(rest[8..16].try_into().ok()?),
        length: u32::from_be_bytes(rest[16..20].try_into().ok()?),
    })
}

fn logged(location: Location) -> Vec<u8> {
    let mut value = Vec::with_capacity(21);
    value.push(LOGGED);
    value.extend_from_slice(&location.segment.to_be_bytes());
    value.extend_from_slice(&location.offset.to_be_bytes());
    value.extend_from_slice(&location.length.to_be_bytes());
    value
}

impl SledStore {
    /// The index values for `values`, writing the large ones to the log.
    pub(super) fn store_values(
        &self,
        values: &[&[u8]],
        placement: Placement,
    ) -> Result<Vec<Stored>, StoreError> {
        let large: Vec<&[u8]> = values
            .iter()
            .filter(|value| value.len() > placement.inline_up_to)
            .copied()
            .collect();
        let mut locations = self.value_log.append(&large, placement.sync)?.into_iter();
        let mut stored = Vec::with_capacity(values.len());
        for value in values {
            if value.len() > placement.inline_up_to {
                let location = locations.next().ok_or_else(|| {
                    StoreError::corrupt("the value log", "a value went unwritten")
                })?;
                stored.push(Stored {
                    value: logged(location),
                    location: Some(location),
                });
            } else {
                let mut inline = Vec::with_capacity(1 + value.len());
                inline.push(INLINE);
                inline.extend_from_slice(value);
                stored.push(Stored {
                    value: inline,
                    location: None,
                });
            }
        }
        Ok(stored)
    }

    /// The bytes an index value stands for. A logged value moved by a compaction since
    /// its entry was read is found again through the entry at `key`.
    pub(super) fn resolve(&self, key: &[u8], value: &IVec) -> Result<IVec, StoreError> {
        match value.first() {
            Some(&INLINE) => Ok(value.subslice(1, value.len() - 1)),
            Some(&LOGGED) => {
                let location = location_of(value)
                    .ok_or_else(|| StoreError::corrupt("an index entry", "unreadable location"))?;
                match self.value_log.read(location) {
                    Ok(bytes) => Ok(IVec::from(bytes)),
                    Err(error) => match self.tree.get(key).ok().flatten() {
                        Some(moved) if moved != *value => match location_of(&moved) {
                            Some(moved) => Ok(IVec::from(self.value_log.read(moved)?)),
                            None => Ok(moved.subslice(1, moved.len().saturating_sub(1))),
                        },
                        _ => Err(error),
                    },
                }
            }
            _ => Err(StoreError::corrupt("an index entry", "unknown kind")),
        }
    }

    /// Tells the log which values became live and which were replaced or removed.
    pub(super) fn account(&self, live: &[Location], gone: &[Location]) {
        for location in live {
            self.value_log.account(*location, true);
        }
        for location in gone {
            self.value_log.account(*location, false);
        }
    }
}
