//! The stream under load and trouble: a 200,000-row transaction in bounded memory, an idle
//! slot that keeps confirming while other tables churn, and a PostgreSQL restart.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use rowhook::capture::replication::{ReplicationSource, SlotKind};
use rowhook::capture::{Captured, acknowledgement_channel};
use rowhook::change::Lsn;
use rowhook::postgres::DatabaseUrl;
use rowhook::shutdown;
use support::{
    PrivateCluster, Tail, TestDatabase, eventually, peak_rss_kib, rowhook, text,
    wait_until_slot_active,
};
use tokio::sync::mpsc;

#[tokio::test]
async fn a_huge_transaction_streams_in_bounded_memory() {
    let database = TestDatabase::create().await;
    database
        .execute("CREATE TABLE lines (id integer PRIMARY KEY, sku text, quantity integer)")
        .await;
    let config = database.write_config("[models.line]\ntable = \"lines\"\n");
    assert!(rowhook(&config, &["setup"]).status.success());
    let tail = Tail::start(&database, &config).await;

    database
        .execute("INSERT INTO lines SELECT n, 'sku-' || n, n % 7 FROM generate_series(1, 20000) n")
        .await;
    assert_eq!(tail.count_lines(20_000, Duration::from_secs(120)), 20_000);
    let after_small = peak_rss_kib(tail.pid());

    database
        .execute(
            "INSERT INTO lines SELECT n, 'sku-' || n, n % 7 FROM generate_series(20001, 220000) n",
        )
        .await;
    assert_eq!(tail.count_lines(200_000, Duration::from_secs(300)), 200_000);
    let after_large = peak_rss_kib(tail.pid());

    println!(
        "peak RSS after 20,000 rows: {after_small} KiB; after 200,000 more: {after_large} KiB"
    );
    // Held whole, 200,000 rows would take well over 30 MiB of JSON alone.
    assert!(
        after_large < after_small + 16 * 1024,
        "memory grew with the row count: {after_small} KiB -> {after_large} KiB"
    );
}

/// Reads the slot through the library, acknowledging each commit as the next stage would,
/// and collects the `id` column of every change.
struct Consumer {
    ids: mpsc::UnboundedReceiver<i64>,
    stop: shutdown::ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
}

fn consume(url: &str, slot: &str, publication: &str) -> Consumer {
    let source = ReplicationSource {
        max_row: usize::MAX,
        url: DatabaseUrl::parse(url).expect("test URL parses"),
        slot: SlotKind::Persistent {
            name: slot.to_string(),
        },
        publication: publication.to_string(),
        start: Lsn(0),
        status: None,
    };
    let (sender, mut receiver) = mpsc::channel(256);
    let (acknowledger, acknowledgements) = acknowledgement_channel();
    let (stop, shutdown) = shutdown::channel();
    let (ids_sender, ids) = mpsc::unbounded_channel();
    let capture = tokio::spawn(source.run(sender, acknowledgements, shutdown));
    let task = tokio::spawn(async move {
        while let Some(captured) = receiver.recv().await {
            match captured {
                Captured::Change(change) => {
                    if let Some(id) = change.item.get("id").and_then(|id| id.as_i64()) {
                        let _ = ids_sender.send(id);
                    }
                }
                Captured::Commit(position) => acknowledger.acknowledge(position),
                Captured::Drained(_) => {}
                Captured::Oversized(oversized) => panic!("no row is that large: {oversized:?}"),
            }
        }
        capture
            .await
            .expect("capture task")
            .expect("capture ends cleanly");
    });
    Consumer { ids, stop, task }
}

impl Consumer {
    async fn collect_until(
        &mut self,
        expected: &BTreeSet<i64>,
        mut seen: BTreeSet<i64>,
        limit: Duration,
    ) -> BTreeSet<i64> {
        let deadline = tokio::time::Instant::now() + limit;
        while !expected.is_subset(&seen) {
            match tokio::time::timeout_at(deadline, self.ids.recv()).await {
                Ok(Some(id)) => {
                    seen.insert(id);
                }
                _ => break,
            }
        }
        seen
    }

    async fn finish(self) {
        self.stop.trigger();
        self.task.await.expect("consumer task");
    }
}

async fn confirmed_flush(client: &tokio_postgres::Client, slot: &str) -> Lsn {
    let text: String = client
        .query_one(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .expect("slot row")
        .get(0);
    text.parse().expect("LSN")
}

#[tokio::test]
async fn an_idle_slot_keeps_confirming_while_other_tables_churn() {
    let database = TestDatabase::create().await;
    database
        .execute(
            "CREATE TABLE quiet (id integer PRIMARY KEY);
             CREATE TABLE busy (id serial PRIMARY KEY, payload text);",
        )
        .await;
    let config = database.write_config("[models.quiet]\ntable = \"quiet\"\n");
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let consumer = consume(&database.url, &database.name, &database.name);
    let client = &database.client;
    wait_until_slot_active(client, &database.name).await;
    let start = confirmed_flush(client, &database.name).await;

    for _ in 0..20 {
        database
            .execute(
                "INSERT INTO busy (payload) SELECT repeat('x', 200) FROM generate_series(1, 500)",
            )
            .await;
    }
    let wal_end: String = client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .unwrap()
        .get(0);
    let wal_end: Lsn = wal_end.parse().unwrap();
    assert!(wal_end > start);
    eventually(
        "the idle slot to confirm past the churn",
        Duration::from_secs(60),
        || async { confirmed_flush(client, &database.name).await >= wal_end },
    )
    .await;
    consumer.finish().await;
}

/// Inserts rows `batch * 100 + 1 ..= batch * 100 + 100` for each batch, one transaction each.
async fn insert_batches(
    client: &tokio_postgres::Client,
    batches: std::ops::Range<i64>,
    payload: &str,
) {
    for batch in batches {
        let first = batch * 100 + 1;
        client
            .batch_execute(&format!(
                "INSERT INTO events SELECT n, {payload} FROM generate_series({first}, {}) n",
                first + 99
            ))
            .await
            .expect("insert a batch");
    }
}

// Several threads: the test blocks one while pg_ctl runs, and the stream must keep
// answering the server meanwhile or the server waits for it before shutting down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_missed_across_a_postgres_restart() {
    let cluster = PrivateCluster::start("wal_level = logical");
    let database = TestDatabase::create_on(&cluster.url()).await;
    database
        .execute("CREATE TABLE events (id integer PRIMARY KEY, payload text)")
        .await;
    let config = database.write_config("[models.event]\ntable = \"events\"\n");
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let mut consumer = consume(&database.url, &database.name, &database.name);
    wait_until_slot_active(&database.client, &database.name).await;

    insert_batches(&database.client, 0..10, "repeat('p', 100)").await;
    // Restart while the stream is still working through the first thousand rows.
    let first_seen = consumer.ids.recv().await.expect("a first change");
    tokio::task::block_in_place(|| {
        cluster.stop();
        cluster.start_again();
    });
    let after = support::connect(&database.url).await;
    insert_batches(&after, 10..20, "'later'").await;
    let expected: BTreeSet<i64> = (1..=2000).collect();
    let seen = consumer
        .collect_until(
            &expected,
            BTreeSet::from([first_seen]),
            Duration::from_secs(120),
        )
        .await;
    let missing: Vec<&i64> = expected.difference(&seen).take(10).collect();
    assert!(
        missing.is_empty(),
        "missed ids across the restart, e.g. {missing:?}"
    );
    consumer.finish().await;
}
