//! `kill -9` rowhook several times during a 20,000-change stream: after the last restart
//! every change has been delivered at least once, and every repeat carries the same id.

#[macro_use]
mod support;

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

    let writer = support::spawn_order_writer(
        &database.url,
        CHANGES,
        PER_TRANSACTION,
        Duration::from_millis(10),
    );

    let mut service = Service::start(&database, &config).await;
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(1200 + round * 300)).await;
        service.kill();
        service = Service::spawn(&database, &config);
    }
    writer.await.expect("writer");
    support::wait_for_rows(&receiver, CHANGES, Duration::from_secs(180)).await;

    let received_count = support::assert_every_row_once_per_id(&receiver, CHANGES);
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
