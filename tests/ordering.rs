//! Per-row ordering (CONTRACT §9) against a real PostgreSQL and a receiver that fails
//! each row's first request: under `ordering = "row"` every row's updates arrive in
//! commit order while rows interleave; under `ordering = "none"` the retry lands after
//! later changes. A `kill -9` in the middle keeps the order. Then a row's history
//! through the CLI, the API and the pages. Both capture modes.

#[macro_use]
mod support;

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use support::receiver::{Received, Receiver, Reply};
use support::{Mode, Service, TestDatabase, admin_get, free_port, rowhook, text};

const ROWS: i64 = 200;
const UPDATES: i64 = 5;
const TOKEN: &str = "ordering-token";
const WAIT: Duration = Duration::from_secs(60);

/// Fails the first request for each (path, row) it sees; answers 200 after that.
fn fail_each_rows_first_request(receiver: &Receiver) {
    let seen: Mutex<HashSet<(String, i64)>> = Mutex::new(HashSet::new());
    receiver.respond_with(move |request: &Received| {
        let row = request.json()["item"]["id"].as_i64().unwrap_or(-1);
        if seen.lock().unwrap().insert((request.target.clone(), row)) {
            Reply::Status(500)
        } else {
            Reply::Status(200)
        }
    });
}

/// For each row, the versions the receiver accepted at `path`, in arrival order (the
/// first request of each row was refused and is left out).
fn accepted_versions(receiver: &Receiver, path: &str) -> BTreeMap<i64, Vec<i64>> {
    let mut by_row: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut refused: HashSet<i64> = HashSet::new();
    for request in receiver.requests() {
        if request.target != path {
            continue;
        }
        let body = request.json();
        let row = body["item"]["id"].as_i64().unwrap();
        if refused.insert(row) {
            continue;
        }
        by_row
            .entry(row)
            .or_default()
            .push(body["item"]["version"].as_i64().unwrap());
    }
    by_row
}

async fn orders_table(database: &TestDatabase) {
    database
        .execute(&format!(
            "CREATE TABLE orders (id integer PRIMARY KEY, version integer NOT NULL);
             INSERT INTO orders SELECT n, 0 FROM generate_series(1, {ROWS}) n"
        ))
        .await;
}

async fn update_every_row(database: &TestDatabase, rounds: std::ops::RangeInclusive<i64>) {
    for _ in rounds {
        database
            .execute("UPDATE orders SET version = version + 1")
            .await;
    }
}

fn config_for(database: &TestDatabase, receiver: &Receiver, admin_port: u16) -> std::path::PathBuf {
    database.write_config(&format!(
        "[admin]\nlisten = \"127.0.0.1:{admin_port}\"\ntoken = \"{TOKEN}\"\n\n\
         [delivery]\nretry = [\"0s\", \"1s\", \"1s\", \"1s\"]\n\n\
         [models.order]\ntable = \"orders\"\n\n\
         [[webhooks]]\nname = \"ordered\"\nmodel = \"order\"\non = [\"update\"]\n\
         ordering = \"row\"\nurl = \"{}\"\n\n\
         [[webhooks]]\nname = \"unordered\"\nmodel = \"order\"\non = [\"update\"]\n\
         url = \"{}\"\n",
        receiver.url("/ordered"),
        receiver.url("/unordered"),
    ))
}

