//! The attempt log as admins use it: the admin server (auth, JSON API, pages, health,
//! metrics) and the `events` and `send-test` commands, with `rowhook run` running and
//! without it, against a real PostgreSQL and a real receiver.

#[macro_use]
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use support::receiver::{Receiver, Reply};
use support::{Mode, Service, TestDatabase, rowhook, text};

const TOKEN: &str = "admin-token-123";
const WAIT: Duration = Duration::from_secs(30);

struct Admin {
    base: String,
    client: reqwest::Client,
}

impl Admin {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("admin server answers")
    }

    async fn json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        parse(response).await
    }

    async fn post(&self, path: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("admin server answers")
    }
}

async fn parse(response: reqwest::Response) -> Value {
    let body = response.text().await.expect("a body");
    serde_json::from_str(&body).unwrap_or_else(|error| panic!("{error}: {body}"))
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn prepared(
    mode: Mode,
    receiver: &Receiver,
    port: u16,
) -> (TestDatabase, std::path::PathBuf) {
    let database = TestDatabase::create_in(mode).await;
    database
        .execute("CREATE TABLE orders (id integer PRIMARY KEY, status text)")
        .await;
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("ROWHOOK_TEST_WAREHOUSE_TOKEN", "warehouse-secret") };
    let config = database.write_config(&format!(
        "[admin]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n\n\
         [delivery]\nretry = [\"0s\"]\n\n[models.order]\ntable = \"orders\"\n\n\
         [[webhooks]]\nname = \"warehouse\"\nmodel = \"order\"\nurl = \"{}\"\n\
         secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n\
         headers = {{ Authorization = \"Bearer ${{ROWHOOK_TEST_WAREHOUSE_TOKEN}}\" }}\n\n\
         [[webhooks]]\nname = \"broken\"\nmodel = \"order\"\nurl = \"{}\"\n",
        receiver.url("/warehouse"),
        receiver.url("/broken"),
    ));
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    (database, config)
}

