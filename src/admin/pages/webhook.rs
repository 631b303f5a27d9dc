//! A webhook's page: its state, rate, pause and resume, and its events with a status
//! filter and paging.

use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::{PageError, badge, cross_site, escape, layout, shown, url_component};
use crate::admin::api::ListingParameters;
use crate::admin::error::AdminError;
use crate::admin::server::AdminState;
use crate::history::{self, EventList};

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
    } = history::list(state.store.as_ref(), &query).await?;
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
    body.push_str(
        "</nav><table><tr><th>id</th><th>type</th><th>status</th><th>attempts</th>\
<th>last status code</th><th>last error</th><th>created</th></tr>",
    );
    for event in &events {
        let _ = write!(
            body,
            "<tr><td><a href=\"/events/{link}\">{id}</a></td><td>{kind}</td><td>{status}</td>\
<td class=\"number\">{attempts}</td><td>{code}</td><td>{error}</td><td>{created}</td></tr>",
            link = escape(&url_component(&event.id)),
            id = escape(&event.id),
            kind = escape(&event.kind),
            status = badge(event.status.as_str()),
            attempts = event.attempts,
            code = escape(&shown(&event.last_status_code)),
            error = escape(&shown(&event.last_error)),
            created = escape(&event.created_at),
        );
    }
    body.push_str("</table>");
    if events.is_empty() {
        body.push_str("<p class=\"muted\">No events.</p>");
    }
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