async fn rows_arrive_in_commit_order(mode: Mode) {
    let database = TestDatabase::create_in(mode).await;
    orders_table(&database).await;
    let receiver = Receiver::start().await;
    fail_each_rows_first_request(&receiver);
    let port = free_port();
    let config = config_for(&database, &receiver, port);
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let service = Service::start(&database, &config).await;
    update_every_row(&database, 1..=UPDATES).await;
    // Per webhook: each row's refused first request, then its five updates.
    let expected = 2 * (ROWS * (UPDATES + 1)) as usize;
    receiver.wait_for(expected, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let ordered = accepted_versions(&receiver, "/ordered");
    assert_eq!(ordered.len(), ROWS as usize);
    for (row, versions) in &ordered {
        assert_eq!(
            versions,
            &(1..=UPDATES).collect::<Vec<_>>(),
            "row {row} under ordering = \"row\""
        );
    }
    // Rows interleave: the first accepted requests are of many rows, not one row's five.
    let first_rows: HashSet<i64> = receiver
        .requests()
        .iter()
        .filter(|request| request.target == "/ordered")
        .take(50)
        .map(|request| request.json()["item"]["id"].as_i64().unwrap())
        .collect();
    assert!(first_rows.len() > 10, "{first_rows:?}");
    let unordered = accepted_versions(&receiver, "/unordered");
    let reordered = unordered
        .values()
        .filter(|versions| !versions.is_sorted())
        .count();
    println!("ordering = \"none\": {reordered} of {ROWS} rows arrived out of commit order");
    assert!(
        reordered > ROWS as usize / 2,
        "without ordering, a refused first update lands after later ones: {unordered:?}"
    );

    row_history(&config, port).await;
    service.stop();
}

/// Row 7's events across both webhooks, newest first, through the CLI, the API and the
/// pages; and the mistakes a user can make asking for one.
async fn row_history(config: &std::path::Path, port: u16) {
    let listed = rowhook(
        config,
        &[
            "events", "list", "--model", "order", "--key", "7", "--limit", "0", "--json",
        ],
    );
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let events: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 2 * UPDATES as usize, "{events:?}");
    assert!(events.iter().all(|event| event["row_key"] == "7"));
    let sequences: Vec<u64> = events
        .iter()
        .map(|event| event["sequence"].as_u64().unwrap())
        .collect();
    assert!(
        sequences.is_sorted_by(|newer, older| newer > older),
        "newest first"
    );
    let also_by_pair = rowhook(
        config,
        &["events", "list", "--model", "order", "--key", "id=7"],
    );
    assert!(
        text(&also_by_pair.stdout).contains("_ordered"),
        "{}",
        text(&also_by_pair.stdout)
    );

    let unknown_model = rowhook(config, &["events", "list", "--model", "nope", "--key", "1"]);
    assert_eq!(unknown_model.status.code(), Some(2));
    assert!(text(&unknown_model.stderr).contains("no model \"nope\""));
    let key_alone = rowhook(config, &["events", "list", "--key", "1"]);
    assert_eq!(key_alone.status.code(), Some(2));

    let base = format!("http://127.0.0.1:{port}");
    let (_, answer) = admin_get(
        &format!("{base}/api/events?model=order&key=7&webhook=ordered"),
        TOKEN,
    )
    .await;
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let api_events = answer["events"].as_array().unwrap();
    assert_eq!(api_events.len(), UPDATES as usize, "{answer}");
    assert!(api_events.iter().all(|event| event["webhook"] == "ordered"));
    let (status, _) = admin_get(&format!("{base}/api/events?model=order"), TOKEN).await;
    assert_eq!(status, 400);
    let (_, home) = admin_get(&format!("{base}/"), TOKEN).await;
    assert!(home.contains("action=\"/rows\""), "{home}");
    let (_, page) = admin_get(&format!("{base}/rows?model=order&key=7"), TOKEN).await;
    for event in events {
        assert!(page.contains(event["id"].as_str().unwrap()), "{page}");
    }
}

in_both_modes!(
    rows_arrive_in_commit_order,
    tokio::test(flavor = "multi_thread", worker_threads = 2)
);

async fn the_order_survives_kill_9(mode: Mode) {
    let database = TestDatabase::create_in(mode).await;
    orders_table(&database).await;
    let receiver = Receiver::start().await;
    fail_each_rows_first_request(&receiver);
    let config = config_for(&database, &receiver, free_port());
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let service = Service::start(&database, &config).await;
    update_every_row(&database, 1..=UPDATES).await;
    // Somewhere in the middle: refused first requests made, retries under way.
    receiver
        .wait_for(ROWS as usize + ROWS as usize / 2, WAIT)
        .await;
    service.kill();
    let service = Service::start(&database, &config).await;
    let expected = 2 * (ROWS * (UPDATES + 1)) as usize;
    receiver.wait_for(expected, WAIT).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let ordered = accepted_versions(&receiver, "/ordered");
    assert_eq!(ordered.len(), ROWS as usize);
    for (row, versions) in &ordered {
        // At least once: an attempt cut off by the crash may come again, but never
        // after a later update of its row.
        assert!(versions.is_sorted(), "row {row}: {versions:?}");
        let mut distinct = versions.clone();
        distinct.dedup();
        assert_eq!(distinct, (1..=UPDATES).collect::<Vec<_>>(), "row {row}");
    }
    service.stop();
}

in_both_modes!(
    the_order_survives_kill_9,
    tokio::test(flavor = "multi_thread", worker_threads = 2)
);