fn json_output(config: &std::path::Path, arguments: &[&str]) -> Value {
    let output = rowhook(config, arguments);
    assert!(
        output.status.success(),
        "{arguments:?}: {}",
        text(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("{arguments:?}: {error}"))
}

async fn admins_read_and_fix_the_history(mode: Mode) {
    let receiver = Receiver::start().await;
    receiver.respond_with(|request| {
        if request.target == "/broken" {
            Reply::Status(500)
        } else {
            Reply::Status(200)
        }
    });
    let port = free_port();
    let (database, config) = prepared(mode, &receiver, port).await;
    let service = Service::start(&database, &config).await;
    let admin = Admin {
        base: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
    };

    database
        .execute("INSERT INTO orders SELECT n, 'new' FROM generate_series(1, 120) n")
        .await;
    receiver.wait_for(240, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Authentication: nothing but health and metrics without the token.
    for path in ["/api/webhooks", "/api/events", "/", "/webhooks/warehouse"] {
        let anonymous = admin
            .client
            .get(format!("{}{path}", admin.base))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401, "{path}");
        assert!(
            anonymous.headers().contains_key("www-authenticate"),
            "{path}"
        );
        let wrong = admin
            .client
            .get(format!("{}{path}", admin.base))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
    }
    let basic = admin
        .client
        .get(format!("{}/api/webhooks", admin.base))
        .basic_auth("anyone", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 200);
    let health = admin
        .client
        .get(format!("{}/healthz", admin.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let health: Value = parse(health).await;
    assert_eq!(health["capture"], "streaming");

    // Webhooks with their counts.
    let webhooks = admin.json("/api/webhooks").await;
    let counts = |name: &str| {
        webhooks
            .as_array()
            .unwrap()
            .iter()
            .find(|webhook| webhook["name"] == name)
            .expect("webhook listed")["counts"]
            .clone()
    };
    assert_eq!(counts("warehouse")["delivered"], 120);
    assert_eq!(counts("broken")["failed"], 120);

    // Paging through more events than a page holds.
    let mut seen = BTreeSet::new();
    let mut path = "/api/events?webhook=warehouse&limit=50".to_string();
    let mut pages = 0;
    loop {
        let page = admin.json(&path).await;
        pages += 1;
        for event in page["events"].as_array().unwrap() {
            assert!(
                seen.insert(event["id"].as_str().unwrap().to_string()),
                "no event twice"
            );
        }
        match page["next_before"].as_u64() {
            Some(before) => {
                path = format!("/api/events?webhook=warehouse&limit=50&before={before}")
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 120);
    assert_eq!(pages, 3);

    // One event in detail: the request with secrets masked, and its attempt.
    let failed = admin
        .json("/api/events?webhook=broken&status=failed&limit=1")
        .await;
    let failed_id = failed["events"][0]["id"].as_str().unwrap().to_string();
    let detail = admin.json(&format!("/api/events/{failed_id}")).await;
    let detail_text = detail.to_string();
    assert_eq!(detail["attempts"][0]["status_code"], 500);
    assert_eq!(detail["attempts"][0]["outcome"], "status");
    let delivered = seen.iter().next().unwrap().clone();
    let warehouse = admin
        .json(&format!("/api/events/{delivered}"))
        .await
        .to_string();
    for secret in ["warehouse-secret", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
        assert!(!warehouse.contains(secret), "{secret} leaked: {warehouse}");
        assert!(!detail_text.contains(secret));
    }
    assert_eq!(admin.get("/api/events/evt_nope").await.status(), 404);

    // Redelivery: a new attempt with the same event id.
    receiver.respond_with(|_| Reply::Status(200));
    let before = receiver.count();
    let queued = admin
        .post(&format!("/api/events/{failed_id}/redeliver"))
        .await;
    assert_eq!(queued.status(), 202);
    let requests = receiver.wait_for(before + 1, WAIT).await;
    assert_eq!(
        requests.last().unwrap().header("webhook-id"),
        Some(failed_id.as_str())
    );
    support::eventually("the redelivery to be recorded", WAIT, || {
        let client = admin.client.clone();
        let url = format!("{}/api/events/{failed_id}", admin.base);
        async move {
            let detail: Value =
                parse(client.get(url).bearer_auth(TOKEN).send().await.unwrap()).await;
            detail["status"] == "delivered" && detail["attempts"].as_array().unwrap().len() == 2
        }
    })
    .await;

    // Pages, and the redeliver button.
    for path in [
        "/",
        "/webhooks/broken?status=failed",
        &format!("/events/{failed_id}"),
    ] {
        let page = admin.get(path).await;
        assert_eq!(page.status(), 200, "{path}");
        let html = page.text().await.unwrap();
        assert!(
            html.contains("<html") || html.contains("<!DOCTYPE") || html.contains("<!doctype"),
            "{path}"
        );
        assert!(!html.contains("warehouse-secret"), "{path}");
    }
    let event_page = admin
        .get(&format!("/events/{failed_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(event_page.contains(&format!("/events/{failed_id}/redeliver")));
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let button = no_redirects
        .post(format!("{}/events/{failed_id}/redeliver", admin.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(button.status(), 303);

    // The CLI goes through the admin API while `run` holds the store.
    let listed = json_output(
        &config,
        &[
            "events",
            "list",
            "--webhook",
            "warehouse",
            "--limit",
            "5",
            "--json",
        ],
    );
    assert_eq!(listed.as_array().unwrap().len(), 5);
    let shown = json_output(&config, &["events", "show", &failed_id, "--json"]);
    assert_eq!(shown["id"], failed_id);
    let redeliver = rowhook(&config, &["events", "redeliver", &failed_id]);
    assert!(redeliver.status.success(), "{}", text(&redeliver.stderr));

    // Metrics match what the receiver saw.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let metrics = admin
        .client
        .get(format!("{}/metrics", admin.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    let received = receiver.count() as u64;
    assert_eq!(value("rowhook_changes_captured_total"), 120);
    assert_eq!(value("rowhook_events_created_total"), 240);
    let attempts: u64 = metrics
        .lines()
        .filter(|line| line.starts_with("rowhook_attempts_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(
        attempts, received,
        "every request the receiver saw is an attempt"
    );
    assert_eq!(value("rowhook_attempts_total{outcome=\"status\"}"), 120);
    service.stop();

    // Without `run`, the CLI reads the store itself.
    let table = rowhook(
        &config,
        &[
            "events",
            "list",
            "--webhook",
            "broken",
            "--status",
            "failed",
        ],
    );
    assert!(table.status.success(), "{}", text(&table.stderr));
    assert!(text(&table.stdout).contains("failed"));
    let shown = rowhook(&config, &["events", "show", &delivered]);
    let shown_text = text(&shown.stdout);
    assert!(shown.status.success());
    assert!(
        shown_text.contains(&delivered) && !shown_text.contains("warehouse-secret"),
        "{shown_text}"
    );
    let bulk = rowhook(
        &config,
        &[
            "events",
            "redeliver",
            "--webhook",
            "broken",
            "--status",
            "failed",
        ],
    );
    assert!(bulk.status.success(), "{}", text(&bulk.stderr));
    assert!(text(&bulk.stdout).contains("119"), "{}", text(&bulk.stdout));
    let missing = rowhook(&config, &["events", "show", "evt_nope"]);
    assert_eq!(missing.status.code(), Some(1));
}

// Several threads: the receiver must answer while the test waits for the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_renders_a_sample_and_sends_it_once() {
    let receiver = Receiver::start().await;
    let (database, config) = prepared(Mode::Replication, &receiver, free_port()).await;
    database
        .execute("INSERT INTO orders VALUES (7, 'paid'), (3, 'new')")
        .await;

    let sent = rowhook(&config, &["send-test", "warehouse"]);
    assert!(sent.status.success(), "{}", text(&sent.stderr));
    let requests = receiver.wait_for(1, WAIT).await;
    assert_eq!(requests[0].json()["item"]["id"], 7, "the newest row by key");
    assert!(!text(&sent.stdout).contains("warehouse-secret"));
    assert!(text(&sent.stdout).contains("200"), "{}", text(&sent.stdout));

    let item = rowhook(
        &config,
        &[
            "send-test",
            "warehouse",
            "--item",
            r#"{"id": 42, "status": "test"}"#,
        ],
    );
    assert!(item.status.success(), "{}", text(&item.stderr));
    let requests = receiver.wait_for(2, WAIT).await;
    assert_eq!(requests[1].json()["item"]["id"], 42);

    receiver.respond_with(|_| Reply::Status(500));
    let failing = rowhook(&config, &["send-test", "broken"]);
    assert_eq!(failing.status.code(), Some(1));
    let unknown = rowhook(&config, &["send-test", "nobody"]);
    assert_eq!(unknown.status.code(), Some(2));
}

in_both_modes!(
    admins_read_and_fix_the_history,
    tokio::test(flavor = "multi_thread", worker_threads = 2)
);
