//! The server end to end over TCP: a temporary store, a parsed config, reqwest.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::watch;

use super::*;
use crate::capture::CaptureState;
use crate::change::Lsn;
use crate::event::{Content, ErrorKind, NewEvent, Request, Status};
use crate::shutdown::{self, ShutdownTrigger};
use crate::store::suite::{self, T0, append};
use crate::store::{EventStore, temporary_store};

const TOKEN: &str = "s3cret-token";

struct Harness {
    base: String,
    client: reqwest::Client,
    store: Arc<dyn EventStore>,
    metrics: Arc<Metrics>,
    capture: watch::Sender<CaptureStatus>,
    trigger: ShutdownTrigger,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
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
[[alerts]]
name = "ops"
url = "https://chat.example.com/hook"
on = ["event_failed"]
"#
    );
    crate::config::parse(Path::new("rowhook.toml"), &text, &|_| None).unwrap()
}

fn event(id: &str, webhook: &str) -> NewEvent {
    NewEvent {
        content: Content::Rendered {
            request: Request {
                method: "POST".into(),
                url: "https://user:hunter2@example.com/hook".into(),
                headers: vec![("Authorization".into(), "Bearer abc".into())],
                body: Some(r#"{"note":"<script>alert(1)</script>"}"#.into()),
            },
            envelope: None,
        },
        ..suite::event(id, webhook)
    }
}

/// Makes one attempt of event `id` (due now), which fails for good. The other events it
/// claims on the way stay claimed, and pending.
async fn fail(store: &dyn EventStore, id: &str) {
    let due = store.claim_due("hook", u64::MAX, 100).await.unwrap().events;
    let claimed = due.iter().find(|claimed| claimed.id == id).unwrap();
    let mut failed = suite::finished(
        claimed,
        Some(ErrorKind::Status),
        &[Duration::ZERO],
        T0 + 100,
    );
    failed.attempt.response_body = "<b>oops</b>".into();
    store.record_attempts(vec![failed]).await.unwrap();
}

async fn start() -> Harness {
    let store = temporary_store().await;
    let (capture, capture_receiver) = watch::channel(CaptureStatus::default());
    let (trigger, shutdown) = shutdown::channel();
    let metrics = Arc::new(Metrics::default());
    let state = AdminState {
        backfills: None,
        config: Arc::new(config()),
        store: store.clone(),
        metrics: metrics.clone(),
        capture: capture_receiver,
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
        metrics,
        capture,
        trigger,
        server,
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
    let events = ["evt_1", "evt_2", "evt_3"].map(|id| event(id, "hook"));
    append(harness.store.as_ref(), events.to_vec()).await;
    fail(harness.store.as_ref(), "evt_1").await;

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
    let events = ["evt_1", "evt_2", "evt_3"].map(|id| event(id, "hook"));
    append(harness.store.as_ref(), events.to_vec()).await;
    suite::fail_all(harness.store.as_ref(), "hook").await;
    let broken = NewEvent {
        content: Content::Unrendered {
            reason: "url: template error".into(),
            envelope: "{}".into(),
        },
        ..event("evt_broken", "hook")
    };
    append(harness.store.as_ref(), vec![broken]).await;

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
    assert_eq!(body["skipped"], 1);
    // Only the event that never rendered is still failed: it cannot be sent.
    let counts = harness.store.counts().await.unwrap();
    assert_eq!(counts["hook"].get(&Status::Failed).copied().unwrap_or(0), 1);

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
    append(harness.store.as_ref(), vec![event("evt_1", "hook")]).await;
    fail(harness.store.as_ref(), "evt_1").await;

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
    let event = harness.store.event("evt_1").await.unwrap().unwrap();
    assert_eq!(event.record.status, Status::Pending);

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

#[tokio::test]
async fn pages_show_the_last_hour_rows_and_alert_targets() {
    let harness = start().await;
    let now = crate::time::now_ms();
    for latency in [10, 20, 30] {
        harness.metrics.activity.record("hook", now, Ok(latency));
    }
    harness
        .metrics
        .activity
        .record("hook", now, Err("HTTP 500 <Internal>"));
    let (status, page) = harness.get("/webhooks/hook").await;
    assert_eq!(status, 200);
    assert!(page.contains("<svg class=\"chart\""), "{page}");
    assert!(page.contains("3 delivered, 1 failed"));
    assert!(page.contains("p50 20 ms · p99 30 ms"), "{page}");
    assert!(
        page.contains("last error: HTTP 500 &lt;Internal&gt;"),
        "{page}"
    );

    let rows = vec![
        NewEvent {
            row_key: Some("42".into()),
            ..event("evt_r1", "hook")
        },
        NewEvent {
            row_key: Some("42".into()),
            ..event("evt_r2", "other")
        },
        NewEvent {
            row_key: Some("7".into()),
            ..event("evt_r3", "hook")
        },
    ];
    suite::append(harness.store.as_ref(), rows).await;
    let (status, page) = harness.get("/rows?model=order&key=42").await;
    assert_eq!(status, 200);
    assert!(page.contains("evt_r1") && page.contains("evt_r2") && !page.contains("evt_r3"));
    assert!(page.contains("<option selected>order</option>"), "{page}");
    let (status, _) = harness.get("/rows?model=nope&key=42").await;
    assert_eq!(status, 400);
    let (_, home) = harness.get("/").await;
    assert!(home.contains("action=\"/rows\""));
    assert!(
        home.contains("Alert targets") && home.contains("/webhooks/alert%3Aops"),
        "{home}"
    );
    harness.trigger.trigger();
}
