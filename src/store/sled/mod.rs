//! The embedded backend: sled, one process, built for the hot path.
//!
//! - An append writes each webhook's new events as one *chunk* value (a few writes for
//!   a flush of thousands of events), one *span* entry of the id index per chunk group,
//!   the next sequence number and the capture checkpoint — all in one atomic batch, then
//!   flushes. Appends are idempotent through the id index (`ranges`).
//! - Attempt 1 needs no due entry: events of a webhook become due in the order they were
//!   stored, so a per-webhook *frontier* walks the chunks. Retries and redeliveries get
//!   a due entry. Claiming never scans delivered events.
//! - An event's state (status, schedule, every attempt) lives in the *state page* of its
//!   chunk; recording a batch of attempts rewrites a few pages. Attempts are not flushed
//!   one by one.
//! - Large chunks and pages live in the value log beside sled (`value_log`), which sled
//!   would otherwise copy again and again as it cleans its own log.
//! - Counts by status are kept in memory, recomputed when the store opens.

mod append;
mod chunk;
mod claim;
mod codec;
mod generations;
mod inbound;
mod interface;
mod jobs;
mod keys;
mod lanes;
mod pages;
mod prune;
mod ranges;
mod read;
mod row_index;
mod rows;
mod state;
mod value_log;
mod values;

#[cfg(test)]
pub(super) mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use sled::{Db, Tree};

use crate::change::Lsn;
use crate::event::Status;
use crate::rate::TokenBucket;
use crate::store::{Counts, StoreError, Wakeups};
use chunk::Chunk;
use pages::StatePage;
use state::EventState;
use value_log::ValueLog;

/// sled caches up to 1 GiB by default; the working set here is the chunks near each
/// webhook's frontier and recent states, so a small cache keeps memory flat.
const CACHE_BYTES: u64 = 8 * 1024 * 1024;
/// The tree everything lives in. Stores of rowhook 0.1 kept other trees, in JSON.
const TREE: &str = "events-2";
const FIRST_FORMAT_TREES: [&str; 2] = ["events", "requests"];

pub(super) struct SledStore {
    db: Db,
    tree: Tree,
    value_log: ValueLog,
    path: PathBuf,
    /// Appends run one at a time: deduplication reads what earlier appends wrote.
    appending: Mutex<()>,
    inner: Mutex<Inner>,
    wakeups: Wakeups,
    /// Each rate-limited webhook's bucket: one process, so memory is the place.
    rates: Mutex<HashMap<String, TokenBucket>>,
    /// Keeps other processes out of the directory, across sled generations.
    _lock: File,
}

/// What the store keeps in memory beside sled.
#[derive(Default)]
struct Inner {
    counts: BTreeMap<String, Counts>,
    queues: HashMap<String, Queue>,
    next_sequence: u64,
    checkpoint: Option<Lsn>,
    /// Webhooks whose delivery is paused.
    paused: BTreeSet<String>,
    /// The next inbound log entry's sequence.
    next_inbound: u64,
}

/// A webhook's claim state.
#[derive(Default)]
struct Queue {
    /// The first sequence the first-attempt walk has not passed.
    frontier: u64,
    /// What the store says the frontier is: it never passes an unrecorded claim.
    durable_frontier: u64,
    /// Claimed and not yet recorded.
    claimed: HashSet<u64>,
    /// First attempts among them, which hold the durable frontier back.
    first_claims: BTreeSet<u64>,
    /// The chunk at the frontier, parsed once.
    chunk: Option<Chunk>,
    /// Under `ordering = "row"`: which events wait for an earlier one of their row.
    lines: rows::Lines,
}

impl Inner {
    fn queue(&mut self, webhook: &str) -> &mut Queue {
        self.queues.entry(webhook.to_string()).or_default()
    }

    fn count(&mut self, webhook: &str, status: Status, delta: i64) {
        let count = self
            .counts
            .entry(webhook.to_string())
            .or_default()
            .entry(status)
            .or_default();
        *count = count.saturating_add_signed(delta);
    }

    fn moved(&mut self, webhook: &str, from: Status, to: Status) {
        if from != to {
            self.count(webhook, from, -1);
            self.count(webhook, to, 1);
        }
    }
}

