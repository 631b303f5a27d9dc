//! `rowhook events list|show|redeliver`: the event history.
//!
//! sled lets one process at a time open the store. When no `rowhook run` holds it, the
//! commands open it themselves; when one does, they ask that service's admin API. Both
//! answer with the JSON of `admin::view`, so one printing path serves both.

use std::fmt::Write as _;
use std::io::ErrorKind as IoErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow};
use reqwest::{Method, StatusCode, Url};
use rowhook::admin::view;
use rowhook::config::{AdminConfig, Config};
use rowhook::deliver::now_ms;
use rowhook::store::records::Status;
use rowhook::store::{EventQuery, Store, StoreError};
use serde_json::Value;

use super::{Failure, load_config};

/// How long to wait for the running service's admin API.
const API_TIMEOUT: Duration = Duration::from_secs(30);

/// Which events `events list` shows.
pub struct Filter {
    pub webhook: Option<String>,
    pub status: Option<Status>,
    /// 0 means all.
    pub limit: usize,
}

/// What `events redeliver` queues.
pub enum Target {
    Event(String),
    Matching { webhook: String, status: Status },
}

pub async fn list(path: &Path, filter: &Filter, json: bool) -> Result<(), Failure> {
    let config = load_config(path)?;
    let history = History::open(&config)?;
    let result = history.list(filter).await;
    history.close().await?;
    let summaries = result?;
    if json {
        println!("{}", Value::Array(summaries));
    } else if summaries.is_empty() {
        println!("no events");
    } else {
        print!("{}", summary_table(&summaries));
    }
    Ok(())
}

pub async fn show(path: &Path, id: &str, json: bool) -> Result<(), Failure> {
    let config = load_config(path)?;
    let history = History::open(&config)?;
    let result = history.show(id).await;
    history.close().await?;
    let detail = result?;
    if json {
        println!("{detail}");
    } else {
        print!("{}", detail_text(&detail));
    }
    Ok(())
}

pub async fn redeliver(path: &Path, target: Target) -> Result<(), Failure> {
    let config = load_config(path)?;
    let history = History::open(&config)?;
    let direct = matches!(history, History::Store { .. });
    let result = match &target {
        Target::Event(id) => history
            .redeliver(id)
            .await
            .map(|()| (format!("queued {id} for an immediate attempt"), 1)),
        Target::Matching { webhook, status } => history
            .redeliver_matching(webhook, *status)
            .await
            .map(|queued| {
                let message = format!(
                    "queued {queued} {} event(s) of {webhook} for an immediate attempt",
                    status.as_str()
                );
                (message, queued)
            }),
    };
    // Flush even after a partial bulk redelivery: what was queued must stay queued.
    history.close().await?;
    let (message, queued) = result?;
    println!("{message}");
    if direct && queued > 0 {
        // Said so that nobody waits for a delivery that no process is there to make.
        eprintln!("note: rowhook is not running; the next `rowhook run` sends it");
    }
    Ok(())
}

/// Where the history is read from.
enum History<'a> {
    /// Opened here: no other process holds it.
    Store { store: Store, config: &'a Config },
    /// Held by a running `rowhook run`: asked through its admin API.
    Service(AdminApi),
}

