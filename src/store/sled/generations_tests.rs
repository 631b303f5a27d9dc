//! Compaction into a fresh generation: it keeps every entry, and whatever an interrupted
//! compaction left behind is finished or discarded at the next open.

use std::path::Path;
use std::time::Duration;

use super::{FLOOR_BYTES, POINTER, POINTER_TEMPORARY, current_generation, worth_compacting};
use crate::event::Status;
use crate::store::EventStore;
use crate::store::sled::tests::{Scratch, reopen, three_hundred_events_a_hundred_delivered};
use crate::store::suite::T0;

#[test]
fn only_large_and_mostly_empty_files_are_worth_compacting() {
    let big = FLOOR_BYTES + 1;
    assert!(worth_compacting(big, big / 5));
    assert!(!worth_compacting(big, big / 3));
    // Below the floor a fresh database would be hardly smaller.
    assert!(!worth_compacting(FLOOR_BYTES, 0));
}

/// A store of 300 events, 100 of them delivered.
async fn store_with_events(path: &Path) {
    let store = reopen(path);
    three_hundred_events_a_hundred_delivered(&store).await;
    store.flush().await.unwrap();
}

/// Makes sled's files at `directory` large and mostly empty: what a drained backlog leaves.
/// Every tenth value stays, spread over the file, because sled does shorten its file when
/// the segments at its end fall empty.
fn bloat(directory: &Path) {
    let db = open_raw(directory);
    let junk = vec![7u8; 10 * 1024];
    let values = 2 * FLOOR_BYTES as u32 / 10_000;
    for index in 0..values {
        db.insert(index.to_be_bytes(), junk.as_slice()).unwrap();
    }
    db.flush().unwrap();
    for index in (0..values).filter(|index| index % 10 != 0) {
        db.remove(index.to_be_bytes()).unwrap();
    }
    db.flush().unwrap();
    let on_disk = db.size_on_disk().unwrap();
    assert!(on_disk > FLOOR_BYTES, "{on_disk} bytes");
}

/// sled at `directory`, waiting out the lock of a handle this process just dropped.
fn open_raw(directory: &Path) -> sled::Db {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match sled::open(directory) {
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            opened => return opened.expect("open sled"),
        }
    }
}

async fn assert_events_intact(path: &Path) {
    let store = reopen(path);
    let counts = store.counts().await.unwrap();
    assert_eq!(counts["hook"][&Status::Delivered], 100);
    assert_eq!(counts["hook"][&Status::Pending], 200);
    let due = store.claim_due("hook", T0, 1_000).await.unwrap().events;
    assert_eq!(due.len(), 200);
    assert_eq!(due[0].id, "evt_0100");
    let delivered = store.event("evt_0000").await.unwrap().expect("evt_0000");
    assert_eq!(delivered.attempts.len(), 1);
}

#[tokio::test]
async fn a_bloated_store_is_compacted_at_open_and_keeps_everything() {
    let scratch = Scratch::new("compact");
    store_with_events(&scratch.0).await;
    bloat(&scratch.0);
    let before = open_raw(&scratch.0).size_on_disk().unwrap();
    {
        let store = reopen(&scratch.0);
        let after = store.size_on_disk().await.unwrap().unwrap();
        assert!(after * 2 < before, "{after} bytes after, {before} before");
    }
    assert_eq!(current_generation(&scratch.0).unwrap(), 1);
    assert!(!scratch.0.join("conf").exists(), "generation 0 is deleted");
    assert!(
        scratch.0.join("db").is_dir(),
        "a directory guards its place"
    );
    let old_binary = sled::open(&scratch.0);
    assert!(old_binary.is_err(), "sled refuses the guarded directory");
    assert!(scratch.0.join("values").exists(), "the value log stays");
    assert_events_intact(&scratch.0).await;

    // And again, from generation 1 to 2.
    bloat(&scratch.0.join("sled-1"));
    drop(reopen(&scratch.0));
    assert_eq!(current_generation(&scratch.0).unwrap(), 2);
    assert!(!scratch.0.join("sled-1").exists());
    assert_events_intact(&scratch.0).await;
}

#[tokio::test]
async fn a_half_written_generation_is_discarded_at_open() {
    let scratch = Scratch::new("half-written");
    store_with_events(&scratch.0).await;
    // A crash while copying: a new generation exists, the pointer still names the old.
    {
        let half = open_raw(&scratch.0.join("sled-1"));
        half.insert(b"partial", b"copy").unwrap();
        half.flush().unwrap();
    }
    std::fs::write(scratch.0.join(POINTER_TEMPORARY), "1").unwrap();
    assert_events_intact(&scratch.0).await;
    assert_eq!(current_generation(&scratch.0).unwrap(), 0);
    assert!(!scratch.0.join("sled-1").exists());
    assert!(!scratch.0.join(POINTER_TEMPORARY).exists());
}

/// A store of events compacted once, into generation 1.
async fn compacted_store(name: &str) -> Scratch {
    let scratch = Scratch::new(name);
    store_with_events(&scratch.0).await;
    bloat(&scratch.0);
    drop(reopen(&scratch.0));
    assert_eq!(current_generation(&scratch.0).unwrap(), 1);
    scratch
}

#[tokio::test]
async fn an_old_generation_left_by_a_crash_after_the_switch_is_deleted() {
    let scratch = compacted_store("after-switch").await;
    // A crash after the pointer was written and before generation 0 was deleted (and
    // so before its guard took the database file's place).
    std::fs::remove_dir_all(scratch.0.join("db")).unwrap();
    std::fs::write(scratch.0.join("db"), "old generation").unwrap();
    std::fs::write(scratch.0.join("conf"), "old generation").unwrap();
    std::fs::write(scratch.0.join("snap.000000000000"), "old generation").unwrap();
    assert_events_intact(&scratch.0).await;
    for name in ["conf", "snap.000000000000"] {
        assert!(!scratch.0.join(name).exists(), "{name} is deleted");
    }
    assert!(
        scratch.0.join("db").is_dir(),
        "the old database file is replaced by the guard"
    );
    assert!(scratch.0.join(POINTER).exists());
}

#[tokio::test]
async fn a_missing_current_generation_is_reported_not_replaced_by_an_empty_one() {
    let scratch = compacted_store("missing-generation").await;
    std::fs::remove_dir_all(scratch.0.join("sled-1")).unwrap();
    let error = super::super::SledStore::open(&scratch.0).unwrap_err();
    assert!(error.to_string().contains("generation 1"), "{error}");
    assert!(scratch.0.join("values").exists());
}
