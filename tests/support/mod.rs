//! Test support: a database per test on the cluster `scripts/test.sh` started, private
//! clusters for tests that restart or reconfigure PostgreSQL, and running the binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        nanos
    )
}

pub(crate) fn require_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through scripts/test.sh, which starts PostgreSQL")
    })
}

/// Replaces the database name in a `postgres://…/name` URL.
pub(crate) fn with_database(url: &str, database: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("test URL has a database part");
    format!("{base}/{database}")
}

pub(crate) async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {url}: {error}"));
    tokio::spawn(connection);
    client
}

/// How the service under test captures changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Replication,
    Notify,
}

/// Runs an end-to-end scenario `async fn name(mode: Mode)` once per capture mode, as the
/// tests `name::replication` and `name::notify`. A second argument gives the test
/// attribute, e.g. `tokio::test(flavor = "multi_thread", worker_threads = 2)`.
#[macro_export]
macro_rules! in_both_modes {
    ($scenario:ident) => {
        in_both_modes!($scenario, tokio::test);
    };
    ($scenario:ident, $($attribute:tt)+) => {
        mod $scenario {
            #[$($attribute)+]
            async fn replication() {
                super::$scenario(super::support::Mode::Replication).await
            }
            #[$($attribute)+]
            async fn notify() {
                super::$scenario(super::support::Mode::Notify).await
            }
        }
    };
}

/// A fresh database on the shared test cluster, and a scratch directory for the test.
pub(crate) struct TestDatabase {
    pub mode: Mode,
    pub name: String,
    pub url: String,
    pub client: Client,
    pub directory: PathBuf,
}

impl TestDatabase {
    pub(crate) async fn create() -> TestDatabase {
        Self::create_in(Mode::Replication).await
    }

    /// A database whose config (`write_config`) captures in `mode`.
    pub(crate) async fn create_in(mode: Mode) -> TestDatabase {
        let mut database = Self::create_on(&require_env("ROWHOOK_TEST_DATABASE_URL")).await;
        database.mode = mode;
        database
    }

    pub(crate) async fn create_on(server_url: &str) -> TestDatabase {
        let name = format!("test_{}", unique_suffix());
        let admin = connect(server_url).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let url = with_database(server_url, &name);
        let client = connect(&url).await;
        let directory = std::env::temp_dir().join(format!("rowhook-{name}"));
        std::fs::create_dir_all(&directory).expect("create test directory");
        TestDatabase {
            mode: Mode::Replication,
            name,
            url,
            client,
            directory,
        }
    }

    /// Writes a config file whose `[source]` points at this database, followed by `rest`.
    /// A configuration of this database with `rest` appended. The store is the one
    /// `ROWHOOK_TEST_STORE` names (`sled`, the default, or `postgres`: tables in this
    /// database), so that the whole suite runs against either backend.
    pub(crate) fn write_config(&self, rest: &str) -> PathBuf {
        self.write_config_as("rowhook.toml", &store_backend(), rest)
    }

    /// Like [`TestDatabase::write_config`], to a file of this name, with this store
    /// backend whatever the environment says.
    pub(crate) fn write_config_as(&self, file_name: &str, backend: &str, rest: &str) -> PathBuf {
        let path = self.directory.join(file_name);
        let text = format!(
            "[source]\nurl = \"{}\"\nmode = \"{}\"\nslot = \"{}\"\npublication = \"{}\"\n\n[store]\n{}path = \"{}\"\n\n{rest}",
            self.url,
            match self.mode {
                Mode::Replication => "replication",
                Mode::Notify => "notify",
            },
            self.name,
            self.name,
            store_backend_line(backend),
            self.directory.join("store").display()
        );
        std::fs::write(&path, text).expect("write config");
        path
    }

    pub(crate) async fn execute(&self, sql: &str) {
        self.client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error:?}"));
    }
}

/// Which store backend the tests run against.
pub(crate) fn store_backend() -> String {
    std::env::var("ROWHOOK_TEST_STORE").unwrap_or_else(|_| "sled".to_string())
}

fn store_backend_line(backend: &str) -> String {
    match backend {
        "sled" => String::new(),
        other => format!("backend = \"{other}\"\n"),
    }
}

pub(crate) fn rowhook_binary() -> &'static str {
    env!("CARGO_BIN_EXE_rowhook")
}

/// Runs `rowhook --config CONFIG ARGS…` to completion.
pub(crate) fn rowhook(config: &Path, arguments: &[&str]) -> Output {
    Command::new(rowhook_binary())
        .arg("--config")
        .arg(config)
        .args(arguments)
        .stdin(Stdio::null())
        .output()
        .expect("run rowhook")
}

