//! End-to-end benchmark: PostgreSQL → `rowhook run` (release build) → a local receiver,
//! in both capture modes, for this build and, with `ROWHOOK_BENCH_BASELINE` set to
//! another build's binary, for that one in the same run (`scripts/bench.sh deliver
//! --baseline REV` builds it). Per build and mode it prints:
//!
//! - end-to-end events per second for a backlog of 100,000 changes written while rowhook
//!   was stopped (`retry = ["0s"]`), against `pg_recvlogical` reading the same WAL;
//! - commit-to-receipt latency p50/p99 at a steady 1,000 single-row transactions a second;
//! - rowhook's peak RSS over both;
//! - one transaction of 1,000,000 rows: events per second from its commit, peak RSS;
//! - per store backend: sled, and the PostgreSQL store (`ROWHOOK_BENCH_STORES`);
//! - (replication mode, sled) the store's size after each of five rounds of 100,000 events
//!   delivered, with `retention = "1s"` pruning the previous round at each start.
//!
//! - a delivery-bound run on the PostgreSQL store: a receiver answering in 50 ms, with 1, 2
//!   and 3 instances (`instances`).
//! - the sled store alone, driven through `EventStore` without PostgreSQL: its size after
//!   each of ten rounds of 100,000 events delivered and pruned (`store-churn`, see
//!   `store_churn.rs`).
//!
//! The cluster runs with `fsync = on` and synchronous commit, as a production server.
//! `ROWHOOK_BENCH_MODES` (`replication,notify`) and `ROWHOOK_BENCH_SCENARIOS`
//! (`backlog,big,churn,instances,store-churn`) narrow a run; `ROWHOOK_BENCH_PERF=DIRECTORY` profiles rowhook.

mod harness;
mod store_churn;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::{CountingReceiver, Database, Service, percentile, pg_recvlogical_rate, rowhook};

const BACKLOG: u64 = 100_000;
const STEADY_RATE: u64 = 1_000;
const STEADY_SECONDS: u64 = 10;
const BIG_TRANSACTION: u64 = 1_000_000;
const CHURN_ROUNDS: u64 = 5;

/// A build under test, with the store backend it runs on.
struct Build {
    label: &'static str,
    binary: PathBuf,
    store: &'static str,
}

/// The delivery-bound run: a receiver taking this long per answer, this many attempts at
/// once per instance, this many events.
const SLOW_ANSWER: Duration = Duration::from_millis(50);
const SLOW_CONCURRENCY: u32 = 32;
const SLOW_EVENTS: u64 = 10_000;

#[derive(Default)]
struct Figures {
    write_rate: f64,
    throughput: f64,
    reference_rate: f64,
    p50: f64,
    p99: f64,
    peak_mib: f64,
    written_per_event: f64,
    big_rate: f64,
    big_peak_mib: f64,
    churn_mib: Vec<f64>,
}

#[tokio::main]
async fn main() {
    let mut builds = Vec::new();
    if let Ok(baseline) = std::env::var("ROWHOOK_BENCH_BASELINE") {
        builds.push(Build {
            label: "before",
            binary: PathBuf::from(baseline),
            store: "sled",
        });
    }
    let wanted = |variable: &str, name: &str| {
        std::env::var(variable).map_or(true, |list| list.split(',').any(|item| item == name))
    };
    for (label, store) in [("after", "sled"), ("after pg", "postgres")] {
        if wanted("ROWHOOK_BENCH_STORES", store) {
            builds.push(Build {
                label,
                binary: PathBuf::from(env!("CARGO_BIN_EXE_rowhook")),
                store,
            });
        }
    }
    let mut columns = Vec::new();
    let end_to_end = ["backlog", "big", "churn"]
        .into_iter()
        .any(|scenario| wanted("ROWHOOK_BENCH_SCENARIOS", scenario));
    for mode in ["replication", "notify"]
        .into_iter()
        .filter(|mode| end_to_end && wanted("ROWHOOK_BENCH_MODES", mode))
    {
        for build in &builds {
            let mut figures = Figures::default();
            if wanted("ROWHOOK_BENCH_SCENARIOS", "backlog") {
                figures = backlog_and_steady(build, mode).await;
                eprintln!(
                    "{} {mode}: backlog {:.0} events/s (pg_recvlogical {:.0} rows/s), {:.0} bytes written per event, p50 {:.2} ms, p99 {:.2} ms, peak {:.1} MiB",
                    build.label,
                    figures.throughput,
                    figures.reference_rate,
                    figures.written_per_event,
                    figures.p50,
                    figures.p99,
                    figures.peak_mib
                );
            }
            if wanted("ROWHOOK_BENCH_SCENARIOS", "big") {
                (figures.big_rate, figures.big_peak_mib) = big_transaction(build, mode).await;
                eprintln!(
                    "{} {mode}: one big transaction {:.0} events/s, peak {:.1} MiB",
                    build.label, figures.big_rate, figures.big_peak_mib
                );
            }
            if mode == "replication"
                && build.store == "sled"
                && wanted("ROWHOOK_BENCH_SCENARIOS", "churn")
            {
                figures.churn_mib = churn(&build.binary, build.label).await;
                eprintln!(
                    "{} {mode}: store MiB by round {:.1?}",
                    build.label, figures.churn_mib
                );
            }
            columns.push((format!("{} {mode}", build.label), figures));
        }
    }
    if end_to_end {
        print_table(&columns);
    }
    if wanted("ROWHOOK_BENCH_SCENARIOS", "store-churn") {
        store_churn::print_table(&store_churn::store_churn().await);
    }
    if wanted("ROWHOOK_BENCH_SCENARIOS", "instances") && wanted("ROWHOOK_BENCH_STORES", "postgres")
    {
        let binary = PathBuf::from(env!("CARGO_BIN_EXE_rowhook"));
        let mut rates: Vec<f64> = Vec::new();
        for instances in 1..=3 {
            rates.push(delivery_bound(&binary, instances).await);
        }
        println!(
            "\ndelivery-bound (receiver answers in {} ms, concurrency {SLOW_CONCURRENCY} per instance, \
             {SLOW_EVENTS} events, postgres store):",
            SLOW_ANSWER.as_millis()
        );
        for (index, rate) in rates.iter().enumerate() {
            println!(
                "  {} instance(s): {rate:.0} events/s (x{:.2} of one)",
                index + 1,
                rate / rates[0]
            );
        }
    }
}

