//! Inbound webhooks (CONTRACT §11): `POST /in/<endpoint>` checks who sent it, writes one
//! row into the endpoint's table — at most once per `dedupe` value — and answers only
//! once the row is committed, so a sender that sees 2xx can forget the request and one
//! that sees anything else retries. Every request is logged in the store.
//!
//! The listener faces the senders, so it guards itself: a connection must send its
//! headers within [`HEADER_TIMEOUT`] and its body within [`BODY_TIMEOUT`], at most
//! [`MAX_CONNECTIONS`] are served at once (more wait in the kernel's backlog), and a body
//! over the endpoint's `max_body` is refused before it is read.

mod check;
mod record;
mod sender;
mod table;
mod values;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::config::{EndpointConfig, InboundConfig};
use crate::metrics::Metrics;
use crate::postgres::DatabaseUrl;
use crate::shutdown::Shutdown;
use crate::store::EventStore;
use crate::time::now_ms;

pub use check::check_inbound;
pub use record::{InboundOutcome, InboundQuery, InboundRecord};
use table::{Inserted, Inserts};
use values::{Received, ReceivedBody, column_values};

pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
pub const MAX_CONNECTIONS: usize = 1024;
/// On shutdown, how long requests under way get to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the inbound server is given.
pub struct InboundParts {
    pub config: InboundConfig,
    pub url: DatabaseUrl,
    pub store: Arc<dyn EventStore>,
    pub metrics: Arc<Metrics>,
}

#[derive(Clone)]
struct InboundState {
    config: Arc<InboundConfig>,
    inserts: Arc<Inserts>,
    /// To the task that writes the request log in batches.
    log: mpsc::UnboundedSender<InboundRecord>,
    metrics: Arc<Metrics>,
}

/// Log entries written together: whatever arrived while the last batch was written.
const LOG_BATCH: usize = 1024;

async fn write_log(
    store: Arc<dyn EventStore>,
    mut entries: mpsc::UnboundedReceiver<InboundRecord>,
) {
    let mut batch = Vec::with_capacity(LOG_BATCH);
    while entries.recv_many(&mut batch, LOG_BATCH).await > 0 {
        if let Err(error) = store.log_inbound(std::mem::take(&mut batch)).await {
            warn!(%error, "cannot log inbound requests");
        }
    }
}

fn router(state: InboundState) -> Router {
    Router::new()
        .route("/in/{name}", any(receive))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such endpoint\n") })
        .with_state(state)
}

/// Serves until `shutdown`, then gives requests under way a moment to finish and writes
/// the last of the request log.
pub async fn serve(listener: TcpListener, parts: InboundParts, mut shutdown: Shutdown) {
    if let Ok(address) = listener.local_addr() {
        info!(%address, endpoints = parts.config.endpoints.len(), "inbound listening");
    }
    let (log, entries) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_log(parts.store, entries));
    let state = InboundState {
        config: Arc::new(parts.config),
        inserts: Arc::new(Inserts::new(parts.url)),
        log,
        metrics: parts.metrics,
    };
    let service = TowerToHyperService::new(router(state));
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let accepted = tokio::select! {
            _ = shutdown.requested() => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        let (stream, _) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "inbound: cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let service = service.clone();
        connections.spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                debug!(%error, "inbound connection ended");
            }
            drop(slot);
        });
    }
    let finished = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    // The last sender goes with the service; the writer then drains and ends.
    drop(service);
    let _ = writer.await;
}

/// One inbound request, start to answer.
async fn receive(
    State(state): State<InboundState>,
    method: Method,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(endpoint) = state.config.endpoint(&name) else {
        return (StatusCode::NOT_FOUND, "no such endpoint\n").into_response();
    };
    let received_at_ms = now_ms();
    let mut log = InboundRecord {
        sequence: 0,
        received_at_ms,
        endpoint: endpoint.name.clone(),
        outcome: InboundOutcome::Accepted,
        status: 200,
        event_id: header_text(&headers, "webhook-id"),
        body_bytes: 0,
        reason: None,
    };
    let response = handle(&state, endpoint, method, query, &headers, body, &mut log).await;
    log.status = response.status().as_u16();
    state
        .metrics
        .inbound_request(&endpoint.name, log.outcome.as_str());
    match log.outcome {
        InboundOutcome::Accepted => {
            debug!(endpoint = %endpoint.name, event = log.event_id.as_deref().unwrap_or("-"), "inbound accepted")
        }
        InboundOutcome::Duplicate => {
            info!(endpoint = %endpoint.name, event = log.event_id.as_deref().unwrap_or("-"), "inbound duplicate: no row added")
        }
        outcome => {
            warn!(endpoint = %endpoint.name, outcome = outcome.as_str(), reason = log.reason.as_deref().unwrap_or("-"), "inbound request refused")
        }
    }
    // The writer lives as long as the state; a send fails only at shutdown.
    let _ = state.log.send(log);
    response
}

