//! A chunk: the events of one webhook from one append, written as one value. A flush of
//! thousands of events costs a few writes instead of several per event. Short texts that
//! repeat (kinds, methods, URLs, header names and values) are kept once per chunk; an
//! offset table lets one event be read without decoding the others.
//!
//! ```text
//! version · model · count · unrendered count · base time · strings · offsets · events
//! event: sequence − first · id · kind · created − base · first attempt − created ·
//!        row flags · row key? ·
//!        rendered: method · url · headers · body? · envelope?  |  unrendered: reason · envelope
//! ```
//!
//! Version 1 chunks (before rows were kept) have no row flags; they read as events
//! without a row key, unordered.

use std::collections::HashMap;

use sled::IVec;

use super::codec::{Reader, Truncated, Writer};
use crate::event::{Content, NewEvent, Request};

const VERSION: u8 = 2;
const VERSION_WITHOUT_ROWS: u8 = 1;
const HAS_ROW_KEY: u8 = 1;
const ORDERED: u8 = 2;
const RENDERED: u8 = 0;
const UNRENDERED: u8 = 1;

/// One event of a chunk, borrowed from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Entry<'a> {
    pub(super) sequence: u64,
    pub(super) id: &'a str,
    pub(super) kind: &'a str,
    pub(super) created_at_ms: u64,
    pub(super) first_attempt_at_ms: u64,
    pub(super) row_key: Option<&'a str>,
    /// Attempted only once no earlier event of its row is pending.
    pub(super) ordered: bool,
    pub(super) content: EntryContent<'a>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum EntryContent<'a> {
    Rendered {
        method: &'a str,
        url: &'a str,
        headers: Vec<(&'a str, &'a str)>,
        body: Option<&'a str>,
        envelope: Option<&'a str>,
    },
    Unrendered {
        reason: &'a str,
        envelope: &'a str,
    },
}

impl Entry<'_> {
    pub(super) fn request(&self) -> Option<Request> {
        match &self.content {
            EntryContent::Rendered {
                method,
                url,
                headers,
                body,
                ..
            } => Some(Request {
                method: method.to_string(),
                url: url.to_string(),
                headers: headers
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.to_string()))
                    .collect(),
                body: body.map(str::to_string),
            }),
            EntryContent::Unrendered { .. } => None,
        }
    }

    /// The envelope as JSON text: kept apart, or the body when the body is the envelope.
    pub(super) fn envelope(&self) -> &str {
        match &self.content {
            EntryContent::Rendered { envelope, body, .. } => envelope.or(*body).unwrap_or("null"),
            EntryContent::Unrendered { envelope, .. } => envelope,
        }
    }

    pub(super) fn render_error(&self) -> Option<&str> {
        match &self.content {
            EntryContent::Unrendered { reason, .. } => Some(reason),
            EntryContent::Rendered { .. } => None,
        }
    }

    /// An owned copy, for rewriting a chunk without some of its events.
    pub(super) fn to_new_event(&self, webhook: &str, model: &str) -> NewEvent {
        let content = match &self.content {
            EntryContent::Rendered { envelope, .. } => Content::Rendered {
                request: self.request().unwrap_or_else(|| Request {
                    method: String::new(),
                    url: String::new(),
                    headers: Vec::new(),
                    body: None,
                }),
                envelope: envelope.map(str::to_string),
            },
            EntryContent::Unrendered { reason, envelope } => Content::Unrendered {
                reason: reason.to_string(),
                envelope: envelope.to_string(),
            },
        };
        NewEvent {
            id: self.id.to_string(),
            webhook: super::lanes::webhook_of(webhook).to_string(),
            model: model.to_string(),
            kind: self.kind.to_string(),
            created_at_ms: self.created_at_ms,
            first_attempt_at_ms: self.first_attempt_at_ms,
            content,
            lane: super::lanes::lane_of(webhook),
            row_key: self.row_key.map(str::to_string),
            ordered: self.ordered,
        }
    }
}

