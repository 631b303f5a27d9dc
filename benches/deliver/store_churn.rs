//! The sled store's size under churn, driven through `EventStore` directly: no
//! PostgreSQL, no HTTP, so the figures are the store's own disk behaviour. Each round
//! appends 100,000 events (two webhooks, request bodies of 200 bytes to 2.5 kB, in batches
//! of 5,000 as ingest makes them), claims them as delivery does and records a delivered
//! attempt for each (1,024 records at a time), then prunes as the service does with a
//! retention of one round: the previous round's events go, this round's stay. After the
//! last round one more prune with everything old shows what an empty store keeps, and
//! opening it again what a restart gives back.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rowhook::config::StoreConfig;
use rowhook::event::{Attempt, Content, Lane, NewEvent, Request};
use rowhook::store::{EventStore, FinishedAttempt, NewEvents, StoreError};

const EVENTS_PER_ROUND: u64 = 100_000;
const ROUNDS: u64 = 10;
const WEBHOOKS: [&str; 2] = ["orders", "audit"];
/// As ingest batches changes, and as delivery claims and records them.
const APPEND_BATCH: u64 = 5_000;
const CLAIM_BATCH: usize = 64;
const RECORD_BATCH: usize = 1_024;
/// The clock: a round takes this long, so retention of one round prunes the previous one.
const START_MS: u64 = 1_700_000_000_000;
const ROUND_MS: u64 = 3_600_000;

/// The store's files after a round.
#[derive(Clone, Copy, Default)]
pub(crate) struct Sizes {
    pub(crate) sled_bytes: u64,
    pub(crate) value_log_bytes: u64,
}

impl Sizes {
    pub(crate) fn total(&self) -> u64 {
        self.sled_bytes + self.value_log_bytes
    }
}

pub(crate) struct Round {
    /// 1 to `ROUNDS`; 0 for the prune with everything old; `u64::MAX` for the store
    /// opened again after it.
    pub(crate) number: u64,
    pub(crate) sizes: Sizes,
    pub(crate) live_events: u64,
    pub(crate) elapsed: Duration,
}

/// Rounds of events appended, delivered and pruned; `ROWHOOK_BENCH_CHURN_ROUNDS` and
/// `ROWHOOK_BENCH_CHURN_EVENTS` shorten a run.
pub(crate) async fn store_churn() -> Vec<Round> {
    let rounds = number_from("ROWHOOK_BENCH_CHURN_ROUNDS", ROUNDS);
    let per_round = number_from("ROWHOOK_BENCH_CHURN_EVENTS", EVENTS_PER_ROUND);
    let directory = scratch_directory();
    let store = open(&directory).await;
    let mut results = Vec::new();
    for round in 0..rounds {
        let started = Instant::now();
        let round_start = START_MS + round * ROUND_MS;
        for first in (0..per_round).step_by(APPEND_BATCH as usize) {
            let count = APPEND_BATCH.min(per_round - first);
            let events = (first..first + count)
                .map(|index| new_event(round * per_round + index, round_start))
                .collect();
            let batch = NewEvents {
                events,
                ..NewEvents::default()
            };
            store.append(batch).await.expect("append");
        }
        deliver_everything(store.as_ref(), round_start + ROUND_MS / 2).await;
        // Retention of one round, as `service::prune` computes the cutoff from its clock.
        store.prune(round_start).await.expect("prune");
        store.flush().await.expect("flush");
        let round = Round {
            number: round + 1,
            sizes: sizes_of(&directory),
            live_events: live_events(store.as_ref()).await,
            elapsed: started.elapsed(),
        };
        print_round(&round);
        results.push(round);
    }
    let started = Instant::now();
    store.prune(u64::MAX).await.expect("prune");
    store.flush().await.expect("flush");
    let emptied = Round {
        number: 0,
        sizes: sizes_of(&directory),
        live_events: live_events(store.as_ref()).await,
        elapsed: started.elapsed(),
    };
    print_round(&emptied);
    results.push(emptied);
    // A restart: sled's files are compacted at open when they are worth it.
    drop(store);
    let started = Instant::now();
    let store = open(&directory).await;
    let reopened = Round {
        number: u64::MAX,
        sizes: sizes_of(&directory),
        live_events: live_events(store.as_ref()).await,
        elapsed: started.elapsed(),
    };
    print_round(&reopened);
    results.push(reopened);
    drop(store);
    let _ = std::fs::remove_dir_all(&directory);
    results
}

/// Opens the sled store at `directory`, waiting out the lock of one this process has just
/// closed: sled's flusher lets go of it a moment later.
async fn open(directory: &Path) -> Arc<dyn EventStore> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match rowhook::store::open(&StoreConfig::sled(directory.to_path_buf())).await {
            Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            opened => return opened.expect("open the sled store"),
        }
    }
}

