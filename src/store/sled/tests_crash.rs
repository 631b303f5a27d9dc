//! `kill -9` of a process writing to the store, at several moments: every batch it
//! reported appended is there whole, counts agree, pending events are claimed once.

use super::*;

/// How many events each batch of the crash writer appends.
const CRASH_BATCH: usize = 200;
const CRASH_DIRECTORY: &str = "ROWHOOK_CRASH_TEST_DIRECTORY";

/// Not a test on its own: the process `kill_9_at_any_moment_loses_nothing` runs and
/// kills. It appends batches (each durable when `append` returns, and only then reported
/// on stdout), attempts some events, redelivers some, without ever flushing the attempts.
#[tokio::test]
#[ignore = "run by kill_9_at_any_moment_loses_nothing"]
async fn crash_writer() {
    let Ok(directory) = std::env::var(CRASH_DIRECTORY) else {
        return;
    };
    let store = SledStore::open(Path::new(&directory)).unwrap();
    let retry = [Duration::ZERO, Duration::ZERO];
    for batch in 0.. {
        let events = (0..CRASH_BATCH)
            .map(|index| {
                event(
                    &crash_id(batch, index),
                    if index % 3 == 0 { "a" } else { "b" },
                )
            })
            .collect();
        append(&store, events).await;
        println!("appended {batch}");
        for webhook in ["a", "b"] {
            let due = store.claim_due(webhook, T0, 150).await.unwrap().events;
            let done = due
                .iter()
                .enumerate()
                .map(|(index, claimed)| {
                    let kind = (index % 4 == 0).then_some(ErrorKind::Status);
                    finished(claimed, kind, &retry, T0 + 1)
                })
                .collect();
            store.record_attempts(done).await.unwrap();
        }
        if batch % 5 == 4 {
            store.redeliver(&crash_id(batch - 2, 3), T0).await.unwrap();
        }
    }
}

fn crash_id(batch: usize, index: usize) -> String {
    format!("evt_{batch:06}{index:04}")
}

/// Kills the crash writer at several moments, each time reopening its store: every
/// batch reported appended is there whole and cannot be appended again, the counts agree
/// with the events listed, and every pending event is claimed exactly once.
#[tokio::test]
async fn kill_9_at_any_moment_loses_nothing() {
    for (round, (batches, pause_micros)) in [(1, 0), (2, 300), (4, 1_500), (7, 50), (11, 4_000)]
        .into_iter()
        .enumerate()
    {
        let scratch = Scratch::new(&format!("crash-{round}"));
        let mut writer = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::sled::tests::crash::crash_writer",
                "--ignored",
                "--nocapture",
            ])
            .env(CRASH_DIRECTORY, &scratch.0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = writer.stdout.take().unwrap();
        let mut appended = 0;
        for line in std::io::BufReader::new(stdout).lines() {
            if line.unwrap().starts_with("appended ") {
                appended += 1;
                if appended == batches {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_micros(pause_micros));
        writer.kill().unwrap();
        writer.wait().unwrap();
        check_after_crash(&scratch.0, appended).await;
    }
}

async fn check_after_crash(directory: &Path, appended: usize) {
    let store = SledStore::open(directory).unwrap();
    let listed = store.list(&EventQuery::default()).await.unwrap();
    let mut ids: Vec<&str> = listed.iter().map(|record| record.id.as_str()).collect();
    ids.sort_unstable();
    let total = ids.len();
    ids.dedup();
    assert_eq!(total, ids.len(), "no event listed twice");
    for batch in 0..appended {
        for index in 0..CRASH_BATCH {
            let id = crash_id(batch, index);
            assert!(
                ids.binary_search(&id.as_str()).is_ok(),
                "{id} of an appended batch is missing"
            );
        }
    }
    let counts = store.counts().await.unwrap();
    for webhook in ["a", "b"] {
        for status in Status::ALL {
            let listed = listed
                .iter()
                .filter(|record| record.webhook == webhook && record.status == status)
                .count() as u64;
            let counted = counts
                .get(webhook)
                .and_then(|counts| counts.get(&status))
                .copied();
            assert_eq!(counted.unwrap_or(0), listed, "{webhook} {status}");
        }
        let pending: Vec<&str> = listed
            .iter()
            .filter(|record| record.webhook == webhook && record.status == Status::Pending)
            .map(|record| record.id.as_str())
            .collect();
        let due = store
            .claim_due(webhook, u64::MAX, 1_000_000)
            .await
            .unwrap()
            .events;
        let mut claimed: Vec<&str> = due.iter().map(|claimed| claimed.id.as_str()).collect();
        claimed.sort_unstable();
        let mut expected = pending.clone();
        expected.sort_unstable();
        assert_eq!(
            claimed, expected,
            "every pending event of {webhook} claimed once"
        );
    }
    for batch in 0..appended {
        let events = (0..CRASH_BATCH)
            .map(|index| {
                event(
                    &crash_id(batch, index),
                    if index % 3 == 0 { "a" } else { "b" },
                )
            })
            .collect();
        assert_eq!(
            suite::append(&store, events).await,
            0,
            "batch {batch} appended again"
        );
    }
}