/// Encodes `events`, whose sequence numbers are given alongside, ascending.
pub(super) fn encode(model: &str, first_sequence: u64, events: &[(u64, &NewEvent)]) -> Vec<u8> {
    let mut strings = Strings::default();
    let base_time = events
        .iter()
        .map(|(_, event)| event.created_at_ms)
        .min()
        .unwrap_or(0);
    let mut body = Writer::with_capacity(events.iter().map(|(_, event)| event.size()).sum());
    let mut offsets = Vec::with_capacity(events.len());
    let mut unrendered = 0u64;
    for (sequence, event) in events {
        offsets.push(body.bytes.len() as u32);
        body.varint(sequence - first_sequence);
        body.text(&event.id);
        body.varint(strings.index(&event.kind));
        body.varint(event.created_at_ms - base_time);
        body.varint(
            event
                .first_attempt_at_ms
                .saturating_sub(event.created_at_ms),
        );
        let flags = match event.row_key {
            Some(_) => HAS_ROW_KEY,
            None => 0,
        } | if event.ordered { ORDERED } else { 0 };
        body.byte(flags);
        if let Some(row_key) = &event.row_key {
            body.text(row_key);
        }
        match &event.content {
            Content::Rendered { request, envelope } => {
                body.byte(RENDERED);
                body.varint(strings.index(&request.method));
                body.varint(strings.index(&request.url));
                body.varint(request.headers.len() as u64);
                for (name, value) in &request.headers {
                    body.varint(strings.index(name));
                    body.varint(strings.index(value));
                }
                body.optional_text(request.body.as_deref());
                body.optional_text(envelope.as_deref());
            }
            Content::Unrendered { reason, envelope } => {
                unrendered += 1;
                body.byte(UNRENDERED);
                body.text(reason);
                body.text(envelope);
            }
        }
    }
    let mut chunk = Writer::with_capacity(body.bytes.len() + 4 * offsets.len() + 256);
    chunk.byte(VERSION);
    chunk.text(model);
    chunk.varint(events.len() as u64);
    chunk.varint(unrendered);
    chunk.varint(base_time);
    chunk.varint(strings.list.len() as u64);
    for text in &strings.list {
        chunk.text(text);
    }
    for offset in offsets {
        chunk.u32(offset);
    }
    chunk.bytes.extend_from_slice(&body.bytes);
    chunk.bytes
}

#[derive(Default)]
struct Strings<'a> {
    list: Vec<&'a str>,
    indexes: HashMap<&'a str, u64>,
}

impl<'a> Strings<'a> {
    fn index(&mut self, text: &'a str) -> u64 {
        let next = self.list.len() as u64;
        *self.indexes.entry(text).or_insert_with(|| {
            self.list.push(text);
            next
        })
    }
}

/// A parsed chunk; entries are decoded on demand from the bytes sled handed out.
#[derive(Clone, Debug)]
pub(super) struct Chunk {
    bytes: IVec,
    version: u8,
    first_sequence: u64,
    model: (usize, usize),
    unrendered: u64,
    base_time: u64,
    strings: Vec<(usize, usize)>,
    offsets: Vec<usize>,
}

impl Chunk {
    pub(super) fn parse(first_sequence: u64, bytes: IVec) -> Result<Chunk, Truncated> {
        let mut reader = Reader::new(&bytes);
        let version = reader.byte()?;
        if version != VERSION && version != VERSION_WITHOUT_ROWS {
            return Err(Truncated);
        }
        let model = span(&mut reader)?;
        let count = reader.length()?;
        let unrendered = reader.varint()?;
        let base_time = reader.varint()?;
        let string_count = reader.length()?;
        let mut strings = Vec::with_capacity(string_count);
        for _ in 0..string_count {
            strings.push(span(&mut reader)?);
        }
        let mut offsets = Vec::with_capacity(count);
        for _ in 0..count {
            offsets.push(reader.u32()? as usize);
        }
        let events_start = reader.position();
        let offsets = offsets
            .into_iter()
            .map(|offset| {
                let absolute = events_start + offset;
                (absolute < bytes.len())
                    .then_some(absolute)
                    .ok_or(Truncated)
            })
            .collect::<Result<_, _>>()?;
        Ok(Chunk {
            version,
            first_sequence,
            model,
            unrendered,
            base_time,
            strings,
            offsets,
            bytes,
        })
    }