/// `instances` rowhook on one PostgreSQL store, a backlog, a slow receiver: events/s.
async fn delivery_bound(binary: &Path, instances: usize) -> f64 {
    let database = Database::create(&format!("bench_instances_{instances}")).await;
    let receiver = CountingReceiver::answering_after(SLOW_ANSWER).await;
    let config = database.config_with(
        "rowhook.toml",
        "replication",
        "postgres",
        receiver.address,
        "7d",
        &format!("concurrency = {SLOW_CONCURRENCY}\n"),
    );
    rowhook(binary, &config, &["setup"]);
    database.insert(1, SLOW_EVENTS).await;
    let started = Instant::now();
    let services: Vec<Service> = (0..instances)
        .map(|index| Service::start(binary, &config, &format!("instances-{instances}-{index}")))
        .collect();
    let last = receiver
        .wait_for(SLOW_EVENTS, Duration::from_secs(600))
        .await;
    let rate = SLOW_EVENTS as f64 / (last - started).as_secs_f64();
    eprintln!("{instances} instance(s), delivery-bound: {rate:.0} events/s");
    for service in services {
        service.stop();
    }
    database.remove().await;
    rate
}

fn print_table(columns: &[(String, Figures)]) {
    println!();
    println!(
        "delivery benchmark (release build; fsync = on; 2 cores shared with PostgreSQL and the receiver)"
    );
    let mut header = format!("| {:<52} |", "measure");
    let mut rule = format!("|{}|", "-".repeat(54));
    for (name, _) in columns {
        header.push_str(&format!(" {name:>18} |"));
        rule.push_str(&format!("{}|", "-".repeat(20)));
    }
    println!("{header}\n{rule}");
    let row = |name: &str, value: &dyn Fn(&Figures) -> Option<f64>, precision: usize| {
        let mut line = format!("| {name:<52} |");
        for (_, figures) in columns {
            match value(figures) {
                Some(value) => line.push_str(&format!(" {value:>18.precision$} |")),
                None => line.push_str(&format!(" {:>18} |", "—")),
            }
        }
        println!("{line}");
    };
    row(
        "rows/s written by INSERT … SELECT (trigger cost)",
        &|f| Some(f.write_rate),
        0,
    );
    row(
        &format!("end-to-end events/s, {BACKLOG} changes backlog"),
        &|f| Some(f.throughput),
        0,
    );
    row(
        "pg_recvlogical rows/s on the same WAL",
        &|f| Some(f.reference_rate).filter(|rate| *rate > 0.0),
        0,
    );
    row(
        "  events/s ÷ pg_recvlogical rows/s",
        &|f| Some(f.throughput / f.reference_rate).filter(|ratio| ratio.is_finite()),
        3,
    );
    row(
        &format!("commit-to-receipt p50 at {STEADY_RATE}/s (ms)"),
        &|f| Some(f.p50),
        2,
    );
    row(
        &format!("commit-to-receipt p99 at {STEADY_RATE}/s (ms)"),
        &|f| Some(f.p99),
        2,
    );
    row(
        "peak RSS, backlog and steady (MiB)",
        &|f| Some(f.peak_mib),
        1,
    );
    row(
        "bytes written per event (sled: its files; pg: WAL)",
        &|f| Some(f.written_per_event),
        0,
    );
    row(
        &format!("events/s after one {BIG_TRANSACTION}-row transaction"),
        &|f| Some(f.big_rate),
        0,
    );
    row(
        "peak RSS, that transaction (MiB)",
        &|f| Some(f.big_peak_mib),
        1,
    );
    for round in 0..CHURN_ROUNDS as usize {
        row(
            &format!("store MiB after round {} of {BACKLOG} delivered", round + 1),
            &|f| f.churn_mib.get(round).copied(),
            1,
        );
    }
}

