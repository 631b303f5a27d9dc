//! The sled backend: the common suite, plus what only an embedded store has — reopening,
//! the lock, the first-attempt frontier across restarts, and `kill -9` at any moment.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use super::SledStore;
use crate::backfill::BackfillJob;
use crate::change::Lsn;
use crate::event::{ErrorKind, Status};
use crate::store::suite::{self, T0, append, event, event_store_suite, finished};
use crate::store::{
    Appended, Counts, DueEvents, EventQuery, EventRecord, EventStore, FinishedAttempt, NewEvents,
    StoreError, StoredEvent, Wakeups,
};

/// A directory of its own under the system's temporary directory, removed on drop.
pub(super) struct Scratch(pub(super) PathBuf);

impl Scratch {
    pub(super) fn new(name: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!(
            "rowhook-sled-{name}-{}-{nanos}",
            std::process::id()
        ));
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Opens the store at `path`, waiting out the lock of one just dropped in this process:
/// sled's background flusher lets go of it a moment after the last handle, and on a
/// loaded machine that moment is longer than a test's next line.
pub(super) fn reopen(path: &Path) -> SledStore {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match SledStore::open(path) {
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            opened => return opened.expect("open the store"),
        }
    }
}

/// A store whose directory goes when it does.
struct TemporaryStore {
    store: SledStore,
    _scratch: Scratch,
}

#[async_trait::async_trait]
impl EventStore for TemporaryStore {
    async fn append(&self, batch: NewEvents) -> Result<Appended, StoreError> {
        self.store.append(batch).await
    }
    async fn resume_position(&self) -> Result<Option<Lsn>, StoreError> {
        self.store.resume_position().await
    }
    async fn claim_due_at_rate(
        &self,
        webhook: &str,
        now: u64,
        limit: usize,
        rate: Option<crate::rate::Rate>,
    ) -> Result<DueEvents, StoreError> {
        self.store
            .claim_due_at_rate(webhook, now, limit, rate)
            .await
    }
    async fn record_attempts(&self, done: Vec<FinishedAttempt>) -> Result<Vec<Status>, StoreError> {
        self.store.record_attempts(done).await
    }
    async fn redeliver(&self, id: &str, now: u64) -> Result<EventRecord, StoreError> {
        self.store.redeliver(id, now).await
    }
    async fn list(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        self.store.list(query).await
    }
    async fn event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError> {
        self.store.event(id).await
    }
    async fn counts(&self) -> Result<BTreeMap<String, Counts>, StoreError> {
        self.store.counts().await
    }
    async fn prune(&self, cutoff: u64) -> Result<u64, StoreError> {
        self.store.prune(cutoff).await
    }
    async fn log_inbound(
        &self,
        records: Vec<crate::inbound::InboundRecord>,
    ) -> Result<(), StoreError> {
        self.store.log_inbound(records).await
    }
    async fn inbound_log(
        &self,
        query: &crate::inbound::InboundQuery,
    ) -> Result<Vec<crate::inbound::InboundRecord>, StoreError> {
        self.store.inbound_log(query).await
    }
    async fn flush(&self) -> Result<(), StoreError> {
        self.store.flush().await
    }
    async fn size_on_disk(&self) -> Result<Option<u64>, StoreError> {
        self.store.size_on_disk().await
    }
    async fn set_paused(&self, webhook: &str, paused: bool) -> Result<(), StoreError> {
        self.store.set_paused(webhook, paused).await
    }
    async fn paused(&self) -> Result<std::collections::BTreeSet<String>, StoreError> {
        self.store.paused().await
    }
    async fn save_backfill(&self, job: &BackfillJob) -> Result<(), StoreError> {
        self.store.save_backfill(job).await
    }
    async fn backfills(&self) -> Result<Vec<BackfillJob>, StoreError> {
        self.store.backfills().await
    }
    fn wakeups(&self) -> &Wakeups {
        self.store.wakeups()
    }
}

/// A fresh store for each check of the suite.
pub(crate) async fn temporary_store() -> Arc<dyn EventStore> {
    let scratch = Scratch::new("suite");
    let store = reopen(&scratch.0);
    Arc::new(TemporaryStore {
        store,
        _scratch: scratch,
    })
}

event_store_suite!(temporary_store());

