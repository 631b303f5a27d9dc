//! A webhook's page: its state, rate, pause and resume, and its events with a status
//! filter and paging.

use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::chart::activity_chart;
use super::{PageError, cross_site, escape, events_table, layout, url_component};
use crate::admin::api::ListingParameters;
use crate::admin::error::AdminError;
use crate::admin::server::AdminState;
use crate::history::{self, EventList};
use crate::time::{now_ms, rfc3339_from_unix_ms};

pub(crate) async fn webhook(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    Query(mut parameters): Query<ListingParameters>,
) -> Result<Html<String>, PageError> {
    if !state.knows_webhook(&name).await? {
        return Err(AdminError::UnknownWebhook(name).into());
    }
    parameters.webhook = Some(name.clone());
    parameters.limit = None;
    let query = parameters.to_query()?;
    let EventList {
        events,
        next_before,
    } = history::list(state.store.as_ref(), &query, &state.config.secrets).await?;
    let link = format!("/webhooks/{}", url_component(&name));
    let status = query.status.map(|status| status.as_str());

    let paused = state.store.paused().await?.contains(&name);
    let mut body = format!("<h1>Events of {}</h1>", escape(&name));
    if state.config.webhook(&name).is_some() {
        let (state_text, action, button) = if paused {
            (
                "<span class=\"badge failed\">paused</span> events are created and wait",
                "resume",
                "Resume delivery",
            )
        } else {
            ("delivering", "pause", "Pause delivery")
        };
        if let Some(rate) = state
            .config
            .webhook(&name)
            .and_then(|webhook| webhook.delivery.rate)
        {
            let _ = write!(body, "<p>at most {rate} attempts started</p>");
        }
        let _ = write!(
            body,
            "<form method=\"post\" action=\"{link}/{action}\"><p>{state_text} \
<button type=\"submit\">{button}</button></p></form>",
            link = escape(&format!("/webhooks/{}", url_component(&name)))
        );
    }
    body.push_str(&activity_section(&state, &name));
    body.push_str("<nav>");
    for (label, filter) in [
        ("all", None),
        ("pending", Some("pending")),
        ("delivered", Some("delivered")),
        ("failed", Some("failed")),
    ] {
        let target = match filter {
            Some(filter) => format!("{link}?status={filter}"),
            None => link.clone(),
        };
        let current = if filter == status {
            " class=\"current\""
        } else {
            ""
        };
        let _ = write!(body, "<a href=\"{}\"{current}>{label}</a>", escape(&target));
    }
    body.push_str("</nav>");
    body.push_str(&events_table(&events, false));
    body.push_str("<nav>");
    if query.before.is_some() {
        let newest = match status {
            Some(status) => format!("{link}?status={status}"),
            None => link.clone(),
        };
        let _ = write!(body, "<a href=\"{}\">← newest</a>", escape(&newest));
    }
    if let Some(before) = next_before {
        let older = match status {
            Some(status) => format!("{link}?status={status}&before={before}"),
            None => format!("{link}?before={before}"),
        };
        let _ = write!(body, "<a href=\"{}\">older →</a>", escape(&older));
    }
    body.push_str("</nav>");
    Ok(Html(layout(&name, &body)))
}

/// The last hour: the chart, delivery latency and the last error.
fn activity_section(state: &AdminState, name: &str) -> String {
    let view = state.metrics.activity.view(name, now_ms());
    let mut section = String::from("<h2>Last hour</h2>");
    section.push_str(&activity_chart(&view));
    let latency = |value: Option<u64>| value.map_or("–".to_string(), |ms| format!("{ms} ms"));
    let _ = write!(
        section,
        "<p>delivery latency (capture to delivered): p50 {} · p99 {}</p>",
        latency(view.p50_ms),
        latency(view.p99_ms)
    );
    match &view.last_error {
        Some((at, error)) => {
            let _ = write!(
                section,
                "<p>last error: {} <span class=\"muted\">at {}</span></p>",
                escape(error),
                escape(&rfc3339_from_unix_ms(*at))
            );
        }
        None => {
            section.push_str("<p class=\"muted\">No failed attempt since the service started.</p>")
        }
    }
    section
}

/// The webhook page's pause and resume buttons, with the redeliver button's cross-site
/// protection.
pub(crate) async fn pause(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    set_paused_from_page(&state, &name, &headers, true).await
}

pub(crate) async fn resume(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    set_paused_from_page(&state, &name, &headers, false).await
}

async fn set_paused_from_page(
    state: &AdminState,
    name: &str,
    headers: &HeaderMap,
    paused: bool,
) -> Result<Response, PageError> {
    if cross_site(headers) {
        return Err(AdminError::CrossSite.into());
    }
    state.set_paused(name, paused).await?;
    Ok(Redirect::to(&format!("/webhooks/{}", url_component(name))).into_response())
}
