//! The id index: which chunks hold the events whose ids lie in a span. Written once per
//! append and webhook rather than once per event, it answers "is this id stored?" for
//! idempotent appends and "where is this event?" for the history.
//!
//! The spans of one webhook never overlap. An append places each new id either inside an
//! existing span (which then also lists the append's chunks) or in a gap between spans,
//! where the ids of one gap form a new span. Ids nearly always grow (commit LSNs,
//! transaction ids), so an append usually adds one span after all the others and reads
//! nothing but the last one.

use std::collections::{HashMap, HashSet};

use sled::Tree;

use super::chunk::Chunk;
use super::codec::{Reader, Truncated, Writer};
use super::keys;
use crate::store::StoreError;

/// A span of ids and the chunks that may hold them (newest last).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) lowest: String,
    pub(super) highest: String,
    pub(super) chunks: Vec<u64>,
}

impl Span {
    fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::with_capacity(self.highest.len() + 8 * self.chunks.len() + 4);
        writer.text(&self.highest);
        writer.varint(self.chunks.len() as u64);
        for chunk in &self.chunks {
            writer.varint(*chunk);
        }
        writer.bytes
    }

    fn decode(lowest: &str, bytes: &[u8]) -> Result<Span, Truncated> {
        let mut reader = Reader::new(bytes);
        let highest = reader.text()?.to_string();
        let count = reader.length()?;
        let chunks = (0..count)
            .map(|_| reader.varint())
            .collect::<Result<_, _>>()?;
        Ok(Span {
            lowest: lowest.to_string(),
            highest,
            chunks,
        })
    }

    fn contains(&self, id: &str) -> bool {
        self.lowest.as_str() <= id && id <= self.highest.as_str()
    }

    pub(super) fn key(&self, webhook: &str) -> Vec<u8> {
        keys::range(webhook, &self.lowest)
    }

    pub(super) fn value(&self) -> Vec<u8> {
        self.encode()
    }
}

fn corrupt(webhook: &str) -> impl Fn(Truncated) -> StoreError + '_ {
    move |_| {
        StoreError::corrupt(
            format!("id index of webhook {webhook:?}"),
            "truncated entry",
        )
    }
}

fn read(webhook: &str, entry: sled::Result<(sled::IVec, sled::IVec)>) -> Result<Span, StoreError> {
    let (key, value) = entry.map_err(|error| StoreError::backend("reading the id index", error))?;
    let lowest = keys::range_lowest_id(&key, webhook).ok_or_else(|| {
        StoreError::corrupt(format!("id index of webhook {webhook:?}"), "unreadable key")
    })?;
    Span::decode(lowest, &value).map_err(corrupt(webhook))
}

/// The span holding `id`, if one does.
pub(super) fn containing(tree: &Tree, webhook: &str, id: &str) -> Result<Option<Span>, StoreError> {
    let start = keys::prefix(keys::RANGE, webhook);
    match tree.range(start..=keys::range(webhook, id)).next_back() {
        Some(entry) => {
            let span = read(webhook, entry)?;
            Ok(span.contains(id).then_some(span))
        }
        None => Ok(None),
    }
}

/// The lowest id of the first span above `id`.
fn next_lowest(tree: &Tree, webhook: &str, id: &str) -> Result<Option<String>, StoreError> {
    let prefix = keys::prefix(keys::RANGE, webhook);
    let from = keys::range(webhook, id);
    let next = tree
        .range((std::ops::Bound::Excluded(from), std::ops::Bound::Unbounded))
        .next();
    let Some(entry) = next else {
        return Ok(None);
    };
    let (key, _) = entry.map_err(|error| StoreError::backend("reading the id index", error))?;
    if !key.starts_with(&prefix) {
        return Ok(None);
    }
    Ok(keys::range_lowest_id(&key, webhook).map(str::to_string))
}

fn highest_span(tree: &Tree, webhook: &str) -> Result<Option<Span>, StoreError> {
    match tree
        .scan_prefix(keys::prefix(keys::RANGE, webhook))
        .next_back()
    {
        Some(entry) => read(webhook, entry).map(Some),
        None => Ok(None),
    }
}

/// Where the new ids of one append go.
#[derive(Debug, Default)]
pub(super) struct Placement {
    /// Existing spans that gain ids.
    joined: Vec<Span>,
    /// New spans, each the ids of one gap (lowest, highest).
    gaps: Vec<(String, String)>,
}

