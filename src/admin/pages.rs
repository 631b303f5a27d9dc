//! Server-rendered HTML pages: webhooks with counts → events → attempts, with a
//! redeliver button. No JavaScript. Pages are drawn from the same masked JSON views as
//! the API, so a secret masked there is masked here; every dynamic text is escaped.

use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::api::ListingParameters;
use super::error::AdminError;
use super::server::AdminState;
use crate::capture::CaptureStatus;
use crate::history::{self, EventList};

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem auto;\
max-width:80rem;padding:0 1rem;color:#1f2328;line-height:1.4}\
h1,h2{font-weight:600}a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}\
table{border-collapse:collapse;margin:1rem 0;width:100%}\
th,td{border:1px solid #d0d7de;padding:.4rem .6rem;text-align:left;vertical-align:top}\
th{background:#f6f8fa}td.number{text-align:right}\
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:.75rem;overflow:auto;\
white-space:pre-wrap;word-break:break-all;margin:0}\
.badge{display:inline-block;padding:.1rem .55rem;border-radius:1rem;font-size:.85em;font-weight:600}\
.pending{background:#fff8c5;color:#7d4e00}.delivered{background:#dafbe1;color:#116329}\
.failed{background:#ffebe9;color:#a40e26}.success{background:#dafbe1;color:#116329}\
nav a{margin-right:1rem}nav a.current{font-weight:700}\
button{font:inherit;padding:.4rem 1rem;border:1px solid #d0d7de;border-radius:.4rem;\
background:#f6f8fa;cursor:pointer}.muted{color:#656d76}";

/// Escapes text for HTML element content and double- or single-quoted attributes.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Percent-encodes one URL path segment or query value. `form_urlencoded` writes a
/// space as `+`, which a path would keep literally, so spaces become `%20`.
fn url_component(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The capture state as a line: streaming (with the lag) or why not.
fn capture_line(capture: &CaptureStatus) -> String {
    let lag = capture.server_sent.0.saturating_sub(capture.confirmed.0);
    let mut line = format!(
        "{}, confirmed {}, replication lag {lag} bytes",
        capture.state.as_str(),
        capture.confirmed
    );
    if let Some(error) = &capture.last_error {
        line.push_str(&format!(" — {error}"));
    }
    line
}

/// A body as people read it: JSON pretty-printed, anything else as it is.
fn readable(text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
            serde_json::to_string_pretty(&value).unwrap_or_else(|_| text.to_string())
        }
        _ => text.to_string(),
    }
}

/// An optional value as display text: absent as a dash.
fn shown<T: ToString>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "—".to_string(), ToString::to_string)
}

fn badge(status: &str) -> String {
    let status = escape(status);
    format!("<span class=\"badge {status}\">{status}</span>")
}

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{title} · rowhook</title><style>{STYLE}</style></head><body>\
<p><a href=\"/\">rowhook</a></p>{body}</body></html>",
        title = escape(title)
    )
}

/// A failed page: the JSON API's message, as HTML.
pub(super) struct PageError(AdminError);

impl<E: Into<AdminError>> From<E> for PageError {
    fn from(error: E) -> PageError {
        PageError(error.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.0.log();
        let status = self.0.status();
        let title = status.canonical_reason().unwrap_or("Error");
        let body = format!(
            "<h1>{}</h1><p>{}</p>",
            escape(title),
            escape(&self.0.to_string())
        );
        (status, Html(layout(title, &body))).into_response()
    }
}

pub(super) async fn home(State(state): State<AdminState>) -> Result<Html<String>, PageError> {
    let counts = state.store.counts().await?;
    let paused = state.store.paused().await?;
    let capture = state.capture.borrow().clone();
    let mut body = format!("<p>capture: {}</p>", escape(&capture_line(&capture)));
    body.push_str(
        "<h1>Webhooks</h1><table><tr><th>name</th><th>model</th><th>method</th><th>URL</th>\
<th>active</th><th>pending</th><th>delivered</th><th>failed</th></tr>",
    );
    for webhook in history::webhooks(&state.config, &counts, &paused) {
        let _ = write!(
            body,
            "<tr><td><a href=\"/webhooks/{link}\">{name}</a></td><td>{model}</td><td>{method}</td>\
<td>{url}</td><td>{active}</td><td class=\"number\">{pending}</td>\
<td class=\"number\">{delivered}</td><td class=\"number\">{failed}</td></tr>",
            link = escape(&url_component(&webhook.name)),
            name = escape(&webhook.name),
            model = escape(&webhook.model),
            method = escape(&webhook.method),
            url = escape(&webhook.url),
            active = match (webhook.active, webhook.paused) {
                (false, _) => "no",
                (true, true) => "<span class=\"badge failed\">paused</span>",
                (true, false) => "yes",
            },
            pending = webhook.counts.pending,
            delivered = webhook.counts.delivered,
            failed = webhook.counts.failed,
        );
    }
    body.push_str("</table>");
    if let Some(backfills) = &state.backfills {
        body.push_str(&super::backfills::table(&backfills.list(), escape));
    }
    Ok(Html(layout("Webhooks", &body)))
}

pub(super) async fn webhook(
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

pub(super) async fn event(
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

/// Whether the browser says the form was posted from another site. Browsers send Basic
/// credentials with such posts too, so without this check any page could redeliver.
fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|value| value.to_str().ok());
    if text("sec-fetch-site") == Some("cross-site") {
        return true;
    }
    match text(header::ORIGIN.as_str()) {
        None => false,
        Some(origin) => {
            let origin_host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            origin_host.is_none() || origin_host != text(header::HOST.as_str())
        }
    }
}

pub(super) async fn redeliver(
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

/// The webhook page's pause and resume buttons, with the redeliver button's cross-site
/// protection.
pub(super) async fn pause(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    set_paused_from_page(&state, &name, &headers, true).await
}

pub(super) async fn resume(
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_capture_line_says_state_and_lag() {
        let capture = CaptureStatus {
            state: crate::capture::CaptureState::Retrying,
            last_error: Some("connection refused".into()),
            server_sent: crate::change::Lsn(0x200),
            confirmed: crate::change::Lsn(0x100),
        };
        assert_eq!(
            capture_line(&capture),
            "retrying, confirmed 0/100, replication lag 256 bytes — connection refused"
        );
    }

    #[test]
    fn json_bodies_are_pretty_printed() {
        assert_eq!(
            readable(r#"{"a":[1,2]}"#),
            "{\n  \"a\": [\n    1,\n    2\n  ]\n}"
        );
        assert_eq!(readable("plain text"), "plain text");
        assert_eq!(readable("42"), "42");
        assert_eq!(readable(""), "");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x" title='y'>&amp;</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
        );
        assert_eq!(escape("plain — text"), "plain — text");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn encodes_url_components() {
        assert_eq!(url_component("evt_01-a.b_c"), "evt_01-a.b_c");
        assert_eq!(url_component("a~b"), "a%7Eb");
        assert_eq!(url_component("a b/c?d&é"), "a%20b%2Fc%3Fd%26%C3%A9");
    }

    #[test]
    fn detects_cross_site_posts() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        assert!(!cross_site(&headers(&[])));
        assert!(!cross_site(&headers(&[
            ("host", "localhost:8480"),
            ("origin", "http://localhost:8480")
        ])));
        assert!(cross_site(&headers(&[
            ("host", "localhost:8480"),
            ("origin", "https://evil.example")
        ])));
        assert!(cross_site(&headers(&[("origin", "null")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
    }
}
