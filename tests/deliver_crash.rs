//! `kill -9` rowhook several times during a 20,000-change stream: after the last restart
//! every change has been delivered at least once, and every repeat carries the same id.

#[macro_use]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use support::receiver::Receiver;
use support::{Mode, Service, TestDatabase, rowhook, text};

const CHANGES: i64 = 20_000;
const PER_TRANSACTION: i64 = 50;

async fn crashes_lose_nothing_and_repeats_keep_their_ids(mode: Mode) {
    let receiver = Receiver::start().await;
    let database = TestDatabase::create_in(mode).await;
    database
        .execute("CREATE TABLE orders (id integer PRIMARY KEY, note text)")
        .await;
    let config = database.write_config(&format!(
        "[delivery]\nretry = [\"0s\", \"100ms\", \"500ms\", \"1s\", \"2s\"]\n\n[models.order]\ntable = \"orders\"\n\n\
         [[webhooks]]\nname = \"crashy\"\nmodel = \"order\"\nurl = \"{}\"\n",
        receiver.url("/orders")
    ));
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));

    let writer_url = database.url.clone();
    let writer = tokio::spawn(async move {
        let client = support::connect(&writer_url).await;
        for first in (1..=CHANGES).step_by(PER_TRANSACTION as usize) {
            client
                .batch_execute(&format!(
                    "INSERT INTO orders SELECT n, 'row ' || n FROM generate_series({first}, {}) n",
                    first + PER_TRANSACTION - 1
                ))
                .await
                .expect("insert");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });

    let mut service = Service::start(&database, &config).await;
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(1200 + round * 300)).await;
        service.kill();
        service = Service::spawn(&database, &config);
    }
    writer.await.expect("writer");
    let rows_seen = || {
        receiver
            .requests()
            .iter()
            .filter_map(|request| request.json()["item"]["id"].as_i64())
            .collect::<BTreeSet<i64>>()
            .len()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while rows_seen() < CHANGES as usize && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let received_count = receiver.requests().len();

    let mut ids_by_row: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for request in receiver.requests() {
        let body = request.json();
        let row = body["item"]["id"].as_i64().expect("row id");
        let header_id = request.header("webhook-id").expect("event id").to_string();
        assert_eq!(body["id"], header_id, "body and header carry the same id");
        ids_by_row.entry(row).or_default().insert(header_id);
    }
    let missing: Vec<i64> = (1..=CHANGES)
        .filter(|row| !ids_by_row.contains_key(row))
        .take(10)
        .collect();
    assert!(missing.is_empty(), "rows never delivered, e.g. {missing:?}");
    let unstable: Vec<_> = ids_by_row
        .iter()
        .filter(|(_, ids)| ids.len() != 1)
        .take(5)
        .collect();
    assert!(
        unstable.is_empty(),
        "a repeat carried a different id: {unstable:?}"
    );
    println!(
        "{CHANGES} changes, {received_count} requests received ({} repeats) across 4 crashes",
        received_count as i64 - CHANGES
    );
    service.stop();
}

in_both_modes!(
    crashes_lose_nothing_and_repeats_keep_their_ids,
    tokio::test(flavor = "multi_thread", worker_threads = 2)
);