impl<'a> History<'a> {
    fn open(config: &'a Config) -> Result<History<'a>, Failure> {
        match Store::open(&config.store.path) {
            Ok(store) => Ok(History::Store { store, config }),
            Err(error) if is_locked(&error) => match &config.admin {
                Some(admin) => Ok(History::Service(AdminApi::new(admin)?)),
                None => Err(Failure::Runtime(anyhow!(
                    "the store at {} is in use by another process (a running `rowhook run`?), \
                     and {} has no [admin] table, so there is no admin API to ask instead",
                    config.store.path.display(),
                    config.file.display()
                ))),
            },
            Err(error) => Err(Failure::Runtime(error.into())),
        }
    }

    /// Makes whatever was changed in a directly opened store durable.
    async fn close(self) -> anyhow::Result<()> {
        if let History::Store { store, .. } = self {
            store.flush().await.context("cannot flush the store")?;
        }
        Ok(())
    }

    async fn list(&self, filter: &Filter) -> anyhow::Result<Vec<Value>> {
        match self {
            History::Store { store, .. } => {
                let query = EventQuery {
                    webhook: filter.webhook.clone(),
                    status: filter.status,
                    limit: filter.limit,
                    before: None,
                };
                Ok(store
                    .list(&query)?
                    .iter()
                    .map(view::event_summary)
                    .collect())
            }
            History::Service(api) => {
                let mut query = vec![("limit", filter.limit.to_string())];
                if let Some(webhook) = &filter.webhook {
                    query.push(("webhook", webhook.clone()));
                }
                if let Some(status) = filter.status {
                    query.push(("status", status.as_str().to_string()));
                }
                let answer = api
                    .call(Method::GET, &["api", "events"], &query, None)
                    .await?;
                match answer.get("events") {
                    Some(Value::Array(events)) => Ok(events.clone()),
                    _ => Err(anyhow!("the admin API answered without an events list")),
                }
            }
        }
    }

    async fn show(&self, id: &str) -> anyhow::Result<Value> {
        match self {
            History::Store { store, config } => {
                let event = store.event(id)?.ok_or_else(|| anyhow!("no event {id}"))?;
                let attempts = store.attempts(id)?;
                Ok(view::event_detail(&event, &attempts, config))
            }
            History::Service(api) => {
                api.call(Method::GET, &["api", "events", id], &[], Some(id))
                    .await
            }
        }
    }

    async fn redeliver(&self, id: &str) -> anyhow::Result<()> {
        match self {
            History::Store { store, .. } => match store.redeliver(id, now_ms()) {
                Ok(_) => Ok(()),
                Err(StoreError::NotFound(_)) => Err(anyhow!("no event {id}")),
                Err(error) => Err(error.into()),
            },
            History::Service(api) => {
                api.call(
                    Method::POST,
                    &["api", "events", id, "redeliver"],
                    &[],
                    Some(id),
                )
                .await?;
                Ok(())
            }
        }
    }

    /// Queues every event of `webhook` with `status`; returns how many were queued.
    async fn redeliver_matching(&self, webhook: &str, status: Status) -> anyhow::Result<u64> {
        match self {
            History::Store { store, .. } => {
                let query = EventQuery {
                    webhook: Some(webhook.to_string()),
                    status: Some(status),
                    limit: 0,
                    before: None,
                };
                let now = now_ms();
                let mut queued = 0;
                for event in store.list(&query)? {
                    match store.redeliver(&event.id, now) {
                        Ok(_) => queued += 1,
                        // Such an event can never be sent; the others still can.
                        Err(error @ StoreError::NotRedeliverable { .. }) => {
                            eprintln!("skipped: {error}");
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
                Ok(queued)
            }
            History::Service(api) => {
                let query = [
                    ("webhook", webhook.to_string()),
                    ("status", status.as_str().to_string()),
                ];
                let answer = api
                    .call(Method::POST, &["api", "redeliver"], &query, None)
                    .await?;
                answer
                    .get("queued")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| anyhow!("the admin API did not say how many were queued"))
            }
        }
    }
}

/// Whether opening the store failed because another process holds sled's file lock.
/// sled reports it as an I/O error of kind `Other` whose text says "could not acquire
/// lock" and carries the `WouldBlock` of the failed `flock`; look for either. sled's
/// error has no `source`, so its I/O error is taken out by hand.
pub fn is_locked(error: &StoreError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        let io = match current.downcast_ref::<sled::Error>() {
            Some(sled::Error::Io(io)) => Some(io),
            _ => current.downcast_ref::<std::io::Error>(),
        };
        if io.is_some_and(|io| io.kind() == IoErrorKind::WouldBlock) {
            return true;
        }
        let text = current.to_string();
        if text.contains("could not acquire lock") || text.contains("WouldBlock") {
            return true;
        }
        cause = current.source();
    }
    false
}

/// The running service's admin API.
struct AdminApi {
    http: reqwest::Client,
    base: Url,
    token: String,
}

impl AdminApi {
    fn new(admin: &AdminConfig) -> anyhow::Result<AdminApi> {
        let http = reqwest::Client::builder()
            .timeout(API_TIMEOUT)
            .build()
            .context("cannot build the HTTP client")?;
        let base = Url::parse(&format!("http://{}/", admin_address(admin)))
            .context("the admin listen address does not make a URL")?;
        Ok(AdminApi {
            http,
            base,
            token: admin.token.clone(),
        })
    }

    /// Calls the API and returns its JSON answer (`null` for an empty body). `event` names
    /// the event the route is about, so that a 404 reads "no event …".
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        event: Option<&str>,
    ) -> anyhow::Result<Value> {
        let mut url = self.base.clone();
        // Pushed as segments so that an id typed by hand is escaped, not interpreted.
        url.path_segments_mut()
            .map_err(|()| anyhow!("the admin URL {} cannot have a path", self.base))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(name, value)| (*name, value.as_str())));
        }
        let response = self
            .http
            .request(method, url)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| {
                format!(
                    "the store is in use by a running rowhook, and its admin API at {} \
                     did not answer",
                    self.base
                )
            })?;
        let status = response.status();
        let body = response
            .text()
            .await
            .context("reading the admin API's answer failed")?;
        if status.is_success() {
            if body.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&body).context("the admin API answered invalid JSON");
        }
        match (status, event) {
            (StatusCode::NOT_FOUND, Some(id)) => Err(anyhow!("no event {id}")),
            (StatusCode::UNAUTHORIZED, _) => Err(anyhow!(
                "the admin API at {} refused the token (admin.token)",
                self.base
            )),
            _ => Err(anyhow!(
                "the admin API answered {status}: {}",
                error_message(&body)
            )),
        }
    }
}

