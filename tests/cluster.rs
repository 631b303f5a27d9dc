//! Several `rowhook run` on one configuration and one PostgreSQL store (CONTRACT §10):
//! 20,000 changes while the capturing instance is killed with -9 twice. Every change is
//! delivered, repeats keep their ids, another instance takes capture over within 15 s
//! each time, and every instance delivers a share.

#[macro_use]
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::receiver::{Receiver, Reply};
use support::{Mode, Service, TestDatabase, free_port, rowhook, text};

const CHANGES: i64 = 20_000;
const PER_TRANSACTION: i64 = 50;
const INSTANCES: usize = 3;
const TAKEOVER_AIM: Duration = Duration::from_secs(15);

/// One instance: its own configuration file (the same but for the admin port).
struct Instance {
    config: PathBuf,
    admin: String,
    service: Option<Service>,
    /// Events delivered by its earlier processes, as last scraped before they died.
    delivered_before: u64,
    delivered: u64,
}

impl Instance {
    async fn health(&self) -> Option<serde_json::Value> {
        let answer = reqwest::get(format!("{}/healthz", self.admin)).await.ok()?;
        serde_json::from_str(&answer.text().await.ok()?).ok()
    }

    async fn is_capturing(&self) -> bool {
        self.health()
            .await
            .is_some_and(|health| health["capture"] == "streaming")
    }

    /// Reads the process's own count of delivered events from `/metrics`.
    async fn scrape(&mut self, token: &str) {
        let (status, body) = support::admin_get(&format!("{}/metrics", self.admin), token).await;
        if status != 200 {
            return;
        }
        if let Some(value) = body
            .lines()
            .find_map(|line| line.strip_prefix("rowhook_events_delivered_total "))
            .and_then(|value| value.trim().parse::<u64>().ok())
        {
            self.delivered = value;
        }
    }
}

const TOKEN: &str = "cluster-token";