fn number_from(variable: &str, default: u64) -> u64 {
    std::env::var(variable)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Under the benchmark cluster's directory when the script runs it, so that its cleanup
/// finds anything left behind; else in cargo's scratch space for benchmarks.
fn scratch_directory() -> PathBuf {
    let base = std::env::var("ROWHOOK_TEST_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    let directory = base.join("store-churn");
    let _ = std::fs::remove_dir_all(&directory);
    directory
}

/// Event `number`, captured in the round that starts at `round_start`: an order row's
/// envelope as the body, padded to a size between 200 bytes and 2.5 kB, small ones
/// more often (a cheap deterministic spread, not a random generator).
fn new_event(number: u64, round_start: u64) -> NewEvent {
    let webhook = WEBHOOKS[(number % WEBHOOKS.len() as u64) as usize];
    let id = format!("evt_{number:012}");
    let spread = (number.wrapping_mul(2_654_435_761) % 1_000) as usize;
    let padding = spread * spread * 2_300 / 1_000_000;
    let body = format!(
        r#"{{"id":"{id}","type":"order.created","timestamp":"2026-12-01T20:00:00Z","data":{{"id":{number},"sku":"SKU-{sku}","quantity":{quantity},"price":"{number}.99","paid":true,"notes":"{notes}"}}}}"#,
        sku = number % 9_973,
        quantity = number % 17 + 1,
        notes = "n".repeat(padding),
    );
    NewEvent {
        id,
        webhook: webhook.to_string(),
        model: "order".into(),
        kind: "order.created".into(),
        created_at_ms: round_start + number % 1_000,
        first_attempt_at_ms: round_start + number % 1_000,
        content: Content::Rendered {
            request: Request {
                method: "POST".into(),
                url: format!("https://hooks.example.com/{webhook}"),
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("user-agent".into(), "rowhook".into()),
                ],
                body: Some(body),
            },
            envelope: None,
        },
        lane: Lane::Live,
        row_key: Some(number.to_string()),
        ordered: false,
    }
}

/// Claims every due event, a lane's worth at a time, and records a delivered attempt for
/// each, in batches as delivery hands them over.
async fn deliver_everything(store: &dyn EventStore, now_ms: u64) {
    let retry: Arc<[Duration]> = Arc::from(vec![Duration::ZERO]);
    for webhook in WEBHOOKS {
        let mut finished = Vec::new();
        loop {
            let due = store
                .claim_due(webhook, now_ms, CLAIM_BATCH)
                .await
                .expect("claim");
            if due.events.is_empty() {
                break;
            }
            for event in due.events {
                finished.push(FinishedAttempt {
                    webhook: event.webhook,
                    claim: event.claim,
                    attempt: Attempt {
                        number: event.attempts + 1,
                        started_at_ms: now_ms,
                        duration_ms: 12,
                        status_code: Some(200),
                        error_kind: None,
                        error: None,
                        response_body: r#"{"received":true}"#.into(),
                    },
                    retry: retry.clone(),
                    finished_at_ms: now_ms,
                });
            }
            if finished.len() >= RECORD_BATCH {
                store
                    .record_attempts(std::mem::take(&mut finished))
                    .await
                    .expect("record attempts");
            }
        }
        if !finished.is_empty() {
            store
                .record_attempts(finished)
                .await
                .expect("record attempts");
        }
    }
}

async fn live_events(store: &dyn EventStore) -> u64 {
    let counts = store.counts().await.expect("counts");
    counts
        .values()
        .flat_map(|by_status| by_status.values())
        .sum()
}

/// Bytes the files take on disk (allocated blocks, as `du` counts them): the value log's
/// segments under `values/`, and everything else, which is sled's.
fn sizes_of(directory: &Path) -> Sizes {
    let value_log = directory.join("values");
    let mut sizes = Sizes::default();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(path) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            if metadata.is_dir() {
                pending.push(entry.path());
                continue;
            }
            let bytes = std::os::unix::fs::MetadataExt::blocks(&metadata) * 512;
            if entry.path().starts_with(&value_log) {
                sizes.value_log_bytes += bytes;
            } else {
                sizes.sled_bytes += bytes;
            }
        }
    }
    sizes
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl Round {
    fn name(&self) -> String {
        match self.number {
            0 => "all pruned".to_string(),
            u64::MAX => "reopened".to_string(),
            number => number.to_string(),
        }
    }

    /// Sled, value log and total MiB, each with one decimal.
    fn mebibytes(&self) -> [String; 3] {
        [
            self.sizes.sled_bytes,
            self.sizes.value_log_bytes,
            self.sizes.total(),
        ]
        .map(|bytes| format!("{:.1}", mib(bytes)))
    }
}

fn print_round(round: &Round) {
    let [sled, value_log, total] = round.mebibytes();
    eprintln!(
        "store churn, round {}: sled {sled} MiB, value log {value_log} MiB, total {total} MiB, {} live events, {:.1} s",
        round.name(),
        round.live_events,
        round.elapsed.as_secs_f64()
    );
}

pub(crate) fn print_table(rounds: &[Round]) {
    println!();
    println!(
        "store churn (release build; the sled store driven through EventStore directly, no \
         PostgreSQL; retention of one round; sizes as allocated on disk)"
    );
    println!("| round | sled MiB | value log MiB | total MiB | live events | seconds |");
    println!("|---|---|---|---|---|---|");
    for round in rounds {
        let [sled, value_log, total] = round.mebibytes();
        println!(
            "| {} | {sled} | {value_log} | {total} | {} | {:.1} |",
            round.name(),
            round.live_events,
            round.elapsed.as_secs_f64()
        );
    }
}
