//! End-to-end benchmark: PostgreSQL → `rowhook run` (release build) → a local receiver,
//! in both capture modes side by side. Prints, per mode: the time to write 100,000
//! changes (the trigger's cost in notify mode), end-to-end events per second for that
//! backlog with `retry = ["0s"]`, commit-to-receipt latency at a steady 1,000 changes per
//! second, rowhook's peak RSS; and `pg_recvlogical`'s rate on the replication WAL as the
//! reference. Run it with `scripts/bench.sh deliver`, which starts a throwaway cluster.

#[path = "../tests/support/receiver.rs"]
#[allow(dead_code)]
mod receiver;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use receiver::Receiver;
use tokio_postgres::{Client, NoTls};

const BACKLOG: u64 = 100_000;
const STEADY_RATE: u64 = 1_000;
const STEADY_SECONDS: u64 = 10;

fn environment(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/bench.sh"))
}

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as i64
}

/// Parses the envelope's `2026-11-22T10:00:00.123456Z` into Unix microseconds.
fn timestamp_micros(text: &str) -> Option<i64> {
    let (date, time) = text.trim_end_matches('Z').split_once('T')?;
    let mut date_parts = date.split('-').map(|part| part.parse::<i64>());
    let (year, month, day) = (
        date_parts.next()?.ok()?,
        date_parts.next()?.ok()?,
        date_parts.next()?.ok()?,
    );
    let (clock, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut clock_parts = clock.split(':').map(|part| part.parse::<i64>());
    let (hour, minute, second) = (
        clock_parts.next()?.ok()?,
        clock_parts.next()?.ok()?,
        clock_parts.next()?.ok()?,
    );
    let micros: i64 = format!("{fraction:0<6}")[..6].parse().ok()?;
    // Days since the epoch, by the usual civil-calendar arithmetic.
    let shifted = if month <= 2 { year - 1 } else { year };
    let era = shifted.div_euclid(400);
    let year_of_era = shifted - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000 + micros)
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The service under test; killed if the benchmark fails half way.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_rowhook(config: &std::path::Path) -> Service {
    let child = Command::new(env!("CARGO_BIN_EXE_rowhook"))
        .arg("--config")
        .arg(config)
        .arg("run")
        .env("ROWHOOK_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start rowhook");
    Service(child)
}

fn stop(mut service: Service) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(service.0.id().to_string())
        .status();
    let _ = service.0.wait();
}

