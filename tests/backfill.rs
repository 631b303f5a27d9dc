//! Backfill (CONTRACT §8) against a real PostgreSQL and receiver: existing rows arrive
//! once each as `*.read` while live changes keep flowing ahead of them; a kill -9 in the
//! middle and a restart complete the job with the same ids; cancel and `--where` work;
//! mistakes get clear errors.

#[macro_use]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::receiver::{Received, Receiver};
use support::{Mode, Service, TestDatabase, free_port, rowhook, rowhook_binary, text};

const TOKEN: &str = "backfill-token";
const WAIT: Duration = Duration::from_secs(300);

async fn prepared(
    mode: Mode,
    rows: u32,
    receiver: &Receiver,
    port: u16,
) -> (TestDatabase, std::path::PathBuf) {
    let database = TestDatabase::create_in(mode).await;
    database
        .execute(&format!(
            "CREATE TABLE orders (id bigint PRIMARY KEY, status text);
             INSERT INTO orders SELECT n, 'old' FROM generate_series(1, {rows}) n;"
        ))
        .await;
    let config = database.write_config(&format!(
        "[admin]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n\n\
         [delivery]\nretry = [\"0s\", \"1s\"]\nconcurrency = 64\n\n\
         [models.order]\ntable = \"orders\"\n\n\
         [[webhooks]]\nname = \"sink\"\nmodel = \"order\"\nurl = \"{}\"\nconcurrency = 32\n",
        receiver.url("/sink")
    ));
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    (database, config)
}

/// The job, or `None` while it does not exist yet (the CLI starting it is a separate
/// process).
async fn find_job(port: u16, id: u32) -> Option<Value> {
    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/backfills/{id}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("the admin API answers");
    let status = response.status();
    let body = response.text().await.unwrap();
    if status == 404 {
        return None;
    }
    assert_eq!(status, 200, "{body}");
    Some(serde_json::from_str(&body).unwrap())
}

async fn job(port: u16, id: u32) -> Value {
    find_job(port, id).await.expect("the job exists")
}

