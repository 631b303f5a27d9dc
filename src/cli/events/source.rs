//! Where the history is read from: the store itself when no process holds it, else the
//! running service's admin API. Both give the same typed views.

use std::sync::Arc;

use anyhow::{Context, anyhow};
use rowhook::config::Config;
use rowhook::event::Status;
use rowhook::history::{self, EventDetail, EventList, EventSummary, Redelivered, WebhookSummary};
use rowhook::inbound::{InboundQuery, InboundRecord};
use rowhook::store::{self, EventQuery, EventStore, RowQuery, StoreError};
use rowhook::time::now_ms;

use super::Filter;
use crate::cli::Failure;
use crate::cli::admin_api::{AdminApi, Answer};

pub(crate) enum History<'a> {
    /// Opened here: no other process holds it.
    Direct {
        store: Arc<dyn EventStore>,
        config: &'a Config,
    },
    /// Held by a running `rowhook run`: asked through its admin API.
    Service(AdminApi),
}

impl<'a> History<'a> {
    pub(crate) fn open(config: &'a Config) -> Result<History<'a>, Failure> {
        match store::open(&config.store) {
            Ok(store) => Ok(History::Direct { store, config }),
            Err(StoreError::Locked { path }) => match &config.admin {
                Some(admin) => Ok(History::Service(AdminApi::new(admin)?)),
                None => Err(Failure::Runtime(anyhow!(
                    "the store at {path} is in use by another process (a running `rowhook run`?), \
                     and {} has no [admin] table, so there is no admin API to ask instead",
                    config.file.display()
                ))),
            },
            Err(error) => Err(Failure::Runtime(error.into())),
        }
    }

    pub(super) fn is_direct(&self) -> bool {
        matches!(self, History::Direct { .. })
    }

    /// Makes whatever was changed in a directly opened store durable.
    pub(crate) async fn close(self) -> anyhow::Result<()> {
        if let History::Direct { store, .. } = self {
            store.flush().await.context("cannot flush the store")?;
        }
        Ok(())
    }

    pub(super) async fn list(&self, filter: &Filter) -> anyhow::Result<Vec<EventSummary>> {
        match self {
            History::Direct { store, .. } => {
                let query = EventQuery {
                    webhook: filter.webhook.clone(),
                    status: filter.status,
                    limit: filter.limit,
                    before: None,
                    row: filter.row.as_ref().map(|(model, key)| RowQuery {
                        model: model.clone(),
                        key: key.clone(),
                    }),
                };
                Ok(history::list(store.as_ref(), &query).await?.events)
            }
            History::Service(api) => {
                let mut query = vec![("limit", filter.limit.to_string())];
                if let Some(webhook) = &filter.webhook {
                    query.push(("webhook", webhook.clone()));
                }
                if let Some(status) = filter.status {
                    query.push(("status", status.as_str().to_string()));
                }
                if let Some((model, key)) = &filter.row {
                    query.push(("model", model.clone()));
                    query.push(("key", key.clone()));
                }
                api.list_all(&query, filter.limit).await
            }
        }
    }

    pub(super) async fn show(&self, id: &str) -> anyhow::Result<EventDetail> {
        match self {
            History::Direct { store, config } => {
                match history::detail(store.as_ref(), config, id).await {
                    Err(StoreError::NotFound(_)) => Err(anyhow!("no event {id}")),
                    other => Ok(other?),
                }
            }
            History::Service(api) => {
                api.call(reqwest::Method::GET, &["api", "events", id], &[], Some(id))
                    .await
            }
        }
    }

    pub(super) async fn redeliver(&self, id: &str) -> anyhow::Result<()> {
        match self {
            History::Direct { store, .. } => match store.redeliver(id, now_ms()).await {
                Ok(_) => Ok(()),
                Err(StoreError::NotFound(_)) => Err(anyhow!("no event {id}")),
                Err(error) => Err(error.into()),
            },
            History::Service(api) => {
                api.call::<serde_json::Value>(
                    reqwest::Method::POST,
                    &["api", "events", id, "redeliver"],
                    &[],
                    Some(id),
                )
                .await?;
                Ok(())
            }
        }
    }

    /// The inbound request log, newest first.
    pub(crate) async fn inbound(&self, query: &InboundQuery) -> anyhow::Result<Vec<InboundRecord>> {
        match self {
            History::Direct { store, .. } => Ok(store.inbound_log(query).await?),
            History::Service(api) => {
                // The API pages at most 500 entries; "all" through it means the newest 500.
                let limit = match query.limit {
                    0 => history::MAX_PAGE,
                    limit => limit.min(history::MAX_PAGE),
                };
                let mut parameters = vec![("limit", limit.to_string())];
                if let Some(endpoint) = &query.endpoint {
                    parameters.push(("endpoint", endpoint.clone()));
                }
                if let Some(outcome) = query.outcome {
                    parameters.push(("outcome", outcome.as_str().to_string()));
                }
                api.call(reqwest::Method::GET, &["api", "inbound"], &parameters, None)
                    .await
            }
        }
    }

    /// Every configured webhook with its counts and whether it is paused.
    pub(crate) async fn webhooks(&self) -> anyhow::Result<Vec<WebhookSummary>> {
        match self {
            History::Direct { store, config } => {
                let counts = store.counts().await?;
                let paused = store.paused().await?;
                Ok(history::webhooks(config, &counts, &paused))
            }
            History::Service(api) => {
                api.call(reqwest::Method::GET, &["api", "webhooks"], &[], None)
                    .await
            }
        }
    }

    /// Pauses or resumes `webhook`'s delivery; `false` when no webhook has that name.
    pub(crate) async fn set_paused(&self, webhook: &str, paused: bool) -> anyhow::Result<bool> {
        match self {
            History::Direct { store, config } => {
                Ok(history::set_paused(store.as_ref(), config, webhook, paused).await?)
            }
            History::Service(api) => {
                let action = if paused { "pause" } else { "resume" };
                let answer = api
                    .send::<WebhookSummary>(
                        reqwest::Method::POST,
                        &["api", "webhooks", webhook, action],
                        &[],
                        None,
                    )
                    .await?;
                match answer {
                    Answer::Success(_) => Ok(true),
                    Answer::Refused { status, .. } if status == reqwest::StatusCode::NOT_FOUND => {
                        Ok(false)
                    }
                    Answer::Refused { status, message } => {
                        Err(anyhow!("the admin API answered {status}: {message}"))
                    }
                }
            }
        }
    }

    /// Queues every event of `webhook` with `status`.
    pub(super) async fn redeliver_matching(
        &self,
        webhook: &str,
        status: Status,
    ) -> anyhow::Result<Redelivered> {
        match self {
            History::Direct { store, .. } => {
                Ok(history::redeliver_matching(store.as_ref(), webhook, Some(status)).await?)
            }
            History::Service(api) => {
                let query = [
                    ("webhook", webhook.to_string()),
                    ("status", status.as_str().to_string()),
                ];
                api.call(reqwest::Method::POST, &["api", "redeliver"], &query, None)
                    .await
            }
        }
    }
}

impl AdminApi {
    /// A listing through the API, which pages at most 500 at a time: follows the pages
    /// until `limit` events (0: all) are read.
    async fn list_all(
        &self,
        query: &[(&str, String)],
        limit: usize,
    ) -> anyhow::Result<Vec<EventSummary>> {
        let mut events = Vec::new();
        let mut before: Option<u64> = None;
        loop {
            let wanted = match limit {
                0 => history::MAX_PAGE,
                limit => (limit - events.len()).min(history::MAX_PAGE),
            };
            let mut page_query: Vec<(&str, String)> = query
                .iter()
                .map(|(name, value)| match *name {
                    "limit" => (*name, wanted.to_string()),
                    _ => (*name, value.clone()),
                })
                .collect();
            if let Some(before) = before {
                page_query.push(("before", before.to_string()));
            }
            let page: EventList = self
                .call(reqwest::Method::GET, &["api", "events"], &page_query, None)
                .await?;
            events.extend(page.events);
            match page.next_before {
                Some(next) if limit == 0 || events.len() < limit => before = Some(next),
                _ => return Ok(events),
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
            path: store.to_path_buf(),
            retention: Duration::from_secs(3600),
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
            let store = store::open(&config.store).unwrap();
            let events = vec![event("evt_a"), event("evt_b"), event("evt_c")];
            store
                .append(NewEvents {
                    events,
                    resume_after: None,
                    backfill: None,
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
        let history = History::open(&config).ok().unwrap();
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
}