/// Where to reach the admin server: a wildcard listen address is reached on loopback.
fn admin_address(admin: &AdminConfig) -> std::net::SocketAddr {
    let mut address = admin.listen;
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => address.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        IpAddr::V6(ip) if ip.is_unspecified() => address.set_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        _ => {}
    }
    address
}

/// The `error` of a JSON error answer, else the body as it is.
fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|value| {
            value
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| body.trim().to_string())
}

/// A field as table text: strings as they are, `null` or absent as `-`.
fn field(value: &Value, key: &str) -> String {
    match value.get(key) {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// An RFC 3339 time without its fraction of a second, which a listing does not need.
fn short_time(text: &str) -> String {
    match (text.find('.'), text.ends_with('Z')) {
        (Some(dot), true) => format!("{}Z", &text[..dot]),
        _ => text.to_string(),
    }
}

/// The listing of `events list`: one row per event summary.
pub fn summary_table(summaries: &[Value]) -> String {
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|summary| {
            vec![
                field(summary, "id"),
                field(summary, "webhook"),
                field(summary, "type"),
                field(summary, "status"),
                field(summary, "attempts"),
                field(summary, "last_status_code"),
                short_time(&field(summary, "created_at")),
            ]
        })
        .collect();
    table(
        &[
            "ID", "WEBHOOK", "TYPE", "STATUS", "ATTEMPTS", "CODE", "CREATED",
        ],
        &rows,
    )
}

/// Columns padded to their widest cell, two spaces apart; no trailing spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| header.chars().count())
        .collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let header_row: Vec<String> = headers.iter().map(|header| header.to_string()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(
                ' ',
                width.saturating_sub(cell.chars().count()),
            ));
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// `events show` as text: the event's fields, the request, then each attempt.
pub fn detail_text(detail: &Value) -> String {
    let mut text = String::new();
    let rows = [
        ("event", "id"),
        ("webhook", "webhook"),
        ("type", "type"),
        ("status", "status"),
        ("attempts", "attempts"),
        ("created", "created_at"),
        ("next attempt", "next_attempt_at"),
        ("finished", "finished_at"),
        ("last code", "last_status_code"),
        ("last error", "last_error"),
        ("render error", "render_error"),
    ];
    for (label, key) in rows {
        // Absent facts (no render error, nothing due) would only add noise.
        if matches!(detail.get(key), None | Some(Value::Null)) && key != "last_status_code" {
            continue;
        }
        let value = match detail.get(key) {
            // In the detail, `attempts` is the list of attempts (shown below), not a count.
            Some(Value::Array(attempts)) => attempts.len().to_string(),
            _ => field(detail, key),
        };
        let _ = writeln!(text, "{label:<13}{value}");
    }

    let request = detail.get("request").unwrap_or(&Value::Null);
    text.push('\n');
    text.push_str(&super::send_test::request_text(request));

    let attempts = match detail.get("attempts") {
        Some(Value::Array(attempts)) => attempts.as_slice(),
        _ => &[],
    };
    text.push_str("\nattempts\n");
    if attempts.is_empty() {
        text.push_str("  none yet\n");
    }
    for attempt in attempts {
        let _ = writeln!(
            text,
            "  #{}  {}  {} ms  {}",
            field(attempt, "number"),
            field(attempt, "started_at"),
            field(attempt, "duration_ms"),
            attempt_outcome(attempt)
        );
        if let Some(error) = attempt.get("error").and_then(Value::as_str) {
            let _ = writeln!(text, "      error: {error}");
        }
        match attempt.get("response_body").and_then(Value::as_str) {
            Some(body) if !body.is_empty() => {
                text.push_str("      response:\n");
                push_indented(&mut text, body, "        ");
            }
            _ => {}
        }
    }
    text
}

/// `200 success`, `500 status`, `timeout`: the code when there was one, and the outcome.
fn attempt_outcome(attempt: &Value) -> String {
    let outcome = field(attempt, "outcome");
    match attempt.get("status_code").and_then(Value::as_u64) {
        Some(code) => format!("{code} {outcome}"),
        None => outcome,
    }
}

fn push_indented(text: &mut String, block: &str, indent: &str) {
    for line in block.lines() {
        text.push_str(indent);
        text.push_str(line);
        text.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_pads_columns_without_trailing_spaces() {
        let rows = vec![
            vec!["evt_1".to_string(), "a".to_string(), "-".to_string()],
            vec![
                "evt_22".to_string(),
                "long-name".to_string(),
                "200".to_string(),
            ],
        ];
        let text = table(&["ID", "WEBHOOK", "CODE"], &rows);
        assert_eq!(
            text,
            "ID      WEBHOOK    CODE\n\
             evt_1   a          -\n\
             evt_22  long-name  200\n"
        );
    }

    #[test]
    fn summary_rows_show_dashes_and_short_times() {
        let summary = json!({
            "id": "evt_1", "webhook": "hook", "type": "order.created", "status": "pending",
            "attempts": 0, "last_status_code": null,
            "created_at": "2026-11-22T10:00:00.123456Z",
        });
        let text = summary_table(&[summary]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "ID     WEBHOOK  TYPE           STATUS   ATTEMPTS  CODE  CREATED"
        );
        assert_eq!(
            lines[1],
            "evt_1  hook     order.created  pending  0         -     2026-11-22T10:00:00Z"
        );
    }

    #[test]
    fn short_time_keeps_times_without_fraction() {
        assert_eq!(short_time("2026-11-22T10:00:00Z"), "2026-11-22T10:00:00Z");
        assert_eq!(short_time("2026-11-22T10:00:00.5Z"), "2026-11-22T10:00:00Z");
        assert_eq!(short_time("-"), "-");
    }

    #[test]
    fn detail_text_has_request_and_attempts() {
        let detail = json!({
            "id": "evt_1", "webhook": "hook", "type": "order.created", "status": "failed",
            "attempts": 1, "last_status_code": 500, "last_error": "HTTP 500",
            "created_at": "2026-11-22T10:00:00.000000Z", "next_attempt_at": null,
            "request": {
                "method": "POST", "url": "https://example.com/hook",
                "headers": [["authorization", "••••"], ["content-type", "application/json"]],
                "body": "{\"id\":\"evt_1\"}",
            },
            "attempts": [{
                "number": 1, "started_at": "2026-11-22T10:00:05.000000Z", "duration_ms": 12,
                "status_code": 500, "outcome": "status", "error": "HTTP 500",
                "response_body": "oops",
            }],
        });
        let text = detail_text(&detail);
        assert!(text.contains("event        evt_1\n"), "{text}");
        assert!(text.contains("attempts     1\n"), "{text}");
        assert!(!text.contains("next attempt"), "{text}");
        assert!(text.contains("  POST https://example.com/hook\n"), "{text}");
        assert!(text.contains("  authorization: ••••\n"), "{text}");
        assert!(text.contains("  {\"id\":\"evt_1\"}\n"), "{text}");
        assert!(
            text.contains("  #1  2026-11-22T10:00:05.000000Z  12 ms  500 status\n"),
            "{text}"
        );
        assert!(text.contains("      error: HTTP 500\n"), "{text}");
        assert!(text.contains("        oops\n"), "{text}");
    }

    #[test]
    fn lock_errors_are_recognised() {
        let locked = StoreError::Open {
            path: "data".into(),
            source: sled::Error::Io(std::io::Error::other(
                "could not acquire lock on \"data/db\": Os { code: 11, kind: WouldBlock }",
            )),
        };
        assert!(is_locked(&locked));
        let would_block = StoreError::Sled(sled::Error::Io(std::io::Error::from(
            IoErrorKind::WouldBlock,
        )));
        assert!(is_locked(&would_block));
        let other = StoreError::Open {
            path: "data".into(),
            source: sled::Error::Io(std::io::Error::from(IoErrorKind::PermissionDenied)),
        };
        assert!(!is_locked(&other));
        assert!(!is_locked(&StoreError::NotFound("evt_1".into())));
    }

    #[test]
    fn a_store_held_by_another_opener_is_recognised_as_locked() {
        let directory = std::env::temp_dir().join(format!(
            "rowhook-cli-lock-{}-{}",
            std::process::id(),
            now_ms()
        ));
        let first = Store::open(&directory).unwrap();
        let second = Store::open(&directory);
        let result = match second {
            Ok(_) => Err("the second open succeeded".to_string()),
            Err(error) if is_locked(&error) => Ok(()),
            Err(error) => Err(format!("not recognised as locked: {error}")),
        };
        drop(first);
        let _ = std::fs::remove_dir_all(&directory);
        result.unwrap();
    }

    fn event(id: &str, sequence: u64, status: Status) -> rowhook::store::records::EventRecord {
        use rowhook::store::records::{EventRecord, Schedule, StoredRequest};
        EventRecord {
            id: id.into(),
            webhook: "hook".into(),
            model: "order".into(),
            kind: "order.created".into(),
            envelope: None,
            request: StoredRequest {
                method: "POST".into(),
                url: "https://example.com/hook".into(),
                headers: vec![("Authorization".into(), "Bearer abc".into())],
                body: Some(format!(r#"{{"id":"{id}"}}"#)),
            },
            created_at_ms: 1_000 + sequence,
            sequence,
            status,
            attempts: 1,
            schedule: Schedule::Regular,
            next_attempt_at_ms: (status == Status::Pending).then_some(5_000),
            last_status_code: Some(500),
            last_error: Some("HTTP 500".into()),
            finished_at_ms: (status != Status::Pending).then_some(2_000),
            render_error: None,
        }
    }

    fn config(admin: Option<AdminConfig>) -> Config {
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
            rowhook::config::parse(Path::new("rowhook.toml"), text, &|_: &str| None).unwrap();
        config.admin = admin;
        config
    }

    #[tokio::test]
    async fn a_store_opened_directly_lists_shows_and_redelivers() {
        let directory = std::env::temp_dir().join(format!(
            "rowhook-cli-history-{}-{}",
            std::process::id(),
            now_ms()
        ));
        let mut config = config(None);
        config.store.path = directory.clone();
        {
            let store = Store::open(&directory).unwrap();
            store.insert(&event("evt_a", 1, Status::Failed)).unwrap();
            store.insert(&event("evt_b", 2, Status::Delivered)).unwrap();
            store.insert(&event("evt_c", 3, Status::Failed)).unwrap();
            store.flush().await.unwrap();
        }
        let history = History::open(&config).ok().unwrap();
        let filter = Filter {
            webhook: None,
            status: None,
            limit: 2,
        };
        let listed = history.list(&filter).await.unwrap();
        let ids: Vec<String> = listed.iter().map(|summary| field(summary, "id")).collect();
        assert_eq!(ids, ["evt_c", "evt_b"]);
        let detail = history.show("evt_a").await.unwrap();
        assert!(!detail.to_string().contains("Bearer abc"), "{detail}");
        assert_eq!(
            history.show("evt_zzz").await.unwrap_err().to_string(),
            "no event evt_zzz"
        );
        assert_eq!(
            history.redeliver("evt_zzz").await.unwrap_err().to_string(),
            "no event evt_zzz"
        );
        let queued = history
            .redeliver_matching("hook", Status::Failed)
            .await
            .unwrap();
        assert_eq!(queued, 2);
        let pending = Filter {
            webhook: Some("hook".into()),
            status: Some(Status::Pending),
            limit: 0,
        };
        assert_eq!(history.list(&pending).await.unwrap().len(), 2);
        history.close().await.unwrap();
        let _ = std::fs::remove_dir_all(&directory);
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
                    let query = query.unwrap_or_default();
                    let body = json!({
                        "events": [{"id": "evt_1", "query": query}],
                        "next_before": null,
                    });
                    (HttpStatus::OK, body.to_string())
                }),
            )
            .route(
                "/api/events/{id}",
                get(|UrlPath(id): UrlPath<String>| async move {
                    if id == "evt_1" {
                        (HttpStatus::OK, json!({"id": id}).to_string())
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
                    (HttpStatus::ACCEPTED, json!({"queued": queued}).to_string())
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
            limit: 5,
        };
        let listed = history.list(&filter).await.unwrap();
        assert_eq!(
            field(&listed[0], "query"),
            "limit=5&webhook=hook&status=failed"
        );
        assert_eq!(field(&history.show("evt_1").await.unwrap(), "id"), "evt_1");
        assert_eq!(
            history.show("evt_2").await.unwrap_err().to_string(),
            "no event evt_2"
        );
        history.redeliver("evt_1").await.unwrap();
        assert_eq!(
            history
                .redeliver_matching("hook", Status::Failed)
                .await
                .unwrap(),
            3
        );
        let refused = History::Service(api("wrong"))
            .list(&filter)
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("refused the token"),
            "{refused}"
        );
    }

    #[test]
    fn wildcard_admin_addresses_are_reached_on_loopback() {
        let admin = |listen: &str| AdminConfig {
            listen: listen.parse().unwrap(),
            token: "token".into(),
        };
        assert_eq!(
            admin_address(&admin("0.0.0.0:8480")).to_string(),
            "127.0.0.1:8480"
        );
        assert_eq!(admin_address(&admin("[::]:8480")).to_string(), "[::1]:8480");
        assert_eq!(
            admin_address(&admin("10.0.0.1:8480")).to_string(),
            "10.0.0.1:8480"
        );
    }

    #[test]
    fn error_messages_come_from_json_answers() {
        assert_eq!(error_message(r#"{"error":"bad status"}"#), "bad status");
        assert_eq!(error_message(" plain \n"), "plain");
    }
}
