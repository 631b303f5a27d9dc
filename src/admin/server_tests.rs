//! The server end to end over TCP: a temporary store, a parsed config, reqwest.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::watch;

use super::*;
use crate::change::Lsn;
use crate::shutdown::{self, ShutdownTrigger};
use crate::source::stage::CaptureState;
use crate::store::records::{
    AttemptRecord, ErrorKind, EventRecord, Schedule, Status, StoredRequest,
};

const TOKEN: &str = "s3cret-token";

struct Harness {
    base: String,
    client: reqwest::Client,
    store: Arc<Store>,
    capture: watch::Sender<CaptureStatus>,
    trigger: ShutdownTrigger,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    directory: PathBuf,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

fn config() -> Config {
    let text = format!(
        r#"
[source]
url = "postgres://u:pw@localhost/db"
[admin]
listen = "127.0.0.1:0"
token = "{TOKEN}"
[models.order]
table = "orders"
[[webhooks]]
name = "hook"
model = "order"
url = "https://user:hunter2@example.com/hook"
headers = {{ Authorization = "Bearer abc" }}
[[webhooks]]
name = "other"
model = "order"
url = "https://example.com/other"
"#
    );
    crate::config::parse(Path::new("rowhook.toml"), &text, &|_| None).unwrap()
}

fn event(store: &Store, id: &str, webhook: &str) -> EventRecord {
    EventRecord {
        id: id.to_string(),
        webhook: webhook.to_string(),
        model: "order".into(),
        kind: "order.created".into(),
        envelope: None,
        request: StoredRequest {
            method: "POST".into(),
            url: "https://user:hunter2@example.com/hook".into(),
            headers: vec![("Authorization".into(), "Bearer abc".into())],
            body: Some(r#"{"note":"<script>alert(1)</script>"}"#.into()),
        },
        created_at_ms: 1_000,
        sequence: store.next_sequence().unwrap(),
        status: Status::Pending,
        attempts: 0,
        schedule: Schedule::Regular,
        next_attempt_at_ms: Some(1_000),
        last_status_code: None,
        last_error: None,
        finished_at_ms: None,
        render_error: None,
    }
}

fn fail(store: &Store, id: &str) {
    let attempt = AttemptRecord {
        number: 1,
        started_at_ms: 2_000,
        duration_ms: 15,
        status_code: Some(500),
        error_kind: Some(ErrorKind::Status),
        error: Some("status 500".into()),
        response_body: "<b>oops</b>".into(),
    };
    store.finish_attempt(id, &attempt, None, 2_100).unwrap();
}

async fn start() -> Harness {
    let directory = std::env::temp_dir().join(format!(
        "rowhook-admin-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let store = Arc::new(Store::open(&directory).unwrap());
    let (capture, capture_receiver) = watch::channel(CaptureStatus::default());
    let (trigger, shutdown) = shutdown::channel();
    let state = AdminState {
        config: Arc::new(config()),
        store: store.clone(),
        metrics: Arc::new(Metrics::default()),
        capture: capture_receiver,
        waker: DispatchWaker::default(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve(listener, state, shutdown));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Harness {
        base: format!("http://{address}"),
        client,
        store,
        capture,
        trigger,
        server,
        directory,
    }
}

impl Harness {
    async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    async fn post(&self, path: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .basic_auth("admin", Some(TOKEN))
            .send()
            .await
            .unwrap()
    }

    async fn json(&self, path: &str) -> (StatusCode, Value) {
        let (status, text) = self.get(path).await;
        (status, serde_json::from_str(&text).unwrap())
    }
}

#[tokio::test]
async fn token_required_except_for_probes() {
    let harness = start().await;
    let url = format!("{}/api/webhooks", harness.base);
    let missing = harness.client.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        missing.headers()["www-authenticate"],
        "Basic realm=\"rowhook\""
    );
    let wrong = harness.client.get(&url).bearer_auth("nope");
    assert_eq!(wrong.send().await.unwrap().status(), 401);
    let page = harness.client.get(format!("{}/", harness.base));
    assert_eq!(page.send().await.unwrap().status(), 401);
    let basic = harness.client.get(&url).basic_auth("anyone", Some(TOKEN));
    assert_eq!(basic.send().await.unwrap().status(), 200);

    let metrics = harness.client.get(format!("{}/metrics", harness.base));
    let metrics = metrics.send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert_eq!(
        metrics.headers()["content-type"],
        "text/plain; version=0.0.4"
    );
    assert!(metrics.text().await.unwrap().contains("rowhook_"));
}

#[tokio::test]
async fn health_follows_capture() {
    let harness = start().await;
    let health = format!("{}/healthz", harness.base);
    let response = harness.client.get(&health).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["capture"], "connecting");

    harness.capture.send_replace(CaptureStatus {
        state: CaptureState::Streaming,
        last_error: None,
        server_sent: Lsn(0x16B3750),
        confirmed: Lsn(0x16B3748),
    });
    let response = harness.client.get(&health).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["capture"], "streaming");
    assert_eq!(body["confirmed_lsn"], "0/16B3748");
    assert_eq!(body["server_lsn"], "0/16B3750");
}

#[tokio::test]
async fn events_listing_pages_and_validates() {
    let harness = start().await;
    for id in ["evt_1", "evt_2", "evt_3"] {
        harness
            .store
            .insert(&event(&harness.store, id, "hook"))
            .unwrap();
    }
    fail(&harness.store, "evt_1");

    let (status, webhooks) = harness.json("/api/webhooks").await;
    assert_eq!(status, 200);
    assert_eq!(webhooks[0]["counts"]["pending"], 2);
    assert!(!webhooks.to_string().contains("hunter2"));

    let (status, page) = harness.json("/api/events?webhook=hook&limit=2").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["evt_3", "evt_2"]);
    let before = page["next_before"].as_u64().unwrap();
    let (_, rest) = harness
        .json(&format!("/api/events?webhook=hook&limit=2&before={before}"))
        .await;
    assert_eq!(rest["events"][0]["id"], "evt_1");
    assert!(rest["next_before"].is_null());

    let (_, failed) = harness.json("/api/events?status=failed").await;
    assert_eq!(failed["events"].as_array().unwrap().len(), 1);

    for bad in [
        "status=lost",
        "limit=0",
        "limit=501",
        "limit=x",
        "before=-1",
    ] {
        let (status, body) = harness.json(&format!("/api/events?{bad}")).await;
        assert_eq!(status, 400, "{bad}");
        assert!(
            body["error"].as_str().unwrap().contains("invalid"),
            "{body}"
        );
    }

    let (status, detail) = harness.json("/api/events/evt_1").await;
    assert_eq!(status, 200);
    assert_eq!(detail["attempts"][0]["status_code"], 500);
    assert!(!detail.to_string().contains("Bearer abc"));
    let (status, _) = harness.json("/api/events/evt_missing").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn redelivery_one_and_many() {
    let harness = start().await;
    for id in ["evt_1", "evt_2", "evt_3"] {
        harness
            .store
            .insert(&event(&harness.store, id, "hook"))
            .unwrap();
        fail(&harness.store, id);
    }
    let mut broken = event(&harness.store, "evt_broken", "hook");
    broken.render_error = Some("template error".into());
    harness.store.insert(&broken).unwrap();

    let response = harness.post("/api/events/evt_1/redeliver").await;
    assert_eq!(response.status(), 202);
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"id": "evt_1", "status": "pending"})
    );
    assert_eq!(
        harness.post("/api/events/nope/redeliver").await.status(),
        404
    );
    let conflict = harness.post("/api/events/evt_broken/redeliver").await;
    assert_eq!(conflict.status(), 409);
    assert!(conflict.text().await.unwrap().contains("template error"));

    let bulk = harness
        .post("/api/redeliver?webhook=hook&status=failed")
        .await;
    assert_eq!(bulk.status(), 202);
    let body: Value = serde_json::from_str(&bulk.text().await.unwrap()).unwrap();
    assert_eq!(body["queued"], 2);
    let counts = harness.store.counts();
    assert_eq!(counts["hook"].get(&Status::Failed).copied().unwrap_or(0), 0);

    assert_eq!(
        harness.post("/api/redeliver?webhook=nope").await.status(),
        404
    );
    assert_eq!(
        harness.post("/api/redeliver?status=failed").await.status(),
        400
    );
}

