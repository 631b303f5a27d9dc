//! State pages: the states of one chunk's events, in one value. An event gets a state
//! once it is attempted or redelivered; recording a batch of attempts rewrites the few
//! pages of the chunks they belong to, instead of writing a value per event.
//!
//! ```text
//! version · count · (sequence − chunk's first · state length · state)…
//! ```

use std::collections::BTreeMap;

use super::codec::{Reader, Truncated, Writer};
use super::state::EventState;

const VERSION: u8 = 1;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct StatePage {
    states: BTreeMap<u64, EventState>,
}

impl StatePage {
    pub(super) fn get(&self, sequence: u64) -> Option<&EventState> {
        self.states.get(&sequence)
    }

    pub(super) fn contains(&self, sequence: u64) -> bool {
        self.states.contains_key(&sequence)
    }

    pub(super) fn insert(&mut self, sequence: u64, state: EventState) {
        self.states.insert(sequence, state);
    }

    pub(super) fn remove(&mut self, sequence: u64) {
        self.states.remove(&sequence);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    pub(super) fn states(&self) -> impl Iterator<Item = &EventState> {
        self.states.values()
    }

    pub(super) fn encode(&self, first_sequence: u64) -> Vec<u8> {
        let mut writer = Writer::with_capacity(16 + 48 * self.states.len());
        writer.byte(VERSION);
        writer.varint(self.states.len() as u64);
        for (sequence, state) in &self.states {
            writer.varint(sequence.saturating_sub(first_sequence));
            let encoded = state.encode();
            writer.varint(encoded.len() as u64);
            writer.bytes.extend_from_slice(&encoded);
        }
        writer.bytes
    }

    pub(super) fn decode(first_sequence: u64, bytes: &[u8]) -> Result<StatePage, Truncated> {
        let mut reader = Reader::new(bytes);
        if reader.byte()? != VERSION {
            return Err(Truncated);
        }
        let count = reader.length()?;
        let mut states = BTreeMap::new();
        for _ in 0..count {
            let sequence = first_sequence
                .checked_add(reader.varint()?)
                .ok_or(Truncated)?;
            let length = reader.length()?;
            states.insert(sequence, EventState::decode(reader.slice(length)?)?);
        }
        Ok(StatePage { states })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::event::{Attempt, ErrorKind};

    #[test]
    fn pages_round_trip() {
        let mut page = StatePage::default();
        assert_eq!(StatePage::decode(100, &page.encode(100)), Ok(page.clone()));
        let mut failed = EventState::initial(5);
        failed.record(
            Attempt {
                number: 1,
                started_at_ms: 5,
                duration_ms: 1,
                status_code: Some(503),
                error_kind: Some(ErrorKind::Status),
                error: Some("HTTP 503".into()),
                response_body: "busy".into(),
            },
            &[Duration::ZERO],
            9,
        );
        page.insert(100, failed.clone());
        page.insert(355, EventState::initial(7));
        let bytes = page.encode(100);
        let decoded = StatePage::decode(100, &bytes).unwrap();
        assert_eq!(decoded, page);
        assert_eq!(decoded.get(100), Some(&failed));
        assert!(decoded.contains(355) && !decoded.contains(101));
        for end in 0..bytes.len() {
            assert!(
                StatePage::decode(100, &bytes[..end]).is_err(),
                "cut at {end}"
            );
        }
        page.remove(100);
        page.remove(355);
        assert!(page.is_empty());
    }
}
