//! What the delivery benchmark runs on: a throwaway database per scenario, `rowhook run`
//! as a child process, a receiver that counts (so that it costs next to nothing), peak
//! RSS from `/proc`, and `pg_recvlogical` as the reference reader.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_postgres::{Client, NoTls};

pub(crate) fn environment(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/bench.sh"))
}

pub(crate) async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

/// A fresh database on the benchmark cluster, and a directory for its store and config.
pub(crate) struct Database {
    pub name: String,
    pub url: String,
    pub client: Client,
    pub directory: PathBuf,
}

impl Database {
    pub(crate) async fn create(name: &str) -> Database {
        let server = environment("ROWHOOK_TEST_DATABASE_URL");
        let admin = connect(&server).await;
        for statement in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            admin
                .batch_execute(&statement)
                .await
                .expect("create database");
        }
        let (base, _) = server.rsplit_once('/').expect("database in URL");
        let url = format!("{base}/{name}");
        let client = connect(&url).await;
        client
            .batch_execute(
                "CREATE TABLE orders (id bigint PRIMARY KEY, sku text, quantity integer,
                                      price numeric(10, 2), paid boolean, created timestamptz)",
            )
            .await
            .expect("table");
        // Under the cluster's directory, so the script's cleanup finds anything left behind.
        let directory = PathBuf::from(environment("ROWHOOK_TEST_TMPDIR")).join(name);
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).expect("bench directory");
        Database {
            name: name.to_string(),
            url,
            client,
            directory,
        }
    }

    /// Drops the database, its slot and its directory: slots keep WAL, and the next
    /// scenario wants the disk.
    pub(crate) async fn remove(self) {
        let admin = connect(&environment("ROWHOOK_TEST_DATABASE_URL")).await;
        let _ = admin
            .execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                 WHERE slot_name = $1 AND NOT active",
                &[&self.name],
            )
            .await;
        drop(self.client);
        let _ = admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
        let _ = std::fs::remove_dir_all(&self.directory);
    }

    /// Writes a configuration for `mode` delivering every order to `receiver`, with the
    /// store `store` names (`sled`, or `postgres`: tables in this database).
    pub(crate) fn config(
        &self,
        mode: &str,
        store: &str,
        receiver: SocketAddr,
        retention: &str,
    ) -> PathBuf {
        self.config_with("rowhook.toml", mode, store, receiver, retention, "")
    }

    /// Like [`Database::config`], with more `[delivery]` keys, to a file of its own.
    pub(crate) fn config_with(
        &self,
        file_name: &str,
        mode: &str,
        store: &str,
        receiver: SocketAddr,
        retention: &str,
        delivery: &str,
    ) -> PathBuf {
        let path = self.directory.join(file_name);
        // Named only when not the default, which builds from before it was a key accept.
        let backend = match store {
            "sled" => String::new(),
            other => format!("backend = \"{other}\"\n"),
        };
        std::fs::write(
            &path,
            format!(
                "[source]\nurl = \"{}\"\nmode = \"{mode}\"\nslot = \"{}\"\n\n[store]\n\
                 {backend}path = \"{}\"\n\
                 retention = \"{retention}\"\n\n[delivery]\nretry = [\"0s\"]\n{delivery}\n\
                 [models.order]\ntable = \"orders\"\n\n[[webhooks]]\nname = \"bench\"\n\
                 model = \"order\"\nurl = \"http://{receiver}/orders\"\n",
                self.url,
                self.name,
                self.directory.join("store").display(),
            ),
        )
        .expect("config");
        path
    }

    /// `rows` orders with ids from `first`, in one statement (one transaction).
    pub(crate) async fn insert(&self, first: u64, rows: u64) {
        self.client
            .batch_execute(&format!(
                "INSERT INTO orders SELECT n, 'sku-' || n, n % 9, n % 1000 + 0.99, n % 2 = 0, now()
                 FROM generate_series({first}, {}) n",
                first + rows - 1
            ))
            .await
            .expect("insert");
    }

    pub(crate) fn store_bytes(&self) -> u64 {
        directory_bytes(&self.directory.join("store"))
    }
}

fn directory_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(metadata) if metadata.is_dir() => directory_bytes(&entry.path()),
            Ok(metadata) => metadata.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Runs `binary --config config ARGS` to completion.
