//! The JSON API, `/healthz` and `/metrics`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::AdminError;
use super::server::AdminState;
use crate::event::Status;
use crate::history::{self, EventDetail, EventList, MAX_PAGE, Redelivered, WebhookSummary};
use crate::store::{EventQuery, RowQuery};
use crate::time::now_ms;

pub(super) const DEFAULT_LIMIT: usize = 50;

/// Query parameters of a listing, as text so that a bad value gets a clear message.
/// Empty values count as absent (an HTML form sends `status=` for "all").
#[derive(Debug, Default, Deserialize)]
pub(super) struct ListingParameters {
    pub(super) webhook: Option<String>,
    pub(super) status: Option<String>,
    pub(super) limit: Option<String>,
    pub(super) before: Option<String>,
    /// A row's history: `model` and `key` together (CONTRACT §9).
    pub(super) model: Option<String>,
    pub(super) key: Option<String>,
}

fn present(value: &Option<String>) -> Option<&str> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

impl ListingParameters {
    pub(super) fn to_query(&self) -> Result<EventQuery, AdminError> {
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
                .filter(|limit| (1..=MAX_PAGE).contains(limit))
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
        let row = match (present(&self.model), present(&self.key)) {
            (Some(model), Some(key)) => Some(RowQuery {
                model: model.to_string(),
                key: key.to_string(),
            }),
            (None, None) => None,
            (Some(_), None) => return Err(AdminError::MissingParameter("key")),
            (None, Some(_)) => return Err(AdminError::MissingParameter("model")),
        };
        Ok(EventQuery {
            webhook: present(&self.webhook).map(str::to_string),
            status,
            limit,
            before,
            row,
        })
    }
}

impl AdminState {
    /// Whether `name` is a webhook: configured, or removed from the config but still
    /// holding events in the history.
    pub(super) async fn knows_webhook(&self, name: &str) -> Result<bool, AdminError> {
        if self.config.webhook(name).is_some() {
            return Ok(true);
        }
        Ok(self.store.counts().await?.contains_key(name))
    }

    /// Pauses or resumes a configured webhook; its summary afterwards.
    pub(super) async fn set_paused(
        &self,
        name: &str,
        paused: bool,
    ) -> Result<WebhookSummary, AdminError> {
        if !history::set_paused(self.store.as_ref(), &self.config, name, paused).await? {
            return Err(AdminError::UnknownWebhook(name.to_string()));
        }
        let counts = self.store.counts().await?;
        let now_paused = self.store.paused().await?;
        history::webhooks(&self.config, &counts, &now_paused)
            .into_iter()
            .find(|webhook| webhook.name == name)
            .ok_or_else(|| AdminError::UnknownWebhook(name.to_string()))
    }

    /// Queues the event for an immediate attempt (the store wakes its lane).
    pub(super) async fn redeliver(&self, id: &str) -> Result<Redelivery, AdminError> {
        let event = self.store.redeliver(id, now_ms()).await?;
        tracing::info!(event_id = %event.id, webhook = %event.webhook, "event redelivered");
        Ok(Redelivery {
            id: event.id,
            status: event.status,
        })
    }
}

/// `POST /api/webhooks/{name}/pause` and `/resume`.
pub(super) async fn pause(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Json<WebhookSummary>, AdminError> {
    Ok(Json(state.set_paused(&name, true).await?))
}

pub(super) async fn resume(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Json<WebhookSummary>, AdminError> {
    Ok(Json(state.set_paused(&name, false).await?))
}

/// The answer to a redelivery of one event.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Redelivery {
    id: String,
    status: Status,
}

pub(super) async fn healthz(State(state): State<AdminState>) -> Response {
    let capture = state.capture.borrow().clone();
    if capture.state.is_healthy() {
        let body = json!({
            "status": "ok",
            "capture": capture.state.as_str(),
            "role": capture.state.role(),
            "confirmed_lsn": capture.confirmed.to_string(),
            "server_lsn": capture.server_sent.to_string(),
        });
        (StatusCode::OK, Json(body)).into_response()
    } else {
        let body = json!({
            "status": "unavailable",
            "capture": capture.state.as_str(),
            "role": capture.state.role(),
            "error": capture.last_error,
        });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

pub(super) async fn metrics(State(state): State<AdminState>) -> Result<Response, AdminError> {
    let capture = state.capture.borrow().clone();
    let mut text = state.metrics.render(&state.store.counts().await?, &capture);
    text.push_str(&paused_metrics(&state.config, &state.store.paused().await?));
    if let Some(backfills) = &state.backfills {
        text.push_str(&super::backfills::metrics_text(&backfills.list()));
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// `rowhook_webhook_paused{webhook}`: 1 while a webhook's delivery is paused.
fn paused_metrics(
    config: &crate::config::Config,
    paused: &std::collections::BTreeSet<String>,
) -> String {
    let mut text = String::from(
        "# HELP rowhook_webhook_paused Whether a webhook's delivery is paused (1) or not (0).\n\
         # TYPE rowhook_webhook_paused gauge\n",
    );
    for webhook in &config.webhooks {
        text.push_str(&format!(
            "rowhook_webhook_paused{{webhook=\"{}\"}} {}\n",
            webhook.name,
            u8::from(paused.contains(&webhook.name))
        ));
    }
    text
}

pub(super) async fn webhooks(
    State(state): State<AdminState>,
) -> Result<Json<Vec<WebhookSummary>>, AdminError> {
    let counts = state.store.counts().await?;
    let paused = state.store.paused().await?;
    Ok(Json(history::webhooks(&state.config, &counts, &paused)))
}

pub(super) async fn events(
    State(state): State<AdminState>,
    Query(parameters): Query<ListingParameters>,
) -> Result<Json<EventList>, AdminError> {
    let query = parameters.to_query()?;
    Ok(Json(
        history::list(state.store.as_ref(), &query, &state.config.secrets).await?,
    ))
}

pub(super) async fn event(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<EventDetail>, AdminError> {
    let detail = history::detail(state.store.as_ref(), &state.config, &id).await?;
    Ok(Json(detail))
}

pub(super) async fn redeliver(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Redelivery>), AdminError> {
    let redelivery = state.redeliver(&id).await?;
    Ok((StatusCode::ACCEPTED, Json(redelivery)))
}

/// `POST /api/redeliver?webhook=NAME[&status=failed]`: every matching event of one
/// webhook (any status when none is given). Events whose request could not be rendered
/// cannot be sent and are counted as skipped.
pub(super) async fn redeliver_matching(
    State(state): State<AdminState>,
    Query(parameters): Query<ListingParameters>,
) -> Result<(StatusCode, Json<Redelivered>), AdminError> {
    let query = parameters.to_query()?;
    let webhook = query
        .webhook
        .clone()
        .ok_or(AdminError::MissingParameter("webhook"))?;
    if !state.knows_webhook(&webhook).await? {
        return Err(AdminError::UnknownWebhook(webhook));
    }
    let done = history::redeliver_matching(state.store.as_ref(), &webhook, query.status).await?;
    Ok((StatusCode::ACCEPTED, Json(done)))
}