fn backend(doing: &'static str) -> impl Fn(sled::Error) -> StoreError {
    move |error| StoreError::backend(doing, error)
}

impl SledStore {
    /// Opens (or creates) the store at `path`. Fails with [`StoreError::Locked`] when
    /// another process holds it.
    pub(super) fn open(path: &Path) -> Result<SledStore, StoreError> {
        let generations::Opened { db, lock } = generations::open(
            path,
            |directory| {
                sled::Config::new()
                    .path(directory)
                    .cache_capacity(CACHE_BYTES)
            },
            |error| open_error(path, error),
        )?;
        for name in FIRST_FORMAT_TREES {
            let old = db.open_tree(name).map_err(backend("opening the store"))?;
            if !old.is_empty() {
                return Err(StoreError::corrupt(
                    format!("store at {}", path.display()),
                    "it was written by rowhook 0.1, whose format this version does not read; \
                     let that version deliver what is pending, then move the directory away",
                ));
            }
        }
        let tree = db.open_tree(TREE).map_err(backend("opening the store"))?;
        let store = SledStore {
            db,
            tree,
            value_log: ValueLog::open(&path.join("values"))?,
            path: path.to_path_buf(),
            appending: Mutex::new(()),
            inner: Mutex::new(Inner::default()),
            wakeups: Wakeups::default(),
            rates: Mutex::default(),
            _lock: lock,
        };
        let inner = store.recover()?;
        *store.lock() = inner;
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // What the lock guards is kept consistent between statements; a panic elsewhere
        // leaves nothing half-written.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn webhooks(&self) -> Result<Vec<String>, StoreError> {
        self.tree
            .scan_prefix([keys::WEBHOOK])
            .keys()
            .map(|key| {
                let key = key.map_err(backend("listing webhooks"))?;
                keys::webhook_name(&key)
                    .ok_or_else(|| StoreError::corrupt("webhook list", "unreadable key"))
            })
            .collect()
    }

    fn chunk_at(&self, webhook: &str, key: &[u8], value: sled::IVec) -> Result<Chunk, StoreError> {
        let [first] = keys::numbers::<1>(key, keys::CHUNK, webhook).ok_or_else(|| {
            StoreError::corrupt(format!("events of {webhook:?}"), "unreadable key")
        })?;
        let bytes = self.resolve(key, &value)?;
        Chunk::parse(first, bytes).map_err(|_| {
            StoreError::corrupt(
                format!("events of {webhook:?} from {first}"),
                "truncated chunk",
            )
        })
    }

    /// The chunk whose first sequence is `first`, unless it was pruned.
    fn load_chunk(&self, webhook: &str, first: u64) -> Result<Option<Chunk>, StoreError> {
        let key = keys::chunk(webhook, first);
        match self.tree.get(&key).map_err(backend("reading events"))? {
            Some(value) => self.chunk_at(webhook, &key, value).map(Some),
            None => Ok(None),
        }
    }

    /// The chunk that would hold `sequence`: the last one starting at or before it.
    fn chunk_holding(&self, webhook: &str, sequence: u64) -> Result<Option<Chunk>, StoreError> {
        let start = keys::prefix(keys::CHUNK, webhook);
        match self
            .tree
            .range(start..=keys::chunk(webhook, sequence))
            .next_back()
        {
            Some(entry) => {
                let (key, value) = entry.map_err(backend("reading events"))?;
                self.chunk_at(webhook, &key, value).map(Some)
            }
            None => Ok(None),
        }
    }

    /// The state page of the chunk starting at `first`, and its index value (empty
    /// when no event of the chunk has a state yet). A page whose value cannot be read —
    /// an unsynced version lost in a crash — reads as empty: those events are attempted
    /// again.
    fn page(
        &self,
        webhook: &str,
        first: u64,
    ) -> Result<(StatePage, Option<sled::IVec>), StoreError> {
        let key = keys::state(webhook, first);
        let Some(value) = self
            .tree
            .get(&key)
            .map_err(backend("reading event states"))?
        else {
            return Ok((StatePage::default(), None));
        };
        let page = match self.resolve(&key, &value) {
            Ok(bytes) => StatePage::decode(first, &bytes).ok(),
            Err(_) => None,
        };
        match page {
            Some(page) => Ok((page, Some(value))),
            None => {
                tracing::warn!(
                    webhook,
                    chunk = first,
                    "an event state page is unreadable; its events will be attempted again"
                );
                Ok((StatePage::default(), Some(value)))
            }
        }
    }