/// GET `url` with the admin token: the status and the body as text.
pub(crate) async fn admin_get(url: &str, token: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {url}: {error}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Waits until `condition` holds, polling; panics with `what` after `limit`.
pub(crate) async fn eventually<F, Fut>(what: &str, limit: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !condition().await {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until a walsender is streaming from `slot`.
pub(crate) async fn wait_until_slot_active(client: &Client, slot: &str) {
    eventually(
        "the slot to be streaming",
        Duration::from_secs(30),
        || async {
            client
                .query_opt(
                    "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active",
                    &[&slot],
                )
                .await
                .map(|row| row.is_some())
                .unwrap_or(false)
        },
    )
    .await;
}

/// Waits until a rowhook session of `database` that started at or after `since` has read
/// the outbox, which it does only after it LISTENs. Sessions of earlier commands (`setup`,
/// `check`) mention the outbox too, and stay listed for a moment after they exit.
pub(crate) async fn wait_until_draining(
    client: &Client,
    database: &str,
    since: std::time::SystemTime,
) {
    let since = since
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    eventually(
        "rowhook to read the outbox",
        Duration::from_secs(30),
        || async {
            client
                .query_opt(
                    "SELECT 1 FROM pg_stat_activity WHERE datname = $1
                     AND application_name = 'rowhook' AND query LIKE '%rowhook.outbox%'
                     AND backend_start >= to_timestamp($2)",
                    &[&database, &since],
                )
                .await
                .map(|row| row.is_some())
                .unwrap_or(false)
        },
    )
    .await;
}

/// A private PostgreSQL cluster for tests that restart or reconfigure the server. It is
/// stopped on drop; `scripts/test.sh` also stops any that a crashed test left behind.
pub(crate) struct PrivateCluster {
    pub data: PathBuf,
    pub port: u16,
    bindir: PathBuf,
}

fn as_owner(program: &Path) -> Command {
    // initdb and postgres refuse to run as root.
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|output| text(&output.stdout).trim() == "0")
        .unwrap_or(false);
    if is_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("find a free port")
}

impl PrivateCluster {
    /// Initialises and starts a cluster; `settings` are appended to postgresql.conf.
    pub(crate) fn start(settings: &str) -> PrivateCluster {
        let bindir = PathBuf::from(require_env("ROWHOOK_TEST_PG_BINDIR"));
        let root = PathBuf::from(require_env("ROWHOOK_TEST_TMPDIR"))
            .join("clusters")
            .join(unique_suffix());
        std::fs::create_dir_all(&root).expect("create cluster directory");
        let _ = Command::new("chown")
            .args(["-R", "postgres:"])
            .arg(root.parent().expect("clusters directory"))
            .status();
        let data = root.join("data");
        let status = as_owner(&bindir.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run initdb");
        assert!(status.success(), "initdb failed");
        let port = free_port();
        let configuration = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             fsync = off\nmax_wal_senders = 20\nmax_replication_slots = 20\n{settings}\n",
            root.display()
        );
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .expect("open postgresql.conf");
        std::io::Write::write_all(&mut file, configuration.as_bytes()).expect("configure");
        let cluster = PrivateCluster { data, port, bindir };
        cluster.pg_ctl(&["start", "-w", "-t", "60"]);
        cluster
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, arguments: &[&str]) {
        let log = self
            .data
            .parent()
            .expect("cluster root")
            .join("postgres.log");
        let status = as_owner(&self.bindir.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&log)
            .args(arguments)
            .stdout(Stdio::null())
            .status()
            .expect("run pg_ctl");
        assert!(status.success(), "pg_ctl {arguments:?} failed");
    }

    pub(crate) fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast", "-w"]);
    }

    pub(crate) fn start_again(&self) {
        self.pg_ctl(&["start", "-w", "-t", "60"]);
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = as_owner(&self.bindir.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["stop", "-m", "immediate", "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `rowhook tail` running in the background, its stdout read line by line.
pub(crate) struct Tail {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Tail {
    /// Starts tailing and waits until its temporary slot is streaming (or, in notify mode,
    /// it reads the outbox), so that every change made after this returns is seen.
    pub(crate) async fn start(database: &TestDatabase, config: &Path) -> Tail {
        let since = std::time::SystemTime::now();
        let mut child = Command::new(rowhook_binary())
            .arg("--config")
            .arg(config)
            .arg("tail")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start rowhook tail");
        let stdout = child.stdout.take().expect("tail stdout");
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        match database.mode {
            Mode::Replication => {
                let slot = format!("rowhook_tail_{}", child.id());
                wait_until_slot_active(&database.client, &slot).await;
            }
            Mode::Notify => wait_until_draining(&database.client, &database.name, since).await,
        }
        Tail { child, lines }
    }

    /// The next JSON line, or a panic after `limit`.
    pub(crate) fn next_json(&self, limit: Duration) -> serde_json::Value {
        let line = self
            .lines
            .recv_timeout(limit)
            .expect("a line from rowhook tail in time");
        serde_json::from_str(&line).unwrap_or_else(|error| panic!("{line}: {error}"))
    }

    /// Lines until none arrives for `quiet`.
    pub(crate) fn drain(&self, quiet: Duration) -> Vec<serde_json::Value> {
        let mut values = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(quiet) {
            values.push(serde_json::from_str(&line).expect("tail prints JSON"));
        }
        values
    }

    pub(crate) fn count_lines(&self, expected: usize, limit: Duration) -> usize {
        let started = Instant::now();
        let mut count = 0;
        while count < expected && started.elapsed() < limit {
            if self.lines.recv_timeout(Duration::from_secs(1)).is_ok() {
                count += 1;
            }
        }
        count
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The peak resident memory of a running process, in kibibytes.
pub(crate) fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc status")
}
pub(crate) mod proxy;
pub(crate) mod receiver;

/// `rowhook run` in the background.
pub(crate) struct Service {
    child: std::process::Child,
    pub log: PathBuf,
}

impl Service {
    /// Starts `rowhook run` and waits until it captures: its slot streaming, or (notify
    /// mode) its session listening and reading the outbox.
    pub(crate) async fn start(database: &TestDatabase, config: &Path) -> Service {
        let since = std::time::SystemTime::now();
        let service = Self::spawn(database, config);
        match database.mode {
            Mode::Replication => wait_until_slot_active(&database.client, &database.name).await,
            Mode::Notify => wait_until_draining(&database.client, &database.name, since).await,
        }
        service
    }

    /// Starts `rowhook run` without waiting for anything.
    pub(crate) fn spawn(database: &TestDatabase, config: &Path) -> Service {
        let log = database
            .directory
            .join(format!("run-{}.log", unique_suffix()));
        let log_file = std::fs::File::create(&log).expect("create log");
        let child = Command::new(rowhook_binary())
            .arg("--config")
            .arg(config)
            .arg("run")
            .env("ROWHOOK_LOG", "rowhook=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start rowhook run");
        Service { child, log }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits for a clean exit.
    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let status = self.child.wait().expect("wait for rowhook");
        assert!(
            status.success(),
            "rowhook run exited with {status}: {}",
            self.log_text()
        );
        status
    }

    /// SIGTERM, then waits at most `limit` for the process to exit: its exit status (or
    /// `None`, and then it is killed) and how long it took.
    pub(crate) fn stop_within(
        mut self,
        limit: Duration,
    ) -> (Option<std::process::ExitStatus>, Duration) {
        let started = Instant::now();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        while started.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (Some(status), started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (None, started.elapsed())
    }

    /// SIGKILL: a crash.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit by itself.
    pub(crate) fn wait(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().expect("wait for rowhook");
        (status, self.log_text())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks that every row from 1 to `changes` reached `receiver` (as `item.id`) and that
/// all its requests carried one event id; returns how many requests arrived.
pub(crate) fn assert_every_row_once_per_id(receiver: &receiver::Receiver, changes: i64) -> usize {
    let requests = receiver.requests();
    let mut ids_by_row: std::collections::BTreeMap<i64, std::collections::BTreeSet<String>> =
        std::collections::BTreeMap::new();
    for request in &requests {
        let body = request.json();
        let row = body["item"]["id"].as_i64().expect("row id");
        let header_id = request.header("webhook-id").expect("event id").to_string();
        assert_eq!(body["id"], header_id, "body and header carry the same id");
        ids_by_row.entry(row).or_default().insert(header_id);
    }
    let missing: Vec<i64> = (1..=changes)
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
        "a repeat carried another id: {unstable:?}"
    );
    requests.len()
}

/// Writes orders 1 to `changes` (`id`, `note`), `per_transaction` rows per transaction
/// with `pause` between them, in a task of its own.
pub(crate) fn spawn_order_writer(
    url: &str,
    changes: i64,
    per_transaction: i64,
    pause: Duration,
) -> tokio::task::JoinHandle<()> {
    let url = url.to_string();
    tokio::spawn(async move {
        let client = connect(&url).await;
        for first in (1..=changes).step_by(per_transaction as usize) {
            client
                .batch_execute(&format!(
                    "INSERT INTO orders SELECT n, 'row ' || n FROM generate_series({first}, {}) n",
                    first + per_transaction - 1
                ))
                .await
                .expect("insert");
            tokio::time::sleep(pause).await;
        }
    })
}

/// Waits (at most `limit`) until orders 1 to `changes` have all reached `receiver`.
pub(crate) async fn wait_for_rows(receiver: &receiver::Receiver, changes: i64, limit: Duration) {
    let rows_seen = || {
        receiver
            .requests()
            .iter()
            .filter_map(|request| request.json()["item"]["id"].as_i64())
            .collect::<std::collections::BTreeSet<i64>>()
            .len()
    };
    let deadline = Instant::now() + limit;
    while rows_seen() < changes as usize && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