#[tokio::test]
async fn a_pause_survives_reopening() {
    let scratch = Scratch::new("pause");
    {
        let store = reopen(&scratch.0);
        store.set_paused("hook", true).await.unwrap();
        store.set_paused("other", true).await.unwrap();
        store.set_paused("other", false).await.unwrap();
    }
    let store = reopen(&scratch.0);
    assert_eq!(
        store.paused().await.unwrap(),
        std::collections::BTreeSet::from(["hook".to_string()])
    );
    append(&store, vec![event("evt_1", "hook")]).await;
    assert!(suite::nothing_due(&store, "hook", T0).await);
}

#[tokio::test]
async fn a_row_keeps_its_order_across_reopening() {
    use crate::store::suite_rows::{claim_and_record, two_rows};
    let scratch = Scratch::new("rows");
    {
        let store = reopen(&scratch.0);
        append(&store, two_rows()).await;
        let failed = claim_and_record(&store, "hook", T0, Some(ErrorKind::Status)).await;
        assert_eq!(failed, ["evt_1", "evt_5"]);
        // evt_2 is held; its claim is not made before the restart.
        assert!(
            claim_and_record(&store, "hook", T0 + 1, None)
                .await
                .is_empty()
        );
        store.flush().await.unwrap();
    }
    let store = reopen(&scratch.0);
    assert!(
        claim_and_record(&store, "hook", T0 + 1, None)
            .await
            .is_empty()
    );
    assert_eq!(
        claim_and_record(&store, "hook", T0 + 10_000, None).await,
        ["evt_1", "evt_5"]
    );
    assert_eq!(
        claim_and_record(&store, "hook", T0 + 10_001, None).await,
        ["evt_2"]
    );
    drop(store);
    let store = reopen(&scratch.0);
    assert_eq!(
        claim_and_record(&store, "hook", T0 + 10_002, None).await,
        ["evt_4"]
    );
    assert!(
        claim_and_record(&store, "hook", u64::MAX, None)
            .await
            .is_empty()
    );
}

/// Appends `evt_0000` to `evt_0299` to webhook `hook` and delivers the first 100.
pub(super) async fn three_hundred_events_a_hundred_delivered(store: &SledStore) {
    let events = (0..300)
        .map(|index| event(&format!("evt_{index:04}"), "hook"))
        .collect();
    append(store, events).await;
    let due = store.claim_due("hook", T0, 100).await.unwrap().events;
    let done = due
        .iter()
        .map(|claimed| finished(claimed, None, &[Duration::ZERO], T0 + 1))
        .collect();
    store.record_attempts(done).await.unwrap();
}

#[tokio::test]
async fn everything_survives_reopening() {
    let scratch = Scratch::new("reopen");
    {
        let store = reopen(&scratch.0);
        three_hundred_events_a_hundred_delivered(&store).await;
        store.redeliver("evt_0000", T0 + 2).await.unwrap();
        store.flush().await.unwrap();
    }
    let store = reopen(&scratch.0);
    let counts = store.counts().await.unwrap();
    assert_eq!(counts["hook"][&Status::Delivered], 99);
    assert_eq!(counts["hook"][&Status::Pending], 201);
    // The redelivered event first (its due entry), then attempt 1 of the rest, in order.
    let due = store.claim_due("hook", T0 + 2, 1_000).await.unwrap().events;
    assert_eq!(due.len(), 201);
    assert_eq!(due[0].id, "evt_0000");
    assert_eq!(due[0].attempts, 1);
    assert_eq!(due[1].id, "evt_0100");
    let listed = store.list(&EventQuery::default()).await.unwrap();
    assert_eq!(listed.len(), 300);
    assert_eq!(listed[0].id, "evt_0299");
}

#[tokio::test]
async fn claims_not_recorded_come_back_after_a_restart() {
    let scratch = Scratch::new("frontier");
    {
        let store = reopen(&scratch.0);
        let events = (0..10)
            .map(|index| event(&format!("evt_{index}"), "hook"))
            .collect();
        append(&store, events).await;
        let due = store.claim_due("hook", T0, 10).await.unwrap().events;
        // evt_0..evt_2 and evt_5 recorded; the rest were under way when the process ended.
        let done = [0, 1, 2, 5]
            .iter()
            .map(|index| finished(&due[*index], None, &[Duration::ZERO], T0 + 1))
            .collect();
        store.record_attempts(done).await.unwrap();
        store.flush().await.unwrap();
    }
    let store = reopen(&scratch.0);
    let again = store.claim_due("hook", T0 + 5, 100).await.unwrap().events;
    let ids: Vec<&str> = again.iter().map(|claimed| claimed.id.as_str()).collect();
    assert_eq!(ids, ["evt_3", "evt_4", "evt_6", "evt_7", "evt_8", "evt_9"]);
}

