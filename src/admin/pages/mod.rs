//! Server-rendered HTML pages: webhooks with counts → events → attempts, with a
//! redeliver button. No JavaScript. Pages are drawn from the same masked JSON views as
//! the API, so a secret masked there is masked here; every dynamic text is escaped.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};

mod chart;
mod event;
mod rows;
mod webhook;

use super::error::AdminError;
use super::server::AdminState;
use crate::capture::CaptureStatus;
use crate::event::Status;
use crate::history::{self, EventSummary};
pub(super) use event::{event, redeliver};
pub(super) use rows::rows;
pub(super) use webhook::{pause, resume, webhook};

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
nav a{margin-right:1rem}form.search{margin:1rem 0}input{font:inherit;padding:.3rem}nav a.current{font-weight:700}\
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

/// A table of events, with their webhook's column when they are of several.
fn events_table(events: &[EventSummary], with_webhook: bool) -> String {
    let mut table = String::from("<table><tr><th>id</th>");
    if with_webhook {
        table.push_str("<th>webhook</th>");
    }
    table.push_str(
        "<th>type</th><th>row</th><th>status</th><th>attempts</th><th>last status code</th>\
<th>last error</th><th>created</th></tr>",
    );
    for event in events {
        let _ = write!(
            table,
            "<tr><td><a href=\"/events/{link}\">{id}</a></td>",
            link = escape(&url_component(&event.id)),
            id = escape(&event.id),
        );
        if with_webhook {
            let _ = write!(
                table,
                "<td><a href=\"/webhooks/{link}\">{name}</a></td>",
                link = escape(&url_component(&event.webhook)),
                name = escape(&event.webhook),
            );
        }
        let row = match &event.row_key {
            Some(key) => format!(
                "<a href=\"/rows?model={model}&amp;key={key_link}\">{key}</a>",
                model = escape(&url_component(&event.model)),
                key_link = escape(&url_component(key)),
                key = escape(key),
            ),
            None => String::new(),
        };
        let _ = write!(
            table,
            "<td>{kind}</td><td>{row}</td><td>{status}</td><td class=\"number\">{attempts}</td>\
<td>{code}</td><td>{error}</td><td>{created}</td></tr>",
            kind = escape(&event.kind),
            status = badge(event.status.as_str()),
            attempts = event.attempts,
            code = escape(&shown(&event.last_status_code)),
            error = escape(&shown(&event.last_error)),
            created = escape(&event.created_at),
        );
    }
    table.push_str("</table>");
    if events.is_empty() {
        table.push_str("<p class=\"muted\">No events.</p>");
    }
    table
}

/// The search box for a row's history (CONTRACT §9), on the home page and atop results.
fn row_search(config: &crate::config::Config, model: Option<&str>, key: Option<&str>) -> String {
    let mut form = String::from(
        "<form method=\"get\" action=\"/rows\" class=\"search\"><label>row of \
<select name=\"model\">",
    );
    for name in config.models.keys() {
        let selected = if Some(name.as_str()) == model {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            form,
            "<option{selected}>{name}</option>",
            name = escape(name)
        );
    }
    let _ = write!(
        form,
        "</select></label> <label>key <input name=\"key\" value=\"{key}\" \
placeholder=\"42 or a=1,b=2\"></label> <button type=\"submit\">Find events</button></form>",
        key = escape(key.unwrap_or_default())
    );
    form
}

/// The inbound request log's page.
pub(in crate::admin) fn inbound_page(records: &[crate::inbound::InboundRecord]) -> String {
    let body = format!(
        "<h1>Inbound requests</h1>{}",
        super::inbound::table(records, escape)
    );
    layout("Inbound requests", &body)
}

/// A failed page: the JSON API's message, as HTML.
pub(in crate::admin) struct PageError(AdminError);

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
    body.push_str(&row_search(&state.config, None, None));
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
    if !state.config.alerts.is_empty() {
        body.push_str(
            "<h2>Alert targets</h2><table><tr><th>name</th><th>URL</th><th>alerts</th>\
<th>pending</th><th>delivered</th><th>failed</th></tr>",
        );
        for target in &state.config.alerts {
            let queue = target.queue_name();
            let count = |status| {
                counts
                    .get(&queue)
                    .and_then(|counts| counts.get(&status))
                    .copied()
                    .unwrap_or(0)
            };
            let kinds: Vec<&str> = target.on.iter().map(|kind| kind.as_str()).collect();
            let _ = write!(
                body,
                "<tr><td><a href=\"/webhooks/{link}\">{name}</a></td><td>{url}</td><td>{kinds}</td>\
<td class=\"number\">{pending}</td><td class=\"number\">{delivered}</td>\
<td class=\"number\">{failed}</td></tr>",
                link = escape(&url_component(&queue)),
                name = escape(&target.name),
                url = escape(&state.config.secrets.mask_all(&target.url)),
                kinds = escape(&kinds.join(", ")),
                pending = count(Status::Pending),
                delivered = count(Status::Delivered),
                failed = count(Status::Failed),
            );
        }
        body.push_str("</table>");
    }
    if let Some(inbound) = &state.config.inbound {
        let _ = write!(
            body,
            "<h2>Inbound</h2><p>{} endpoint(s) on {} · <a href=\"/inbound\">request log</a></p>",
            inbound.endpoints.len(),
            inbound.listen
        );
    }
    if let Some(backfills) = &state.backfills {
        body.push_str(&super::backfills::table(&backfills.list(), escape));
    }
    Ok(Html(layout("Webhooks", &body)))
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
