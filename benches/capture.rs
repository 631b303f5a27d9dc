//! Capture benchmark: reads the same WAL with `pg_recvlogical` (PostgreSQL's own client,
//! writing raw pgoutput to /dev/null) and with rowhook's decode path (frames, pgoutput,
//! values to JSON rows), and prints both rates. Run it with `scripts/bench.sh capture`,
//! which starts a throwaway cluster.

use std::process::Command;
use std::time::{Duration, Instant};

use rowhook::capture::replication::{ReplicationSource, SlotKind};
use rowhook::capture::{Captured, acknowledgement_channel};
use rowhook::change::Lsn;
use rowhook::postgres::DatabaseUrl;
use rowhook::shutdown;
use tokio::sync::mpsc;
use tokio_postgres::NoTls;

const ROWS: u64 = 300_000;
const TRANSACTIONS: u64 = 30;

fn environment(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/bench.sh"))
}

#[tokio::main]
async fn main() {
    let server = environment("ROWHOOK_TEST_DATABASE_URL");
    let bindir = environment("ROWHOOK_TEST_PG_BINDIR");
    let (admin, connection) = tokio_postgres::connect(&server, NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    for statement in [
        "DROP DATABASE IF EXISTS bench_capture",
        "CREATE DATABASE bench_capture",
    ] {
        admin
            .batch_execute(statement)
            .await
            .expect("create database");
    }
    let (base, _) = server.rsplit_once('/').expect("a database in the URL");
    let url = format!("{base}/bench_capture");
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    // One statement at a time: a slot cannot be made in a transaction that wrote.
    for statement in [
        "CREATE TABLE orders (id bigint PRIMARY KEY, sku text, quantity integer,
                              price numeric(10, 2), paid boolean, created timestamptz)",
        "CREATE PUBLICATION bench FOR TABLE orders",
        "SELECT pg_create_logical_replication_slot('reference_first', 'pgoutput')",
        "SELECT pg_create_logical_replication_slot('rowhook', 'pgoutput')",
        "SELECT pg_create_logical_replication_slot('reference_second', 'pgoutput')",
    ] {
        client
            .batch_execute(statement)
            .await
            .expect("schema and slots");
    }
    let per_transaction = ROWS / TRANSACTIONS;
    for transaction in 0..TRANSACTIONS {
        let first = transaction * per_transaction + 1;
        client
            .batch_execute(&format!(
                "INSERT INTO orders SELECT n, 'sku-' || n, n % 9, n % 1000 + 0.99, n % 2 = 0, now()
                 FROM generate_series({first}, {}) n",
                first + per_transaction - 1
            ))
            .await
            .expect("insert");
    }
    let end: String = client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .expect("wal position")
        .get(0);
    let end: Lsn = end.parse().expect("LSN");

    let first = reference_rate(&bindir, &url, "reference_first", end);
    let ours = rowhook_rate(&url, end).await;
    let second = reference_rate(&bindir, &url, "reference_second", end);
    let reference = (first + second) / 2.0;
    println!();
    println!("capture benchmark: {ROWS} inserted rows in {TRANSACTIONS} transactions");
    println!("| reader                                  | rows/s     |");
    println!("|-----------------------------------------|------------|");
    println!("| pg_recvlogical (raw pgoutput, 1st run)  | {first:>10.0} |");
    println!("| pg_recvlogical (raw pgoutput, 2nd run)  | {second:>10.0} |");
    println!("| rowhook decode path (rows as JSON)      | {ours:>10.0} |");
    println!("rowhook / pg_recvlogical = {:.2}", ours / reference);
}

fn reference_rate(bindir: &str, url: &str, slot: &str, end: Lsn) -> f64 {
    let started = Instant::now();
    let status = Command::new(format!("{bindir}/pg_recvlogical"))
        .args([
            "-d",
            url,
            "--slot",
            slot,
            "--start",
            "--no-loop",
            "-f",
            "/dev/null",
        ])
        .args(["--endpos", &end.to_string()])
        .args(["-o", "proto_version=1", "-o", "publication_names=bench"])
        .status()
        .expect("run pg_recvlogical");
    assert!(status.success(), "pg_recvlogical failed");
    ROWS as f64 / started.elapsed().as_secs_f64()
}

async fn rowhook_rate(url: &str, end: Lsn) -> f64 {
    let source = ReplicationSource {
        max_row: usize::MAX,
        url: DatabaseUrl::parse(url).expect("URL"),
        slot: SlotKind::Persistent {
            name: "rowhook".into(),
        },
        publication: "bench".into(),
        start: Lsn(0),
        status: None,
    };
    let (sender, mut receiver) = mpsc::channel(1024);
    let (acknowledger, acknowledgements) = acknowledgement_channel();
    let (stop, shutdown) = shutdown::channel();
    let started = Instant::now();
    let capture = tokio::spawn(source.run(sender, acknowledgements, shutdown));
    let mut rows = 0u64;
    while let Ok(Some(captured)) =
        tokio::time::timeout(Duration::from_secs(120), receiver.recv()).await
    {
        match captured {
            Captured::Change(change) => {
                rows += 1;
                std::hint::black_box(&change.item);
            }
            Captured::Commit(position) => {
                acknowledger.acknowledge(position);
                if rows >= ROWS {
                    break;
                }
            }
            Captured::Drained(_) => {}
            Captured::Oversized(oversized) => panic!("no row is that large: {oversized:?}"),
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(rows, ROWS, "rowhook read every row (up to {end})");
    stop.trigger();
    drop(receiver);
    let _ = capture.await;
    rows as f64 / elapsed.as_secs_f64()
}