#[tokio::test]
async fn pages_render_escaped_and_redeliver() {
    let harness = start().await;
    harness
        .store
        .insert(&event(&harness.store, "evt_1", "hook"))
        .unwrap();
    fail(&harness.store, "evt_1");

    let (status, home) = harness.get("/").await;
    assert_eq!(status, 200);
    assert!(home.contains("href=\"/webhooks/hook\""), "{home}");
    assert!(home.contains("href=\"/webhooks/other\""));

    let (status, listing) = harness.get("/webhooks/hook?status=failed").await;
    assert_eq!(status, 200);
    assert!(listing.contains("href=\"/events/evt_1\""), "{listing}");
    assert!(listing.contains("badge failed"));
    let (status, _) = harness.get("/webhooks/hook?status=nope").await;
    assert_eq!(status, 400);
    let (status, missing) = harness.get("/webhooks/nope").await;
    assert_eq!(status, 404);
    assert!(missing.contains("no webhook"));

    let (status, page) = harness.get("/events/evt_1").await;
    assert_eq!(status, 200);
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;b&gt;oops&lt;/b&gt;"));
    assert!(!page.contains("<script>"));
    assert!(!page.contains("hunter2") && !page.contains("Bearer abc"));
    assert!(page.contains("action=\"/events/evt_1/redeliver\""));
    assert_eq!(harness.get("/events/nope").await.0, 404);

    let response = harness.post("/events/evt_1/redeliver").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/events/evt_1");
    let event = harness.store.event("evt_1").unwrap().unwrap();
    assert_eq!(event.status, Status::Pending);

    let forged = harness
        .client
        .post(format!("{}/events/evt_1/redeliver", harness.base))
        .basic_auth("admin", Some(TOKEN))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn serve_stops_on_shutdown() {
    let mut harness = start().await;
    harness.trigger.trigger();
    let finished =
        tokio::time::timeout(std::time::Duration::from_secs(5), &mut harness.server).await;
    assert!(finished.unwrap().unwrap().is_ok());
}