    pub(super) fn first_sequence(&self) -> u64 {
        self.first_sequence
    }

    pub(super) fn len(&self) -> usize {
        self.offsets.len()
    }

    pub(super) fn model(&self) -> &str {
        self.text(self.model)
    }

    /// Events whose request could not be rendered (failed from the start).
    pub(super) fn unrendered(&self) -> u64 {
        self.unrendered
    }

    fn text(&self, (start, end): (usize, usize)) -> &str {
        // Spans were checked to be UTF-8 when parsed.
        std::str::from_utf8(&self.bytes[start..end]).unwrap_or_default()
    }

    fn string(&self, reader: &mut Reader<'_>) -> Result<&str, Truncated> {
        let index = reader.length_unchecked()?;
        let span = *self.strings.get(index).ok_or(Truncated)?;
        Ok(self.text(span))
    }

    /// The sequence and id of entry `index`, and a reader at what follows them.
    fn read_head(&self, index: usize) -> Result<(u64, &str, Reader<'_>), Truncated> {
        let offset = *self.offsets.get(index).ok_or(Truncated)?;
        let mut reader = Reader::at(&self.bytes, offset);
        let sequence = self
            .first_sequence
            .checked_add(reader.varint()?)
            .ok_or(Truncated)?;
        let id = reader.text()?;
        Ok((sequence, id, reader))
    }

    /// The sequence and id of entry `index`, without decoding the rest of it.
    pub(super) fn head(&self, index: usize) -> Result<(u64, &str), Truncated> {
        let (sequence, id, _) = self.read_head(index)?;
        Ok((sequence, id))
    }

    pub(super) fn entry(&self, index: usize) -> Result<Entry<'_>, Truncated> {
        let (sequence, id, mut reader) = self.read_head(index)?;
        let kind = self.string(&mut reader)?;
        let created_at_ms = self.base_time.saturating_add(reader.varint()?);
        let first_attempt_at_ms = created_at_ms.saturating_add(reader.varint()?);
        let flags = match self.version {
            VERSION_WITHOUT_ROWS => 0,
            _ => reader.byte()?,
        };
        let row_key = match flags & HAS_ROW_KEY {
            0 => None,
            _ => Some(reader.text()?),
        };
        let content = match reader.byte()? {
            RENDERED => {
                let method = self.string(&mut reader)?;
                let url = self.string(&mut reader)?;
                let count = reader.length()?;
                let mut headers = Vec::with_capacity(count);
                for _ in 0..count {
                    headers.push((self.string(&mut reader)?, self.string(&mut reader)?));
                }
                EntryContent::Rendered {
                    method,
                    url,
                    headers,
                    body: reader.optional_text()?,
                    envelope: reader.optional_text()?,
                }
            }
            UNRENDERED => EntryContent::Unrendered {
                reason: reader.text()?,
                envelope: reader.text()?,
            },
            _ => return Err(Truncated),
        };
        Ok(Entry {
            sequence,
            id,
            kind,
            created_at_ms,
            first_attempt_at_ms,
            row_key,
            ordered: flags & ORDERED != 0,
            content,
        })
    }

    /// The index of the entry with `sequence` (entries ascend by sequence).
    pub(super) fn find_sequence(&self, sequence: u64) -> Result<Option<usize>, Truncated> {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let middle = (low + high) / 2;
            let (found, _) = self.head(middle)?;
            match found.cmp(&sequence) {
                std::cmp::Ordering::Equal => return Ok(Some(middle)),
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
            }
        }
        Ok(None)
    }

    /// The index of the entry with `id`, if the chunk holds it.
    pub(super) fn find_id(&self, id: &str) -> Result<Option<usize>, Truncated> {
        for index in 0..self.len() {
            if self.head(index)?.1 == id {
                return Ok(Some(index));
            }
        }
        Ok(None)
    }

    /// The highest sequence in the chunk.
    pub(super) fn last_sequence(&self) -> Result<u64, Truncated> {
        match self.len() {
            0 => Ok(self.first_sequence),
            length => Ok(self.head(length - 1)?.0),
        }
    }
}

