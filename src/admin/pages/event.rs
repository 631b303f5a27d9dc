//! One event's page: its facts, the request it sends, its envelope and every attempt,
//! with a redeliver button.

use std::fmt::Write;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::readable;
use super::{PageError, badge, cross_site, escape, layout, shown, url_component};
use crate::admin::error::AdminError;
use crate::admin::server::AdminState;
use crate::history;

pub(crate) async fn event(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let detail = history::detail(state.store.as_ref(), &state.config, &id).await?;

    let mut body = format!("<h1>Event {}</h1><table>", escape(&detail.id));
    let webhook_link = format!("/webhooks/{}", url_component(&detail.webhook));
    let _ = write!(
        body,
        "<tr><th>webhook</th><td><a href=\"{}\">{}</a></td></tr>",
        escape(&webhook_link),
        escape(&detail.webhook)
    );
    for (label, value) in [
        ("model", Some(detail.model.clone())),
        ("type", Some(detail.kind.clone())),
        (
            "last status code",
            detail.last_status_code.map(|code| code.to_string()),
        ),
        ("last error", detail.last_error.clone()),
        ("created", Some(detail.created_at.clone())),
        ("next attempt", detail.next_attempt_at.clone()),
        ("finished", detail.finished_at.clone()),
        ("render error", detail.render_error.clone()),
    ] {
        let _ = write!(
            body,
            "<tr><th>{label}</th><td>{}</td></tr>",
            escape(&shown(&value))
        );
    }
    let _ = write!(
        body,
        "<tr><th>attempts</th><td>{}</td></tr><tr><th>status</th><td>{}</td></tr></table>",
        detail.attempts.len(),
        badge(detail.status.as_str())
    );
    if detail.render_error.is_none() {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/events/{}/redeliver\">\
<button type=\"submit\">Redeliver now</button></form>",
            escape(&url_component(&detail.id))
        );
    }

    if let Some(request) = &detail.request {
        let _ = write!(
            body,
            "<h2>Request</h2><p><strong>{}</strong> {}</p><table><tr><th>header</th><th>value</th></tr>",
            escape(&request.method),
            escape(&request.url)
        );
        for (name, value) in &request.headers {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(name),
                escape(value)
            );
        }
        body.push_str("</table>");
        match &request.body {
            None => body.push_str("<p class=\"muted\">No body.</p>"),
            Some(text) => {
                let _ = write!(body, "<pre>{}</pre>", escape(&readable(text)));
            }
        }
    }
    if !detail.envelope.is_null() {
        let envelope = serde_json::to_string_pretty(&detail.envelope).unwrap_or_default();
        let _ = write!(body, "<h2>Envelope</h2><pre>{}</pre>", escape(&envelope));
    }

    body.push_str("<h2>Attempts</h2>");
    if detail.attempts.is_empty() {
        body.push_str("<p class=\"muted\">No attempts yet.</p>");
    } else {
        body.push_str(
            "<table><tr><th>#</th><th>started</th><th>duration</th><th>status code</th>\
<th>outcome</th><th>error</th><th>response body</th></tr>",
        );
        for attempt in &detail.attempts {
            let _ = write!(
                body,
                "<tr><td class=\"number\">{number}</td><td>{started}</td>\
<td class=\"number\">{duration} ms</td><td>{code}</td><td>{outcome}</td><td>{error}</td>\
<td><pre>{response}</pre></td></tr>",
                number = attempt.number,
                started = escape(&attempt.started_at),
                duration = attempt.duration_ms,
                code = escape(&shown(&attempt.status_code)),
                outcome = badge(&attempt.outcome),
                error = escape(&shown(&attempt.error)),
                response = escape(&readable(&attempt.response_body)),
            );
        }
        body.push_str("</table>");
    }
    Ok(Html(layout(&format!("Event {}", detail.id), &body)))
}

pub(crate) async fn redeliver(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if cross_site(&headers) {
        return Err(AdminError::CrossSite.into());
    }
    state.redeliver(&id).await?;
    let location = format!("/events/{}", url_component(&id));
    // `Redirect::to` answers 303 See Other, so the browser follows with a GET.
    Ok(Redirect::to(&location).into_response())
}