/// Rounds of events delivered and pruned, one event of each round left pending: the
/// value log keeps what is live (moving it out of sparse segments) and gives back the rest.
#[tokio::test]
async fn disk_follows_what_is_live() {
    let scratch = Scratch::new("churn");
    let store = reopen(&scratch.0);
    let body = "x".repeat(2_000);
    let mut largest = 0;
    for round in 0..12u64 {
        let events = (0..200)
            .map(|index| {
                let mut event = event(&format!("evt_{round:03}{index:04}"), "hook");
                if let crate::event::Content::Rendered { request, .. } = &mut event.content {
                    request.body = Some(body.clone());
                }
                event
            })
            .collect();
        append(&store, events).await;
        let due = store.claim_due("hook", T0, 1_000).await.unwrap().events;
        let done = due
            .iter()
            .filter(|claimed| !claimed.id.ends_with("0007"))
            .map(|claimed| finished(claimed, None, &[Duration::ZERO], T0 + 1))
            .collect();
        store.record_attempts(done).await.unwrap();
        store.prune(T0 + 2).await.unwrap();
        largest = largest.max(store.value_log.size());
    }
    // Twelve rounds wrote about 5 MB; what stays is a dozen events and the open segment.
    assert!(largest < 2_000_000, "the value log grew to {largest} bytes");
    for round in 0..12u64 {
        let id = format!("evt_{round:03}0007");
        let kept = store.event(&id).await.unwrap().unwrap();
        assert_eq!(
            kept.request.unwrap().body.as_deref(),
            Some(body.as_str()),
            "{id}"
        );
    }
    let counts = store.counts().await.unwrap();
    assert_eq!(counts["hook"].get(&Status::Pending).copied(), Some(12));
}

/// A segment where one chunk is still pending and everything else was pruned is
/// compacted: the chunk moves, the segment goes, and the chunk reads the same, also after
/// reopening.
#[tokio::test]
async fn sparse_segments_are_compacted() {
    let scratch = Scratch::new("compact");
    let body = "y".repeat(2_000);
    let with_body = |id: String| {
        let mut event = event(&id, "hook");
        if let crate::event::Content::Rendered { request, .. } = &mut event.content {
            request.body = Some(body.clone());
        }
        event
    };
    {
        let store = reopen(&scratch.0);
        append(
            &store,
            (0..600)
                .map(|index| with_body(format!("evt_{index:04}")))
                .collect(),
        )
        .await;
        let before = store.value_log.size();
        let due = store.claim_due("hook", T0, 1_000).await.unwrap().events;
        // The first twenty stay pending: more than half of their chunk, which stays whole.
        let done = due[20..]
            .iter()
            .map(|claimed| finished(claimed, None, &[Duration::ZERO], T0 + 1))
            .collect();
        store.record_attempts(done).await.unwrap();
        store.prune(T0 + 2).await.unwrap();
        let after = store.value_log.size();
        assert!(after * 3 < before, "{before} bytes before, {after} after");
        store.flush().await.unwrap();
    }
    let store = reopen(&scratch.0);
    let pending = store.claim_due("hook", T0, 100).await.unwrap().events;
    let ids: Vec<String> = pending.iter().map(|claimed| claimed.id.clone()).collect();
    let expected: Vec<String> = (0..20).map(|index| format!("evt_{index:04}")).collect();
    assert_eq!(ids, expected);
    assert_eq!(pending[3].request.body.as_deref(), Some(body.as_str()));
}

#[tokio::test]
async fn one_process_at_a_time() {
    let scratch = Scratch::new("lock");
    let _first = SledStore::open(&scratch.0).unwrap();
    match SledStore::open(&scratch.0) {
        Err(StoreError::Locked { path }) => assert_eq!(path, scratch.0.display().to_string()),
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[tokio::test]
async fn a_store_of_the_first_format_is_refused_clearly() {
    let scratch = Scratch::new("format-1");
    {
        let db = sled::open(&scratch.0).unwrap();
        db.open_tree("events")
            .unwrap()
            .insert(b"ehook", b"{}")
            .unwrap();
        db.flush().unwrap();
    }
    let error = SledStore::open(&scratch.0).unwrap_err().to_string();
    assert!(error.contains("rowhook 0.1"), "{error}");
}

#[path = "tests_crash.rs"]
mod crash;
