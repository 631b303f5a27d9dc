//! The history source: opened directly, and through a running service's admin API.
use std::time::Duration;

use rowhook::config::{AdminConfig, StoreConfig};
use rowhook::event::{Attempt, Content, ErrorKind, Lane, NewEvent, Request};
use rowhook::store::{FinishedAttempt, NewEvents};
use serde_json::json;

use super::*;

fn event(id: &str) -> NewEvent {
    NewEvent {
        id: id.into(),
        webhook: "hook".into(),
        model: "order".into(),
        kind: "order.created".into(),
        created_at_ms: 1_000,
        first_attempt_at_ms: 1_000,
        content: Content::Rendered {
            request: Request {
                method: "POST".into(),
                url: "https://example.com/hook".into(),
                headers: vec![("Authorization".into(), "Bearer abc".into())],
                body: Some(format!(r#"{{"id":"{id}"}}"#)),
            },
            envelope: None,
        },
        lane: Lane::Live,
        row_key: None,
        ordered: false,
    }
}

fn config(admin: Option<AdminConfig>, store: &std::path::Path) -> Config {
    let text = r#"
[source]
url = "postgres://u:pw@localhost/db"
[models.order]
table = "orders"
[[webhooks]]
name = "hook"
model = "order"
url = "https://example.com/hook"
headers = { Authorization = "Bearer abc" }
"#;
    let mut config =
        rowhook::config::parse(std::path::Path::new("rowhook.toml"), text, &|_: &str| None)
            .unwrap();
    config.admin = admin;
    config.store = StoreConfig {
        retention: Duration::from_secs(3600),
        ..StoreConfig::sled(store.to_path_buf())
    };
    config
}

#[tokio::test]
async fn a_store_opened_directly_lists_shows_and_redelivers() {
    let directory = std::env::temp_dir().join(format!(
        "rowhook-cli-history-{}-{}",
        std::process::id(),
        now_ms()
    ));
    let config = config(None, &directory);
    {
        let store = store::open(&config.store).await.unwrap();
        let events = vec![event("evt_a"), event("evt_b"), event("evt_c")];
        store
            .append(NewEvents {
                events,
                resume_after: None,
                backfill: None,
                drained_outbox: Vec::new(),
            })
            .await
            .unwrap();
        // evt_a and evt_c fail, evt_b is delivered.
        let due = store.claim_due("hook", 2_000, 10).await.unwrap().events;
        let done = due
            .iter()
            .map(|claimed| {
                let kind = (claimed.id != "evt_b").then_some(ErrorKind::Status);
                FinishedAttempt {
                    webhook: claimed.webhook.clone(),
                    claim: claimed.claim.clone(),
                    attempt: Attempt {
                        number: 1,
                        started_at_ms: 2_000,
                        duration_ms: 1,
                        status_code: Some(if kind.is_some() { 500 } else { 200 }),
                        error_kind: kind,
                        error: kind.map(|_| "HTTP 500".into()),
                        response_body: String::new(),
                    },
                    retry: std::sync::Arc::from([Duration::ZERO].as_slice()),
                    finished_at_ms: 2_001,
                }
            })
            .collect();
        store.record_attempts(done).await.unwrap();
        store.flush().await.unwrap();
    }
    // sled lets go of its lock a moment after the last handle (its flusher thread):
    // until then the store reads as held by another process.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let history = loop {
        match History::open(&config).await {
            Ok(history) if history.is_direct() => break history,
            _ if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => panic!("the store stays locked after it was closed"),
        }
    };
    let filter = Filter {
        webhook: None,
        status: None,
        row: None,
        limit: 2,
    };
    let listed = history.list(&filter).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|summary| summary.id.as_str()).collect();
    assert_eq!(ids, ["evt_c", "evt_b"]);
    let detail = history.show("evt_a").await.unwrap();
    let shown = serde_json::to_string(&detail).unwrap();
    assert!(!shown.contains("Bearer abc"), "{shown}");
    assert_eq!(
        history.show("evt_zzz").await.unwrap_err().to_string(),
        "no event evt_zzz"
    );
    assert_eq!(
        history.redeliver("evt_zzz").await.unwrap_err().to_string(),
        "no event evt_zzz"
    );
    let done = history
        .redeliver_matching("hook", Status::Failed)
        .await
        .unwrap();
    assert_eq!(done.queued, 2);
    let pending = Filter {
        webhook: Some("hook".into()),
        status: Some(Status::Pending),
        row: None,
        limit: 0,
    };
    assert_eq!(history.list(&pending).await.unwrap().len(), 2);
    history.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&directory);
}