pub(crate) fn rowhook(binary: &Path, config: &Path, arguments: &[&str]) {
    let output = Command::new(binary)
        .arg("--config")
        .arg(config)
        .args(arguments)
        .output()
        .expect("run rowhook");
    assert!(
        output.status.success(),
        "rowhook {arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `rowhook run` under test; killed if the benchmark fails half way. With
/// `ROWHOOK_BENCH_PERF=DIRECTORY`, `perf record` samples it into `DIRECTORY/<label>.data`;
/// with `ROWHOOK_BENCH_WRAP`, it runs under that command (`heaptrack -o FILE`).
pub(crate) struct Service {
    child: Child,
    profiler: Option<Child>,
}

impl Service {
    pub(crate) fn start(binary: &Path, config: &Path, label: &str) -> Service {
        // `ROWHOOK_BENCH_WRAP="heaptrack -o FILE"` runs rowhook under a tool.
        let wrapper = std::env::var("ROWHOOK_BENCH_WRAP").unwrap_or_default();
        let mut words = wrapper.split_whitespace();
        let mut command = match words.next() {
            Some(tool) => {
                let mut command = Command::new(tool);
                command.args(words).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        let child = command
            .arg("--config")
            .arg(config)
            .arg("run")
            .env("ROWHOOK_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start rowhook");
        let profiler = std::env::var("ROWHOOK_BENCH_PERF").ok().map(|directory| {
            Command::new("perf")
                .args([
                    "record",
                    "-e",
                    "cpu-clock",
                    "-F",
                    "299",
                    "--call-graph",
                    "dwarf,16384",
                    "-o",
                ])
                .arg(Path::new(&directory).join(format!("{label}.data")))
                .arg("-p")
                .arg(child.id().to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start perf record")
        });
        Service { child, profiler }
    }

    /// The process's peak resident memory so far, in MiB.
    pub(crate) fn peak_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        kib as f64 / 1024.0
    }

    /// Bytes the process has had written to disk so far.
    pub(crate) fn written_bytes(&self) -> u64 {
        let io =
            std::fs::read_to_string(format!("/proc/{}/io", self.child.id())).unwrap_or_default();
        io.lines()
            .find_map(|line| line.strip_prefix("write_bytes:"))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    }

    pub(crate) fn stop(mut self) {
        if let Some(mut profiler) = self.profiler.take() {
            let _ = Command::new("kill")
                .arg("-INT")
                .arg(profiler.id().to_string())
                .status();
            let _ = profiler.wait();
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(profiler) = &mut self.profiler {
            let _ = profiler.kill();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Counts requests and, while asked to, measures commit-to-receipt latency from each
/// envelope's `timestamp`. It answers 200 at once and keeps nothing else.
pub(crate) struct CountingReceiver {
    pub address: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    /// How long each answer takes: a slow endpoint bounds delivery.
    delay: Duration,
    count: AtomicU64,
    last: Mutex<Option<Instant>>,
    measuring: AtomicBool,
    latencies_ms: Mutex<Vec<f64>>,
}

impl CountingReceiver {
    pub(crate) async fn start() -> CountingReceiver {
        CountingReceiver::answering_after(Duration::ZERO).await
    }

    /// A receiver that takes `delay` over each answer.
    pub(crate) async fn answering_after(delay: Duration) -> CountingReceiver {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let address = listener.local_addr().expect("receiver address");
        let shared = Arc::new(Shared {
            delay,
            ..Shared::default()
        });
        let server = tokio::spawn(serve(listener, shared.clone()));
        CountingReceiver {
            address,
            shared,
            server,
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.shared.count.load(Ordering::Relaxed)
    }

    /// Waits until `count` requests arrived in all; returns when the last one did.
    pub(crate) async fn wait_for(&self, count: u64, limit: Duration) -> Instant {
        let deadline = Instant::now() + limit;
        loop {
            let arrived = self.count();
            if arrived >= count {
                return self.shared.last.lock().unwrap().expect("requests arrived");
            }
            assert!(
                Instant::now() < deadline,
                "only {arrived} of {count} requests arrived"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub(crate) fn measure_latency(&self, on: bool) {
        self.shared.measuring.store(on, Ordering::SeqCst);
    }

    /// The latencies measured so far, sorted, in milliseconds.
    pub(crate) fn latencies(&self) -> Vec<f64> {
        let mut latencies = self.shared.latencies_ms.lock().unwrap().clone();
        latencies.sort_by(f64::total_cmp);
        latencies
    }
}

impl Drop for CountingReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let shared = shared.clone();
            async move {
                let body = request
                    .into_body()
                    .collect()
                    .await
                    .map(|body| body.to_bytes());
                if shared.measuring.load(Ordering::Relaxed)
                    && let Ok(body) = &body
                    && let Some(latency) = latency_ms(body)
                {
                    shared.latencies_ms.lock().unwrap().push(latency);
                }
                if !shared.delay.is_zero() {
                    tokio::time::sleep(shared.delay).await;
                }
                *shared.last.lock().unwrap() = Some(Instant::now());
                shared.count.fetch_add(1, Ordering::Relaxed);
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                    b"ok",
                ))))
            }
        });
        connections.spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

/// From the envelope's `timestamp` (the commit time) to now.
fn latency_ms(body: &[u8]) -> Option<f64> {
    let envelope: serde_json::Value = serde_json::from_slice(body).ok()?;
    let committed = rowhook::time::unix_micros_from_rfc3339(envelope["timestamp"].as_str()?)?;
    Some((rowhook::time::now_micros() - committed) as f64 / 1000.0)
}

/// `pg_recvlogical` reading `rows` rows' worth of WAL from a slot made before they were
/// written: rows per second.
pub(crate) async fn pg_recvlogical_rate(database: &Database, rows: u64) -> f64 {
    let bindir = environment("ROWHOOK_TEST_PG_BINDIR");
    let end: String = database
        .client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .expect("wal position")
        .get(0);
    let started = Instant::now();
    let status = Command::new(format!("{bindir}/pg_recvlogical"))
        .args([
            "-d",
            &database.url,
            "--slot",
            "reference",
            "--start",
            "--no-loop",
        ])
        .args(["-f", "/dev/null", "--endpos", &end])
        .args(["-o", "proto_version=1", "-o", "publication_names=rowhook"])
        .status()
        .expect("pg_recvlogical");
    assert!(status.success());
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    database
        .client
        .batch_execute("SELECT pg_drop_replication_slot('reference')")
        .await
        .expect("drop the reference slot");
    rate
}

pub(crate) fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * fraction) as usize).min(sorted.len() - 1)]
}