    /// The state of event `sequence` in the chunk starting at `first`.
    fn state(
        &self,
        webhook: &str,
        first: u64,
        sequence: u64,
    ) -> Result<Option<EventState>, StoreError> {
        Ok(self.page(webhook, first)?.0.get(sequence).cloned())
    }

    /// Rebuilds what is kept in memory: counts, sequence, frontiers, checkpoint.
    fn recover(&self) -> Result<Inner, StoreError> {
        let mut inner = Inner::default();
        let meta = |key: &[u8]| -> Result<Option<u64>, StoreError> {
            Ok(self
                .tree
                .get(key)
                .map_err(backend("reading the store's metadata"))?
                .and_then(|value| keys::decode_u64(&value)))
        };
        inner.next_sequence = meta(keys::NEXT_SEQUENCE)?.unwrap_or(0);
        for key in self.tree.scan_prefix([keys::PAUSED]).keys() {
            let key = key.map_err(backend("reading paused webhooks"))?;
            if let Some(webhook) = keys::paused_name(&key) {
                inner.paused.insert(webhook);
            }
        }
        inner.checkpoint = meta(keys::CHECKPOINT)?.map(Lsn);
        for webhook in self.webhooks()? {
            let counts = inner.counts.entry(webhook.clone()).or_default();
            for entry in self.tree.scan_prefix(keys::prefix(keys::CHUNK, &webhook)) {
                let (key, value) = entry.map_err(backend("counting events"))?;
                if let Some(location) = values::location_of(&value) {
                    self.value_log.account(location, true);
                }
                let chunk = self.chunk_at(&webhook, &key, value)?;
                let unrendered = chunk.unrendered();
                *counts.entry(Status::Pending).or_default() += chunk.len() as u64 - unrendered;
                *counts.entry(Status::Failed).or_default() += unrendered;
                let after_last = chunk.last_sequence().map_err(|_| {
                    StoreError::corrupt(format!("events of {webhook:?}"), "truncated chunk")
                })? + 1;
                inner.next_sequence = inner.next_sequence.max(after_last);
            }
            for entry in self.tree.scan_prefix(keys::prefix(keys::STATE, &webhook)) {
                let (key, value) = entry.map_err(backend("counting events"))?;
                if let Some(location) = values::location_of(&value) {
                    self.value_log.account(location, true);
                }
                let Some([first]) = keys::numbers::<1>(&key, keys::STATE, &webhook) else {
                    continue;
                };
                let (page, _) = self.page(&webhook, first)?;
                for state in page.states() {
                    let pending = counts.entry(Status::Pending).or_default();
                    *pending = pending.saturating_sub(1);
                    *counts.entry(state.status).or_default() += 1;
                }
            }
            let frontier = meta(&keys::frontier(&webhook))?.unwrap_or(0);
            let queue = inner.queue(&webhook);
            queue.frontier = frontier;
            queue.durable_frontier = frontier;
        }
        self.recover_lines(&mut inner)?;
        inner.next_inbound = self.next_inbound_sequence()?;
        Ok(inner)
    }

    async fn flush_now(&self) -> Result<(), StoreError> {
        self.db
            .flush_async()
            .await
            .map_err(backend("flushing the store"))?;
        Ok(())
    }
}

/// sled reports another process's lock as an I/O error whose text says so and carries
/// the `WouldBlock` of the failed `flock`.
fn open_error(path: &Path, error: sled::Error) -> StoreError {
    let locked = match &error {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::WouldBlock
                || io.to_string().contains("could not acquire lock")
                || io.to_string().contains("WouldBlock")
        }
        _ => false,
    };
    if locked {
        StoreError::Locked {
            path: path.display().to_string(),
        }
    } else {
        StoreError::backend(
            format!("cannot open the store at {}", path.display()),
            error,
        )
    }
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SledStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}