async fn prepared(
    binary: &Path,
    name: &str,
    mode: &str,
    store: &str,
    retention: &str,
) -> (Database, CountingReceiver, PathBuf) {
    let database = Database::create(name).await;
    // The cluster commits synchronously, so the walsender sees a commit at once.
    let receiver = CountingReceiver::start().await;
    let config = database.config(mode, store, receiver.address, retention);
    rowhook(binary, &config, &["setup"]);
    (database, receiver, config)
}

/// A build's label as a database name.
fn database_name(build: &Build, scenario: &str) -> String {
    format!("bench_{}_{scenario}", build.label.replace(' ', "_"))
}

/// The server's write-ahead log position, in bytes.
async fn wal_position(database: &Database) -> i64 {
    database
        .client
        .query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8",
            &[],
        )
        .await
        .expect("WAL position")
        .get(0)
}

async fn backlog_and_steady(build: &Build, mode: &str) -> Figures {
    let (binary, label) = (&build.binary, build.label);
    let (database, receiver, config) =
        prepared(binary, &database_name(build, mode), mode, build.store, "7d").await;
    let replication = mode == "replication";
    if replication {
        database
            .client
            .batch_execute("SELECT pg_create_logical_replication_slot('reference', 'pgoutput')")
            .await
            .expect("reference slot");
    }
    let writing = Instant::now();
    for first in (1..=BACKLOG).step_by(10_000) {
        database.insert(first, 10_000).await;
    }
    let write_rate = BACKLOG as f64 / writing.elapsed().as_secs_f64();
    let reference_rate = match replication {
        true => pg_recvlogical_rate(&database, BACKLOG).await,
        false => 0.0,
    };

    let wal_before = wal_position(&database).await;
    let started = Instant::now();
    let service = Service::start(binary, &config, &format!("{label}-{mode}-backlog"));
    let last = receiver.wait_for(BACKLOG, Duration::from_secs(900)).await;
    let throughput = BACKLOG as f64 / (last - started).as_secs_f64();
    // Attempts are recorded a moment after their answer; let the last ones land.
    tokio::time::sleep(Duration::from_millis(600)).await;
    // What the store wrote: rowhook's own files, or the server's log for its tables.
    let written = match build.store {
        "sled" => service.written_bytes() as f64,
        _ => (wal_position(&database).await - wal_before) as f64,
    };
    let written_per_event = written / BACKLOG as f64;

    receiver.measure_latency(true);
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / STEADY_RATE));
    for offset in 1..=STEADY_RATE * STEADY_SECONDS {
        ticker.tick().await;
        database
            .client
            .execute(
                "INSERT INTO orders VALUES ($1, 'steady', 1, 1.00, true, now())",
                &[&((BACKLOG + offset) as i64)],
            )
            .await
            .expect("steady insert");
    }
    receiver
        .wait_for(
            BACKLOG + STEADY_RATE * STEADY_SECONDS,
            Duration::from_secs(120),
        )
        .await;
    receiver.measure_latency(false);
    let latencies = receiver.latencies();
    let peak_mib = service.peak_mib();
    service.stop();
    database.remove().await;
    Figures {
        write_rate,
        throughput,
        reference_rate,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        peak_mib,
        written_per_event,
        ..Figures::default()
    }
}

/// One transaction of a million rows, written while rowhook runs.
async fn big_transaction(build: &Build, mode: &str) -> (f64, f64) {
    let (binary, label) = (&build.binary, build.label);
    let (database, receiver, config) = prepared(
        binary,
        &database_name(build, &format!("{mode}_big")),
        mode,
        build.store,
        "7d",
    )
    .await;
    let service = Service::start(binary, &config, &format!("{label}-{mode}-big"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    database.insert(1, BIG_TRANSACTION).await;
    let committed = Instant::now();
    let last = receiver
        .wait_for(BIG_TRANSACTION, Duration::from_secs(1_800))
        .await;
    let rate = BIG_TRANSACTION as f64 / (last - committed).as_secs_f64();
    let peak = service.peak_mib();
    service.stop();
    database.remove().await;
    (rate, peak)
}

/// Rounds of a backlog delivered and pruned: how the store's size behaves under churn.
async fn churn(binary: &Path, label: &str) -> Vec<f64> {
    let (database, receiver, config) = prepared(
        binary,
        &format!("bench_{label}_churn"),
        "replication",
        "sled",
        "1s",
    )
    .await;
    let mut sizes = Vec::new();
    for round in 0..CHURN_ROUNDS {
        database.insert(round * BACKLOG + 1, BACKLOG).await;
        // Each start prunes what finished more than a second ago: the previous round.
        let service = Service::start(binary, &config, &format!("{label}-churn-{round}"));
        receiver
            .wait_for((round + 1) * BACKLOG, Duration::from_secs(900))
            .await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        service.stop();
        sizes.push(database.store_bytes() as f64 / (1024.0 * 1024.0));
    }
    database.remove().await;
    sizes
}