/// `count` instances of one configuration (`rest`) on the PostgreSQL store, each with
/// its own admin port; `setup` run once; not started.
fn instances(database: &TestDatabase, rest: &str, count: usize) -> Vec<Instance> {
    let instances: Vec<Instance> = (0..count)
        .map(|index| {
            let port = free_port();
            let admin = format!("[admin]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n\n");
            Instance {
                config: database.write_config_as(
                    &format!("rowhook-{index}.toml"),
                    "postgres",
                    &format!("{admin}{rest}"),
                ),
                admin: format!("http://127.0.0.1:{port}"),
                service: None,
                delivered_before: 0,
                delivered: 0,
            }
        })
        .collect();
    let setup = rowhook(&instances[0].config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    instances
}

/// Starts every instance and waits until one captures.
async fn start_all(database: &TestDatabase, instances: &mut [Instance]) {
    for instance in instances.iter_mut() {
        instance.service = Some(Service::spawn(database, &instance.config));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while capturing(instances).await.is_none() {
        assert!(Instant::now() < deadline, "no instance started capturing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn capturing(instances: &[Instance]) -> Option<usize> {
    for (index, instance) in instances.iter().enumerate() {
        if instance.service.is_some() && instance.is_capturing().await {
            return Some(index);
        }
    }
    None
}

async fn instances_share_delivery_and_take_capture_over(mode: Mode) {
    let receiver = Receiver::start().await;
    let database = TestDatabase::create_in(mode).await;
    database
        .execute("CREATE TABLE orders (id integer PRIMARY KEY, note text)")
        .await;
    let rest = format!(
        "[delivery]\nretry = [\"0s\", \"100ms\", \"500ms\", \"1s\", \"2s\", \"5s\"]\n\n\
         [models.order]\ntable = \"orders\"\n\n\
         [[webhooks]]\nname = \"orders\"\nmodel = \"order\"\nurl = \"{}\"\n",
        receiver.url("/orders")
    );
    let mut instances = instances(&database, &rest, INSTANCES);
    start_all(&database, &mut instances).await;
    // The others stand by once their first try at the slot or lock has been refused.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut roles = Vec::new();
        for instance in &instances {
            let health = instance.health().await.unwrap_or_default();
            roles.push(format!("{}/{}", health["role"], health["capture"]));
        }
        let capturing = roles
            .iter()
            .filter(|role| role.ends_with("\"streaming\""))
            .count();
        let standing_by = roles.iter().filter(|role| role.contains("standby")).count();
        if capturing == 1 && standing_by == INSTANCES - 1 {
            break;
        }
        assert!(
            capturing <= 1 && Instant::now() < deadline,
            "one captures, the others stand by: {roles:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let writer = support::spawn_order_writer(
        &database.url,
        CHANGES,
        PER_TRANSACTION,
        Duration::from_millis(15),
    );

    let mut takeovers = Vec::new();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let victim = capturing(&instances).await.expect("an instance captures");
        instances[victim].scrape(TOKEN).await;
        let killed_at = Instant::now();
        instances[victim].service.take().expect("running").kill();
        instances[victim].delivered_before += instances[victim].delivered;
        instances[victim].delivered = 0;
        let successor = loop {
            if let Some(successor) = capturing(&instances).await {
                break successor;
            }
            assert!(
                killed_at.elapsed() < Duration::from_secs(60),
                "no instance took capture over"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let took = killed_at.elapsed();
        println!(
            "{mode:?}: instance {victim} killed; instance {successor} captures after {:.1} s",
            took.as_secs_f64()
        );
        takeovers.push(took);
        // The killed instance comes back, as a standby.
        instances[victim].service = Some(Service::spawn(&database, &instances[victim].config));
    }
    writer.await.expect("writer");

    support::wait_for_rows(&receiver, CHANGES, Duration::from_secs(240)).await;
    for instance in &mut instances {
        instance.scrape(TOKEN).await;
    }
    let received_count = support::assert_every_row_once_per_id(&receiver, CHANGES);
    let shares: Vec<u64> = instances
        .iter()
        .map(|instance| instance.delivered_before + instance.delivered)
        .collect();
    println!(
        "{mode:?}: {CHANGES} changes, {received_count} requests ({} repeats); delivered per instance \
         {shares:?}; takeovers {:?}",
        received_count as i64 - CHANGES,
        takeovers
            .iter()
            .map(|took| format!("{:.1} s", took.as_secs_f64()))
            .collect::<Vec<_>>()
    );
    assert!(
        takeovers.iter().all(|took| *took < TAKEOVER_AIM),
        "takeover within 15 s: {takeovers:?}"
    );
    assert!(
        shares.iter().filter(|share| **share > 0).count() >= 2,
        "delivery is shared: {shares:?}"
    );
    for instance in &mut instances {
        if let Some(service) = instance.service.take() {
            service.stop();
        }
    }
}

in_both_modes!(
    instances_share_delivery_and_take_capture_over,
    tokio::test(flavor = "multi_thread", worker_threads = 2)
);

/// Starts a backfill of `order` through `instance`'s admin API: the job as created.
async fn start_backfill(instance: &Instance, batch: u32) -> serde_json::Value {
    let started = reqwest::Client::new()
        .post(format!("{}/api/backfills", instance.admin))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(format!(r#"{{"model": "order", "batch": {batch}}}"#))
        .send()
        .await
        .expect("start a backfill");
    let status = started.status();
    let body = started.text().await.unwrap();
    assert_eq!(status, 201, "{body}");
    serde_json::from_str(&body).expect("a job")
}

/// The job, as the admin API of `instance` shows it (`None` while it does not know it).
async fn job_on(instance: &Instance, id: u32) -> Option<serde_json::Value> {
    let (status, body) =
        support::admin_get(&format!("{}/api/backfills/{id}", instance.admin), TOKEN).await;
    (status == 200).then(|| serde_json::from_str(&body).expect("a job"))
}

async fn wait_for_job_on(
    instance: &Instance,
    id: u32,
    until: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let job = job_on(instance, id).await;
        if let Some(job) = &job
            && until(job)
        {
            return job.clone();
        }
        assert!(Instant::now() < deadline, "backfill {id} stuck at {job:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// A job started on one instance is seen on the others, and when its instance dies,
// another goes on from its last stored page: every row sent, repeats with their ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_goes_on_when_its_instance_dies() {
    const ROWS: i64 = 20_000;
    let receiver = Receiver::start().await;
    let database = TestDatabase::create_in(Mode::Replication).await;
    database
        .execute(&format!(
            "CREATE TABLE orders (id integer PRIMARY KEY, note text); \
             INSERT INTO orders SELECT n, 'row ' || n FROM generate_series(1, {ROWS}) n"
        ))
        .await;
    let rest = format!(
        "[models.order]\ntable = \"orders\"\n\n\
         [[webhooks]]\nname = \"orders\"\nmodel = \"order\"\nurl = \"{}\"\n",
        receiver.url("/orders")
    );
    let mut instances = instances(&database, &rest, 2);
    start_all(&database, &mut instances).await;
    start_backfill(&instances[0], 200).await;
    wait_for_job_on(&instances[0], 1, |job| {
        job["rows_done"].as_u64() >= Some(2_000)
    })
    .await;
    let seen = wait_for_job_on(&instances[1], 1, |_| true).await;
    assert_eq!(seen["model"], "order", "the other instance knows the job");

    instances[0].service.take().expect("running").kill();
    let killed_at = Instant::now();
    let done = wait_for_job_on(&instances[1], 1, |job| job["state"] == "done").await;
    println!(
        "backfill of {ROWS} rows finished by the other instance {:.1} s after the kill",
        killed_at.elapsed().as_secs_f64()
    );
    assert!(done["rows_done"].as_u64() >= Some(ROWS as u64), "{done}");
    support::wait_for_rows(&receiver, ROWS, Duration::from_secs(120)).await;
    support::assert_every_row_once_per_id(&receiver, ROWS);
    // The next job, started on the survivor, takes the next id.
    let second = start_backfill(&instances[1], 10).await;
    assert_eq!(second["id"], 2, "ids continue across instances");
    for instance in &mut instances {
        if let Some(service) = instance.service.take() {
            service.stop();
        }
    }
}

// Instances on different configurations are explained, not refused: one whose file
// does not name a webhook with pending events says so at start and leaves them alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_configuration_is_named_at_start() {
    let receiver = Receiver::start().await;
    receiver.respond_with(|_| Reply::Status(503));
    let database = TestDatabase::create_in(Mode::Replication).await;
    database
        .execute("CREATE TABLE orders (id integer PRIMARY KEY)")
        .await;
    let webhook = |name: &str| {
        format!(
            "[delivery]\nretry = [\"0s\", \"1h\"]\n\n[models.order]\ntable = \"orders\"\n\n\
             [[webhooks]]\nname = \"{name}\"\nmodel = \"order\"\nurl = \"{}\"\n",
            receiver.url("/orders")
        )
    };
    let first = database.write_config_as("first.toml", "postgres", &webhook("to-crm"));
    let setup = rowhook(&first, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let service = Service::start(&database, &first).await;
    database.execute("INSERT INTO orders VALUES (1)").await;
    support::eventually("the first attempt", Duration::from_secs(20), || async {
        receiver.count() >= 1
    })
    .await;
    service.stop();

    let second = database.write_config_as("second.toml", "postgres", &webhook("to-shop"));
    let service = Service::start(&database, &second).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log = service.log_text();
    assert!(
        log.contains("webhook=to-crm") && log.contains("does not name"),
        "{log}"
    );
    assert_eq!(
        receiver.count(),
        1,
        "its events are left for an instance that knows it"
    );
    service.stop();
}