fn summary(id: &str, webhook: &str) -> serde_json::Value {
    json!({
        "id": id, "webhook": webhook, "model": "order", "type": "order.created",
        "status": "failed", "attempts": 1, "last_status_code": 500, "last_error": null,
        "created_at": "2026-11-22T10:00:00.000000Z", "next_attempt_at": null,
        "finished_at": null, "sequence": 1,
    })
}

#[tokio::test]
async fn a_running_service_is_asked_through_its_admin_api() {
    use axum::extract::{Path as UrlPath, RawQuery};
    use axum::http::{HeaderMap, StatusCode as HttpStatus};
    use axum::routing::{get, post};

    fn authorized(headers: &HeaderMap) -> bool {
        headers
            .get("authorization")
            .is_some_and(|value| value == "Bearer secret-token")
    }
    let app = axum::Router::new()
        .route(
            "/api/events",
            get(|headers: HeaderMap, RawQuery(query): RawQuery| async move {
                if !authorized(&headers) {
                    return (HttpStatus::UNAUTHORIZED, String::new());
                }
                // The query comes back as the webhook's name, for the test to read.
                let query = query.unwrap_or_default();
                let body = json!({
                    "events": [summary("evt_1", &query)],
                    "next_before": null,
                });
                (HttpStatus::OK, body.to_string())
            }),
        )
        .route(
            "/api/events/{id}",
            get(|UrlPath(id): UrlPath<String>| async move {
                if id == "evt_1" {
                    let mut detail = summary(&id, "hook");
                    detail["attempts"] = json!([]);
                    detail["envelope"] = json!({});
                    detail["render_error"] = json!(null);
                    detail["request"] = json!(null);
                    (HttpStatus::OK, detail.to_string())
                } else {
                    (
                        HttpStatus::NOT_FOUND,
                        json!({"error": "not found"}).to_string(),
                    )
                }
            }),
        )
        .route(
            "/api/events/{id}/redeliver",
            post(|| async { HttpStatus::ACCEPTED }),
        )
        .route(
            "/api/redeliver",
            post(|RawQuery(query): RawQuery| async move {
                let queued = if query.as_deref() == Some("webhook=hook&status=failed") {
                    3
                } else {
                    0
                };
                let body = json!({"queued": queued, "skipped": 0});
                (HttpStatus::ACCEPTED, body.to_string())
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listen = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let api = |token: &str| {
        AdminApi::new(&AdminConfig {
            listen,
            token: token.into(),
        })
        .unwrap()
    };
    let history = History::Service(api("secret-token"));
    let filter = Filter {
        webhook: Some("hook".into()),
        status: Some(Status::Failed),
        row: Some(("order".into(), "a=1,b=2".into())),
        limit: 5,
    };
    let listed = history.list(&filter).await.unwrap();
    assert_eq!(
        listed[0].webhook,
        "limit=5&webhook=hook&status=failed&model=order&key=a%3D1%2Cb%3D2"
    );
    assert_eq!(history.show("evt_1").await.unwrap().id, "evt_1");
    assert_eq!(
        history.show("evt_2").await.unwrap_err().to_string(),
        "no event evt_2"
    );
    history.redeliver("evt_1").await.unwrap();
    let done = history
        .redeliver_matching("hook", Status::Failed)
        .await
        .unwrap();
    assert_eq!(done.queued, 3);
    let refused = History::Service(api("wrong"))
        .list(&filter)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("refused the token"),
        "{refused}"
    );
}
