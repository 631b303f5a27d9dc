//! The JSON API, `/healthz` and `/metrics`, and the operations the pages share with them.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::AdminError;
use super::server::AdminState;
use super::view;
use crate::deliver::now_ms;
use crate::source::stage::CaptureState;
use crate::store::records::{EventRecord, Status};
use crate::store::{EventQuery, StoreError};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;

/// Query parameters of a listing, as text so that a bad value gets a clear message.
/// Empty values count as absent (an HTML form sends `status=` for "all").
#[derive(Debug, Default, Deserialize)]
pub struct ListingParameters {
    pub webhook: Option<String>,
    pub status: Option<String>,
    pub limit: Option<String>,
    pub before: Option<String>,
}

fn present(value: &Option<String>) -> Option<&str> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

impl ListingParameters {
    pub fn to_query(&self) -> Result<EventQuery, AdminError> {
        let status = present(&self.status)
            .map(|text| {
                text.parse::<Status>()
                    .map_err(|_| AdminError::InvalidParameter {
                        parameter: "status",
                        value: text.to_string(),
                        expected: "pending, delivered or failed",
                    })
            })
            .transpose()?;
        let limit = match present(&self.limit) {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                .ok_or_else(|| AdminError::InvalidParameter {
                    parameter: "limit",
                    value: text.to_string(),
                    expected: "a number from 1 to 500",
                })?,
        };
        let before = present(&self.before)
            .map(|text| {
                text.parse::<u64>()
                    .map_err(|_| AdminError::InvalidParameter {
                        parameter: "before",
                        value: text.to_string(),
                        expected: "an event sequence number",
                    })
            })
            .transpose()?;
        Ok(EventQuery {
            webhook: present(&self.webhook).map(str::to_string),
            status,
            limit,
            before,
        })
    }
}

/// Where the next page starts: only a full page may have more after it.
pub fn next_before(events: &[EventRecord], limit: usize) -> Option<u64> {
    if events.len() < limit {
        return None;
    }
    events.last().map(|event| event.sequence)
}

impl AdminState {
    /// Whether `name` is a webhook: configured, or removed from the config but still
    /// holding events in the history.
    pub(super) fn knows_webhook(&self, name: &str) -> bool {
        self.config.webhook(name).is_some() || self.store.counts().contains_key(name)
    }

    /// Queues the event for an immediate attempt and wakes its lane.
    pub(super) fn redeliver(&self, id: &str) -> Result<EventRecord, AdminError> {
        let event = self.store.redeliver(id, now_ms())?;
        self.waker.wake(&event.webhook);
        tracing::info!(event_id = %event.id, webhook = %event.webhook, "event redelivered");
        Ok(event)
    }
}

pub async fn healthz(State(state): State<AdminState>) -> Response {
    let capture = state.capture.borrow().clone();
    if capture.state == CaptureState::Streaming {
        let body = json!({
            "status": "ok",
            "capture": capture.state.as_str(),
            "confirmed_lsn": capture.confirmed.to_string(),
            "server_lsn": capture.server_sent.to_string(),
        });
        (StatusCode::OK, Json(body)).into_response()
    } else {
        let body = json!({
            "status": "unavailable",
            "capture": capture.state.as_str(),
            "error": capture.last_error,
        });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

pub async fn metrics(State(state): State<AdminState>) -> Response {
    let capture = state.capture.borrow().clone();
    let text = state.metrics.render(&state.store.counts(), &capture);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

pub async fn webhooks(State(state): State<AdminState>) -> Json<Value> {
    Json(view::webhooks(&state.config, &state.store.counts()))
}

pub async fn events(
    State(state): State<AdminState>,
    Query(parameters): Query<ListingParameters>,
) -> Result<Json<Value>, AdminError> {
    let query = parameters.to_query()?;
    let events = state.store.list(&query)?;
    Ok(Json(json!({
        "events": events.iter().map(view::event_summary).collect::<Vec<_>>(),
        "next_before": next_before(&events, query.limit),
    })))
}

pub async fn event(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let (_, detail) = event_detail(&state, &id)?;
    Ok(Json(detail))
}

/// The event and its detail view (request and attempts), for the API and the pages.
pub(super) fn event_detail(
    state: &AdminState,
    id: &str,
) -> Result<(EventRecord, Value), StoreError> {
    let event = state
        .store
        .event(id)?
        .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
    let attempts = state.store.attempts(id)?;
    let detail = view::event_detail(&event, &attempts, &state.config);
    Ok((event, detail))
}

pub async fn redeliver(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let event = state.redeliver(&id)?;
    let body = json!({ "id": event.id, "status": event.status.as_str() });
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// `POST /api/redeliver?webhook=NAME[&status=failed]`: every matching event of one
/// webhook (any status when none is given). Events whose request could not be rendered
/// cannot be sent and are counted as skipped.
pub async fn redeliver_matching(
    State(state): State<AdminState>,
    Query(parameters): Query<ListingParameters>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let mut query = parameters.to_query()?;
    let webhook = query
        .webhook
        .clone()
        .ok_or(AdminError::MissingParameter("webhook"))?;
    if !state.knows_webhook(&webhook) {
        return Err(AdminError::UnknownWebhook(webhook));
    }
    query.limit = MAX_LIMIT;
    let (mut queued, mut skipped) = (0u64, 0u64);
    let now = now_ms();
    // Paging by sequence is stable while statuses change: redelivered events keep their
    // sequence and lie behind the cursor.
    loop {
        let page = state.store.list(&query)?;
        for event in &page {
            match state.store.redeliver(&event.id, now) {
                Ok(_) => queued += 1,
                Err(StoreError::NotRedeliverable { .. } | StoreError::NotFound(_)) => skipped += 1,
                Err(error) => return Err(error.into()),
            }
        }
        match next_before(&page, query.limit) {
            Some(before) => query.before = Some(before),
            None => break,
        }
    }
    if queued > 0 {
        state.waker.wake(&webhook);
    }
    tracing::info!(%webhook, queued, skipped, "events redelivered");
    let body = json!({ "queued": queued, "skipped": skipped });
    Ok((StatusCode::ACCEPTED, Json(body)))
}
