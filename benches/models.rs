//! Models benchmark: what relations and backfills cost, measured with `fsync = on`.
//!
//! - End-to-end events/s for a backlog of 100,000 orders, delivered by a webhook that
//!   includes nothing, then (in a fresh database with the same data) by one that includes
//!   a belongs-to (`customer`) and a has-many (`lines`, three per order): the ratio is what
//!   the lookups cost.
//! - Backfill: 200,000 existing rows sent by `rowhook backfill`, rows/s into the store
//!   (from the job's own start and finish), and until the last one is received.
//!
//! `ROWHOOK_BENCH_SCENARIOS` (`relations,backfill`) narrows a run; `ROWHOOK_BENCH_PERF`
//! profiles `rowhook run` as in the delivery benchmark.

#[allow(dead_code)]
#[path = "deliver/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::{CountingReceiver, Database, Service, rowhook};

const BACKLOG: u64 = 100_000;
const CUSTOMERS: u64 = 10_000;
const BACKFILL_ROWS: u64 = 200_000;

const RELATED_SCHEMA: &str = "
    ALTER TABLE orders ADD customer_id bigint;
    CREATE TABLE customers (id bigint PRIMARY KEY, email text, name text);
    CREATE TABLE order_lines (id bigserial PRIMARY KEY, order_id bigint, sku text, position int);
    CREATE INDEX ON order_lines (order_id);";

fn write_config(
    database: &Database,
    receiver: &CountingReceiver,
    port: u16,
    retry: &str,
    rest: &str,
) -> PathBuf {
    let path = database.directory.join("rowhook.toml");
    std::fs::write(
        &path,
        format!(
            "[source]\nurl = \"{}\"\nslot = \"{}\"\n\n[store]\npath = \"{}\"\n\n\
             [admin]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"bench\"\n\n\
             [delivery]\nretry = [\"{retry}\"]\n\n\
             [models.order]\ntable = \"orders\"\n\
             [models.order.relations]\n\
             customer = {{ model = \"customer\", key = \"customer_id\" }}\n\
             lines = {{ model = \"order_line\", foreign_key = \"order_id\", order_by = \"position\" }}\n\n\
             [models.customer]\ntable = \"customers\"\n\n\
             [models.order_line]\ntable = \"order_lines\"\n\n\
             [[webhooks]]\nname = \"bench\"\nmodel = \"order\"\nurl = \"http://{}/orders\"\n{rest}\n",
            database.url,
            database.name,
            database.directory.join("store").display(),
            receiver.address,
        ),
    )
    .expect("config");
    path
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A backlog of orders, each with its customer and three lines, delivered end to end.
async fn relations(binary: &Path, include: &str, name: &str) -> f64 {
    let database = Database::create(name).await;
    database
        .client
        .batch_execute(RELATED_SCHEMA)
        .await
        .expect("schema");
    let receiver = CountingReceiver::start().await;
    let config = write_config(&database, &receiver, free_port(), "0s", include);
    database
        .client
        .batch_execute(&format!(
            "INSERT INTO customers SELECT n, 'c' || n || '@example.com', 'Customer ' || n
                 FROM generate_series(1, {CUSTOMERS}) n;
             INSERT INTO order_lines (order_id, sku, position)
                 SELECT n, 'sku-' || n || '-' || p, p
                 FROM generate_series(1, {BACKLOG}) n, generate_series(1, 3) p;"
        ))
        .await
        .expect("related rows");
    rowhook(binary, &config, &["setup"]);
    database
        .client
        .batch_execute(&format!(
            "INSERT INTO orders SELECT n, 'sku-' || n, n % 9, n % 1000 + 0.99, n % 2 = 0, now(),
                 n % {CUSTOMERS} + 1
             FROM generate_series(1, {BACKLOG}) n"
        ))
        .await
        .expect("orders");
    let started = Instant::now();
    let service = Service::start(binary, &config, name);
    let last = receiver.wait_for(BACKLOG, Duration::from_secs(900)).await;
    let rate = BACKLOG as f64 / (last - started).as_secs_f64();
    service.stop();
    database.remove().await;
    rate
}

/// Existing rows sent by a backfill: rows/s into the store, and until received. With
/// `retry` "0s" delivery runs alongside; with a long first delay the events wait, and the
/// figure is the store side alone.
async fn backfill(binary: &Path, retry: &str) -> (f64, f64, f64) {
    let database = Database::create("bench_models_backfill").await;
    database
        .client
        .batch_execute(RELATED_SCHEMA)
        .await
        .expect("schema");
    database.insert(1, BACKFILL_ROWS).await;
    let receiver = CountingReceiver::start().await;
    let port = free_port();
    let config = write_config(&database, &receiver, port, retry, "");
    rowhook(binary, &config, &["setup"]);
    let service = Service::start(binary, &config, "backfill");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    rowhook(binary, &config, &["backfill", "order", "--batch", "1000"]);
    let answer = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/backfills/1"))
        .bearer_auth("bench")
        .send()
        .await
        .expect("admin API")
        .text()
        .await
        .expect("a job");
    let job: serde_json::Value = serde_json::from_str(&answer).expect("a job");
    let took_ms = job["finished_at_ms"].as_u64().unwrap() - job["started_at_ms"].as_u64().unwrap();
    let into_store = BACKFILL_ROWS as f64 / (took_ms as f64 / 1000.0);
    let last = receiver
        .wait_for(BACKFILL_ROWS, Duration::from_secs(900))
        .await;
    let end_to_end = BACKFILL_ROWS as f64 / (last - started).as_secs_f64();
    let peak = service.peak_mib();
    service.stop();
    database.remove().await;
    (into_store, end_to_end, peak)
}

#[tokio::main]
async fn main() {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_rowhook"));
    // `ROWHOOK_BENCH_SCENARIOS=relations,backfill` (the default: both) narrows a run.
    let wanted = |name: &str| {
        std::env::var("ROWHOOK_BENCH_SCENARIOS")
            .map_or(true, |list| list.split(',').any(|item| item == name))
    };
    println!();
    println!(
        "models benchmark (release build; fsync = on; 2 cores shared with PostgreSQL and the receiver)"
    );
    println!("| measure | value |\n|---|---|");
    if wanted("relations") {
        let plain = relations(&binary, "", "bench_models_plain").await;
        let related = relations(
            &binary,
            "include = [\"customer\", \"lines\"]",
            "bench_models_related",
        )
        .await;
        println!(
            "| end-to-end events/s, {BACKLOG} orders, webhook includes nothing | {plain:.0} |"
        );
        println!("| end-to-end events/s, same, including customer + 3 lines | {related:.0} |");
        println!("|   with ÷ without relations | {:.2} |", related / plain);
    }
    if wanted("backfill") {
        let (into_store, end_to_end, peak) = backfill(&binary, "0s").await;
        println!(
            "| backfill of {BACKFILL_ROWS} rows: rows/s into the store, delivering alongside | {into_store:.0} |"
        );
        println!("| backfill: rows/s until the last is received | {end_to_end:.0} |");
        println!("| backfill: peak RSS (MiB) | {peak:.1} |");
        let (deferred, _, peak) = backfill(&binary, "10m").await;
        println!("| backfill: rows/s into the store, delivery not yet due | {deferred:.0} |");
        println!("| backfill: peak RSS, delivery not yet due (MiB) | {peak:.1} |");
    }
}