async fn handle(
    state: &InboundState,
    endpoint: &EndpointConfig,
    method: Method,
    query: Option<String>,
    headers: &HeaderMap,
    body: Body,
    log: &mut InboundRecord,
) -> Response {
    if method != Method::POST {
        let mut response = refuse(
            log,
            InboundOutcome::Method,
            StatusCode::METHOD_NOT_ALLOWED,
            "only POST is accepted",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let declared =
        header_text(headers, "content-length").and_then(|text| text.parse::<usize>().ok());
    if declared.is_some_and(|length| length > endpoint.max_body) {
        return refuse(
            log,
            InboundOutcome::TooLarge,
            StatusCode::PAYLOAD_TOO_LARGE,
            "body too large",
        );
    }
    let bytes =
        match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, endpoint.max_body))
            .await
        {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(_)) => {
                return refuse(
                    log,
                    InboundOutcome::TooLarge,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body too large",
                );
            }
            Err(_) => {
                return refuse(
                    log,
                    InboundOutcome::Timeout,
                    StatusCode::REQUEST_TIMEOUT,
                    "body not received in time",
                );
            }
        };
    log.body_bytes = bytes.len() as u64;
    let now_seconds = (log.received_at_ms / 1000) as i64;
    if let Err(reason) = sender::check_sender(&endpoint.check, headers, &bytes, now_seconds) {
        let mut response = refuse(
            log,
            InboundOutcome::Unauthorized,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
        log.reason = Some(reason.to_string());
        if matches!(endpoint.check, crate::config::SenderCheck::Basic { .. }) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"rowhook inbound\""),
            );
        }
        return response;
    }
    let json_body;
    let text_body;
    let received_body = if is_json(headers) {
        json_body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(value) => value,
            Err(error) => {
                return refuse(
                    log,
                    InboundOutcome::BadJson,
                    StatusCode::BAD_REQUEST,
                    &format!("body is not JSON: {error}"),
                );
            }
        };
        ReceivedBody::Json(&json_body)
    } else {
        text_body = String::from_utf8_lossy(&bytes).into_owned();
        ReceivedBody::Text(&text_body)
    };
    let received = Received {
        headers,
        query: query.as_deref(),
        body: received_body,
        received_at_ms: log.received_at_ms,
    };
    let values = column_values(&endpoint.columns, &received);
    if log.event_id.is_none()
        && let Some(dedupe) = &endpoint.dedupe
        && let Some(index) = endpoint
            .columns
            .iter()
            .position(|(column, _)| column == dedupe)
    {
        log.event_id = values[index].clone();
    }
    match state.inserts.insert(endpoint, &values).await {
        Ok(Inserted::Row) => {}
        Ok(Inserted::Duplicate) => log.outcome = InboundOutcome::Duplicate,
        Err(reason) => {
            log.outcome = InboundOutcome::InsertFailed;
            log.reason = Some(reason);
            return (StatusCode::SERVICE_UNAVAILABLE, "not stored; try again\n").into_response();
        }
    }
    let status = StatusCode::from_u16(endpoint.respond_status).unwrap_or(StatusCode::OK);
    (status, endpoint.respond_body.clone()).into_response()
}

/// Answers a refused request, noting why in its log entry.
fn refuse(
    log: &mut InboundRecord,
    outcome: InboundOutcome,
    status: StatusCode,
    reason: &str,
) -> Response {
    log.outcome = outcome;
    log.reason = Some(reason.to_string());
    (status, format!("{reason}\n")).into_response()
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}

/// `application/json` or any `+json` type.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.split(';').next())
        .map(|media| media.trim().to_ascii_lowercase())
        .is_some_and(|media| media == "application/json" || media.ends_with("+json"))
}