/// A text's byte span, checked to be UTF-8.
fn span(reader: &mut Reader<'_>) -> Result<(usize, usize), Truncated> {
    let text = reader.text()?;
    let end = reader.position();
    Ok((end - text.len(), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn event(id: &str, body: Option<&str>) -> NewEvent {
        NewEvent {
            id: id.to_string(),
            webhook: "hook".into(),
            model: "order".into(),
            kind: "order.created".into(),
            created_at_ms: 1_700_000_000_000,
            first_attempt_at_ms: 1_700_000_005_000,
            content: Content::Rendered {
                request: Request {
                    method: "POST".into(),
                    url: format!("http://127.0.0.1:9/orders/{id}"),
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: body.map(str::to_string),
                },
                envelope: None,
            },
            lane: crate::event::Lane::Live,
            row_key: Some(id.trim_start_matches("evt_").to_string()),
            ordered: false,
        }
    }

    #[test]
    fn entries_round_trip() {
        let first = event("evt_1", Some("{\"a\":1}"));
        let mut second = event("evt_2", None);
        second.created_at_ms += 7;
        second.ordered = true;
        let failed = NewEvent {
            content: Content::Unrendered {
                reason: "url: bad".into(),
                envelope: "{}".into(),
            },
            row_key: None,
            ..event("evt_3", None)
        };
        let events = [(100, &first), (101, &second), (105, &failed)];
        let bytes = encode("order", 100, &events);
        let chunk = Chunk::parse(100, IVec::from(bytes.clone())).unwrap();
        assert_eq!(chunk.len(), 3);
        assert_eq!(chunk.model(), "order");
        assert_eq!(chunk.unrendered(), 1);
        for (index, (sequence, original)) in events.iter().enumerate() {
            let entry = chunk.entry(index).unwrap();
            assert_eq!(entry.sequence, *sequence);
            assert_eq!(entry.to_new_event("hook", "order"), **original);
        }
        assert_eq!(chunk.entry(0).unwrap().envelope(), "{\"a\":1}");
        assert_eq!(chunk.entry(2).unwrap().render_error(), Some("url: bad"));
        assert_eq!(chunk.find_sequence(105).unwrap(), Some(2));
        assert_eq!(chunk.find_sequence(102).unwrap(), None);
        assert_eq!(chunk.find_id("evt_2").unwrap(), Some(1));
        assert_eq!(chunk.last_sequence().unwrap(), 105);
        for end in 0..bytes.len() {
            let Ok(cut) = Chunk::parse(100, IVec::from(&bytes[..end])) else {
                continue;
            };
            // A chunk cut after its offset table reads as far as it goes, then errs.
            let _ = (0..cut.len())
                .map(|index| cut.entry(index))
                .collect::<Vec<_>>();
        }
    }

    #[test]
    fn repeated_texts_are_kept_once() {
        let events: Vec<NewEvent> = (0..100)
            .map(|number| event(&format!("evt_{number}"), Some("{}")))
            .collect();
        let numbered: Vec<(u64, &NewEvent)> = events
            .iter()
            .enumerate()
            .map(|(index, event)| (index as u64, event))
            .collect();
        let bytes = encode("order", 0, &numbered);
        let raw: usize = events.iter().map(NewEvent::size).sum();
        assert!(bytes.len() < raw, "{} bytes for {raw} raw", bytes.len());
    }
}