async fn wait_for_job(port: u16, id: u32, until: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let job = find_job(port, id).await;
        if let Some(job) = &job
            && until(job)
        {
            return job.clone();
        }
        assert!(Instant::now() < deadline, "backfill {id} stuck at {job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads by row id: the event ids each row arrived with.
fn reads(requests: &[Received]) -> BTreeMap<i64, BTreeSet<String>> {
    let mut reads: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for request in requests {
        let body = request.json();
        if body["type"] == "order.read" {
            reads
                .entry(body["item"]["id"].as_i64().unwrap())
                .or_default()
                .insert(request.header("webhook-id").unwrap().to_string());
        }
    }
    reads
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_survives_kill_9_while_live_changes_flow() {
    const ROWS: u32 = 100_000;
    let receiver = Receiver::start().await;
    let port = free_port();
    let (database, config) = prepared(Mode::Replication, ROWS, &receiver, port).await;
    let service = Service::start(&database, &config).await;

    // The CLI starts the job and follows it; without a terminal it prints plain lines.
    let follower = Command::new(rowhook_binary())
        .arg("--config")
        .arg(&config)
        .args(["backfill", "order", "--batch", "500"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rowhook backfill");
    wait_for_job(port, 1, |job| job["rows_done"].as_u64() >= Some(20_000)).await;

    // Live changes go ahead of the backfill's rows.
    database
        .execute("INSERT INTO orders SELECT n, 'live' FROM generate_series(200001, 200010) n")
        .await;
    let live_sent = Instant::now();
    let deadline = live_sent + Duration::from_secs(20);
    loop {
        let live = receiver.count_where(|request| request.body.contains("\"order.created\""));
        if live == 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "live changes wait behind the backfill"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reads_before_kill = receiver.count_where(|request| request.body.contains("\"order.read\""));
    assert!(
        reads_before_kill < ROWS as usize,
        "the backfill is still being delivered when live changes arrive"
    );

    // A crash in the middle of the job.
    let before_kill = job(port, 1).await;
    assert_eq!(before_kill["state"], "running");
    service.kill();
    let followed = follower.wait_with_output().unwrap();
    assert!(
        !followed.status.success(),
        "following ends with the service"
    );
    let progress = text(&followed.stdout);
    assert!(progress.contains("backfill 1:"), "{progress}");

    let service = Service::start(&database, &config).await;
    database
        .execute("INSERT INTO orders SELECT n, 'live' FROM generate_series(200011, 200020) n")
        .await;
    let done = wait_for_job(port, 1, |job| job["state"] == "done").await;
    // Rows inserted after the cursor while the job runs are read too: the live ones.
    let rows_done = done["rows_done"].as_u64().unwrap();
    assert!(
        (ROWS as u64..=ROWS as u64 + 20).contains(&rows_done),
        "{done}"
    );
    let expected = rows_done as usize + 20;
    // At least every row once and every live change; repeats after the kill come on top.
    receiver.wait_for(expected, WAIT).await;
    let deadline = Instant::now() + WAIT;
    let (requests, reads) = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let requests = receiver.requests();
        let reads = reads(&requests);
        if reads.len() >= rows_done as usize || Instant::now() > deadline {
            break (requests, reads);
        }
    };
    assert_eq!(reads.len(), rows_done as usize, "every row arrives");
    let old_rows: Vec<i64> = reads
        .keys()
        .copied()
        .filter(|id| *id <= ROWS as i64)
        .collect();
    assert_eq!(old_rows, (1..=ROWS as i64).collect::<Vec<_>>(), "no gaps");
    assert!(
        reads.values().all(|ids| ids.len() == 1),
        "a row sent again carries the same id"
    );
    let live: BTreeSet<i64> = requests
        .iter()
        .filter(|request| request.body.contains("\"order.created\""))
        .map(|request| request.json()["item"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(live.len(), 20, "every live change arrives");
    let repeats = requests.len() - expected;
    println!("{repeats} repeated deliveries after kill -9 (same ids)");
    let sample = requests
        .iter()
        .find(|request| request.json()["type"] == "order.read")
        .unwrap()
        .json();
    assert_eq!(sample["action"], "read");
    assert_eq!(sample["old"], Value::Null);
    assert_eq!(sample["changed"], Value::Null);
    let id = sample["id"].as_str().unwrap();
    assert!(id.starts_with("evt_b") && id.len() <= 64, "{id}");

    // `backfill list` shows the job; `/metrics` and the home page too.
    let listed = rowhook(&config, &["backfill", "list"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    assert!(
        text(&listed.stdout).contains("done"),
        "{}",
        text(&listed.stdout)
    );
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "rowhook_backfill_rows{{job=\"1\",model=\"order\",state=\"done\"}} {rows_done}"
        )),
        "{metrics}"
    );
    service.stop();
}

async fn where_limits_and_cancel_stops(mode: Mode) {
    let receiver = Receiver::start().await;
    let port = free_port();
    let (database, config) = prepared(mode, 20_000, &receiver, port).await;
    let service = Service::start(&database, &config).await;

    let limited = rowhook(&config, &["backfill", "order", "--where", "id % 1000 = 0"]);
    assert!(limited.status.success(), "{}", text(&limited.stderr));
    assert!(
        text(&limited.stdout).contains("done, 20 rows"),
        "{}",
        text(&limited.stdout)
    );
    let requests = receiver.wait_for(20, WAIT).await;
    let ids: BTreeSet<i64> = reads(&requests).into_keys().collect();
    assert_eq!(ids, (1..=20).map(|n| n * 1000).collect());

    // Ten rows a page makes a job slow enough to cancel in the middle.
    let started = rowhook_in_background(&config, &["backfill", "order", "--batch", "10"]);
    wait_for_job(port, 2, |job| job["rows_done"].as_u64() >= Some(100)).await;
    let cancelled = rowhook(&config, &["backfill", "cancel", "2"]);
    assert!(cancelled.status.success(), "{}", text(&cancelled.stderr));
    let stopped = wait_for_job(port, 2, |job| job["state"] == "cancelled").await;
    assert!(stopped["rows_done"].as_u64().unwrap() < 20_000, "{stopped}");
    let followed = started.wait_with_output().unwrap();
    assert_eq!(followed.status.code(), Some(1));
    assert!(
        text(&followed.stderr).contains("cancelled"),
        "{}",
        text(&followed.stderr)
    );
    let again = rowhook(&config, &["backfill", "cancel", "2"]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again.stderr));
    service.stop();
}

in_both_modes!(
    where_limits_and_cancel_stops,
    tokio::test(flavor = "multi_thread", worker_threads = 2)
);

fn rowhook_in_background(config: &std::path::Path, arguments: &[&str]) -> std::process::Child {
    Command::new(rowhook_binary())
        .arg("--config")
        .arg(config)
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rowhook")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistakes_get_clear_errors() {
    let receiver = Receiver::start().await;
    let port = free_port();
    let (database, config) = prepared(Mode::Replication, 10, &receiver, port).await;

    // No service running: the CLI says what to do.
    let alone = rowhook(&config, &["backfill", "order"]);
    assert_eq!(alone.status.code(), Some(1));
    assert!(
        text(&alone.stderr).contains("start `rowhook run` first"),
        "{}",
        text(&alone.stderr)
    );

    let unknown = rowhook(&config, &["backfill", "invoice"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        text(&unknown.stderr).contains("no model \"invoice\""),
        "{}",
        text(&unknown.stderr)
    );

    let service = Service::start(&database, &config).await;
    let broken = rowhook(&config, &["backfill", "order", "--where", "id >"]);
    assert_eq!(broken.status.code(), Some(2), "{}", text(&broken.stderr));
    assert!(
        text(&broken.stderr).contains("syntax error"),
        "{}",
        text(&broken.stderr)
    );
    let missing = rowhook(&config, &["backfill", "order", "--where", "colour = 'red'"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing.stderr).contains("column \"colour\" does not exist"),
        "{}",
        text(&missing.stderr)
    );
    let stacked = rowhook(
        &config,
        &[
            "backfill",
            "order",
            "--where",
            "true); DELETE FROM orders; SELECT (1",
        ],
    );
    assert_eq!(stacked.status.code(), Some(2), "{}", text(&stacked.stderr));
    let count: i64 = database
        .client
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 10, "a condition cannot smuggle a statement in");
    let listed = rowhook(&config, &["backfill", "list"]);
    assert!(
        text(&listed.stdout).contains("no backfill jobs"),
        "{}",
        text(&listed.stdout)
    );
    service.stop();
}