impl Placement {
    /// The span entries to write once the append's chunks are known.
    pub(super) fn spans(self, chunks: &[u64]) -> Vec<Span> {
        let mut spans = Vec::with_capacity(self.joined.len() + self.gaps.len());
        for mut span in self.joined {
            for chunk in chunks {
                if !span.chunks.contains(chunk) {
                    span.chunks.push(*chunk);
                }
            }
            spans.push(span);
        }
        for (lowest, highest) in self.gaps {
            spans.push(Span {
                lowest,
                highest,
                chunks: chunks.to_vec(),
            });
        }
        spans
    }
}

/// Every id in the chunks `span` names.
fn ids_held(
    webhook: &str,
    span: &Span,
    load: &impl Fn(u64) -> Result<Option<Chunk>, StoreError>,
) -> Result<HashSet<String>, StoreError> {
    let mut held = HashSet::new();
    for chunk in &span.chunks {
        if let Some(chunk) = load(*chunk)? {
            for index in 0..chunk.len() {
                let (_, id) = chunk.head(index).map_err(corrupt(webhook))?;
                held.insert(id.to_string());
            }
        }
    }
    Ok(held)
}

/// Decides which of `ids` (ascending, distinct) are stored already and where the others
/// go. `load` reads a chunk by its first sequence (`None` once pruned).
pub(super) fn place(
    tree: &Tree,
    webhook: &str,
    ids: &[&str],
    load: impl Fn(u64) -> Result<Option<Chunk>, StoreError>,
) -> Result<(HashSet<String>, Placement), StoreError> {
    let mut stored = HashSet::new();
    let mut placement = Placement::default();
    let Some(first) = ids.first() else {
        return Ok((stored, placement));
    };
    let highest = highest_span(tree, webhook)?;
    // Everything above the highest span goes into one new span, read-free.
    let split = match &highest {
        Some(span) if span.highest.as_str() >= *first => {
            ids.partition_point(|id| *id <= span.highest.as_str())
        }
        _ => 0,
    };
    let (older, newer) = ids.split_at(split);
    if let (Some(lowest), Some(highest)) = (newer.first(), newer.last()) {
        placement
            .gaps
            .push((lowest.to_string(), highest.to_string()));
    }

    // Ids among existing spans: rare (a replay, or rows that committed late).
    let mut held_by_span: HashMap<String, HashSet<String>> = HashMap::new();
    let mut current_span: Option<Span> = None;
    let mut current_gap: Option<(Option<String>, String, String)> = None;
    for id in older {
        if current_span.as_ref().is_none_or(|span| !span.contains(id)) {
            current_span = containing(tree, webhook, id)?;
        }
        if let Some(span) = &current_span {
            if !held_by_span.contains_key(&span.lowest) {
                let held = ids_held(webhook, span, &load)?;
                held_by_span.insert(span.lowest.clone(), held);
            }
            if held_by_span[&span.lowest].contains(*id) {
                stored.insert(id.to_string());
            } else if !placement
                .joined
                .iter()
                .any(|joined| joined.lowest == span.lowest)
            {
                placement.joined.push(span.clone());
            }
            continue;
        }
        // In a gap: ids of one gap are consecutive, below the next span's lowest id.
        match &mut current_gap {
            Some((next, _, highest)) if next.as_deref().is_none_or(|next| *id < next) => {
                *highest = id.to_string();
            }
            _ => {
                if let Some((_, lowest, highest)) = current_gap.take() {
                    placement.gaps.push((lowest, highest));
                }
                let next = next_lowest(tree, webhook, id)?;
                current_gap = Some((next, id.to_string(), id.to_string()));
            }
        }
    }
    if let Some((_, lowest, highest)) = current_gap.take() {
        placement.gaps.push((lowest, highest));
    }
    Ok((stored, placement))
}

/// The spans whose chunk lists name `chunk`, whose ids lie between `lowest` and
/// `highest`: for dropping a pruned chunk from the index.
pub(super) fn naming(
    tree: &Tree,
    webhook: &str,
    lowest: &str,
    highest: &str,
    chunk: u64,
) -> Result<Vec<Span>, StoreError> {
    let mut spans = Vec::new();
    if let Some(span) = containing(tree, webhook, lowest)? {
        spans.push(span);
    }
    let prefix = keys::prefix(keys::RANGE, webhook);
    let from = keys::range(webhook, lowest);
    for entry in tree.range((std::ops::Bound::Excluded(from), std::ops::Bound::Unbounded)) {
        let span = match &entry {
            Ok((key, _)) if !key.starts_with(&prefix) => break,
            _ => read(webhook, entry)?,
        };
        if span.lowest.as_str() > highest {
            break;
        }
        spans.push(span);
    }
    spans.retain(|span| span.chunks.contains(&chunk));
    Ok(spans)
}