/// Waits for `count` requests without copying them: the receiver shares the machine.
async fn wait_for_requests(receiver: &Receiver, count: usize, limit: Duration) -> Instant {
    let deadline = Instant::now() + limit;
    loop {
        let arrived = receiver.count();
        if arrived >= count {
            return receiver.last_arrival().expect("requests");
        }
        assert!(
            Instant::now() < deadline,
            "only {arrived} of {count} requests arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What one mode measured.
struct Figures {
    write_rate: f64,
    throughput: f64,
    reference_rate: Option<f64>,
    p50: f64,
    p99: f64,
    peak_mib: f64,
}

#[tokio::main]
async fn main() {
    let replication = measure("replication").await;
    let notify = measure("notify").await;
    let reference = replication
        .reference_rate
        .expect("the replication run measures the reference");
    println!();
    println!("delivery benchmark (release build, 2 cores shared with PostgreSQL and the receiver)");
    println!("| measure                                          | replication |      notify |");
    println!("|--------------------------------------------------|-------------|-------------|");
    let row = |name: &str, replication: f64, notify: f64, precision: usize| {
        println!("| {name:<48} | {replication:>11.precision$} | {notify:>11.precision$} |");
    };
    row(
        "rows/s written by INSERT … SELECT (trigger cost)",
        replication.write_rate,
        notify.write_rate,
        0,
    );
    row(
        &format!("end-to-end events/s, {BACKLOG} changes backlog"),
        replication.throughput,
        notify.throughput,
        0,
    );
    row(
        "  / pg_recvlogical rows/s on the same WAL",
        replication.throughput / reference,
        notify.throughput / reference,
        2,
    );
    row(
        &format!("commit-to-receipt p50 at {STEADY_RATE}/s (ms)"),
        replication.p50,
        notify.p50,
        1,
    );
    row(
        &format!("commit-to-receipt p99 at {STEADY_RATE}/s (ms)"),
        replication.p99,
        notify.p99,
        1,
    );
    row(
        "rowhook peak RSS (MiB)",
        replication.peak_mib,
        notify.peak_mib,
        1,
    );
    println!("pg_recvlogical reference: {reference:.0} rows/s");
}

async fn measure(mode: &str) -> Figures {
    let server = environment("ROWHOOK_TEST_DATABASE_URL");
    let bindir = environment("ROWHOOK_TEST_PG_BINDIR");
    let admin = connect(&server).await;
    let database = format!("bench_deliver_{mode}");
    for statement in [
        format!("DROP DATABASE IF EXISTS {database}"),
        format!("CREATE DATABASE {database}"),
    ] {
        admin
            .batch_execute(&statement)
            .await
            .expect("create database");
    }
    let (base, _) = server.rsplit_once('/').expect("database in URL");
    let url = format!("{base}/{database}");
    let client = connect(&url).await;
    // The test cluster defaults to synchronous_commit = off, which lets the walsender
    // see a commit only when the WAL writer flushes (up to 200 ms later); measure
    // latency as a production database would see it.
    client
        .batch_execute("SET synchronous_commit = on")
        .await
        .expect("synchronous commit");
    client
        .batch_execute(
            "CREATE TABLE orders (id bigint PRIMARY KEY, sku text, quantity integer,
                                  price numeric(10, 2), paid boolean, created timestamptz)",
        )
        .await
        .expect("table");
    let receiver = Receiver::start().await;
    // Under the cluster's directory, so the script's cleanup finds anything left behind.
    let directory = std::path::PathBuf::from(environment("ROWHOOK_TEST_TMPDIR"))
        .join(format!("rowhook-bench-{}-{mode}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("bench directory");
    let config = directory.join("rowhook.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nurl = \"{url}\"\nmode = \"{mode}\"\n\n[store]\npath = \"{}\"\n\n\
             [delivery]\nretry = [\"0s\"]\n\n[models.order]\ntable = \"orders\"\n\n\
             [[webhooks]]\nname = \"bench\"\nmodel = \"order\"\nurl = \"{}\"\n",
            directory.join("store").display(),
            receiver.url("/orders"),
        ),
    )
    .expect("config");
    let setup = Command::new(env!("CARGO_BIN_EXE_rowhook"))
        .arg("--config")
        .arg(&config)
        .arg("setup")
        .output()
        .expect("setup");
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let replication = mode == "replication";
    if replication {
        client
            .batch_execute("SELECT pg_create_logical_replication_slot('reference', 'pgoutput')")
            .await
            .expect("reference slot");
    }

    // Throughput: a backlog of changes made while rowhook is stopped, then caught up.
    let writing = Instant::now();
    for first in (1..=BACKLOG).step_by(10_000) {
        client
            .batch_execute(&format!(
                "INSERT INTO orders SELECT n, 'sku-' || n, n % 9, n % 1000 + 0.99, n % 2 = 0, now()
                 FROM generate_series({first}, {}) n",
                first + 9_999
            ))
            .await
            .expect("insert backlog");
    }
    let write_rate = BACKLOG as f64 / writing.elapsed().as_secs_f64();
    let reference_rate = if replication {
        Some(pg_recvlogical_rate(&client, &bindir, &url).await)
    } else {
        None
    };

    let started = Instant::now();
    let rowhook = start_rowhook(&config);
    let last = wait_for_requests(&receiver, BACKLOG as usize, Duration::from_secs(600)).await;
    let throughput = BACKLOG as f64 / (last - started).as_secs_f64();

    // Latency: a steady stream of single-row transactions.
    let before = receiver.count();
    let total = STEADY_RATE * STEADY_SECONDS;
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / STEADY_RATE));
    for offset in 1..=total {
        ticker.tick().await;
        client
            .execute(
                "INSERT INTO orders VALUES ($1, 'steady', 1, 1.00, true, now())",
                &[&((BACKLOG + offset) as i64)],
            )
            .await
            .expect("steady insert");
    }
    wait_for_requests(&receiver, before + total as usize, Duration::from_secs(120)).await;
    let anchor_instant = Instant::now();
    let anchor_micros = now_micros();
    let mut latencies: Vec<f64> = receiver.requests()[before..]
        .iter()
        .filter_map(|request| {
            let committed = timestamp_micros(request.json()["timestamp"].as_str()?)?;
            let received = anchor_micros - (anchor_instant - request.at).as_micros() as i64;
            Some((received - committed) as f64 / 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let percentile =
        |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let peak = peak_rss_kib(rowhook.0.id());
    stop(rowhook);
    receiver.stop();
    let _ = std::fs::remove_dir_all(&directory);
    Figures {
        write_rate,
        throughput,
        reference_rate,
        p50: percentile(0.50),
        p99: percentile(0.99),
        peak_mib: peak as f64 / 1024.0,
    }
}

/// `pg_recvlogical` reading the backlog's WAL from a slot of its own: the reference.
async fn pg_recvlogical_rate(client: &Client, bindir: &str, url: &str) -> f64 {
    let end: String = client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .expect("wal position")
        .get(0);
    let started = Instant::now();
    let status = Command::new(format!("{bindir}/pg_recvlogical"))
        .args(["-d", url, "--slot", "reference", "--start", "--no-loop"])
        .args(["-f", "/dev/null", "--endpos", &end])
        .args(["-o", "proto_version=1", "-o", "publication_names=rowhook"])
        .status()
        .expect("pg_recvlogical");
    assert!(status.success());
    let rate = BACKLOG as f64 / started.elapsed().as_secs_f64();
    client
        .batch_execute("SELECT pg_drop_replication_slot('reference')")
        .await
        .expect("drop the reference slot");
    rate
}
