//! The history as text: the `events list` table, `events show`, and the request block
//! `send-test` prints too.

use std::fmt::Write as _;

use rowhook::event::Request;
use rowhook::history::{AttemptView, EventDetail, EventSummary};

/// An optional value as table text: absent as `-`.
fn or_dash<T: ToString>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "-".to_string(), ToString::to_string)
}

/// An RFC 3339 time without its fraction of a second, which a listing does not need.
fn short_time(text: &str) -> String {
    match (text.find('.'), text.ends_with('Z')) {
        (Some(dot), true) => format!("{}Z", &text[..dot]),
        _ => text.to_string(),
    }
}

/// The listing of `events list`: one row per event.
pub(crate) fn summary_table(summaries: &[EventSummary]) -> String {
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|summary| {
            vec![
                summary.id.clone(),
                summary.webhook.clone(),
                summary.kind.clone(),
                or_dash(&summary.row_key),
                summary.status.to_string(),
                summary.attempts.to_string(),
                or_dash(&summary.last_status_code),
                short_time(&summary.created_at),
            ]
        })
        .collect();
    table(
        &[
            "ID", "WEBHOOK", "TYPE", "ROW", "STATUS", "ATTEMPTS", "CODE", "CREATED",
        ],
        &rows,
    )
}

/// Columns padded to their widest cell, two spaces apart; no trailing spaces.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
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

/// `events show` as text: the event's facts, the request, then each attempt.
pub(crate) fn detail_text(detail: &EventDetail) -> String {
    let mut text = String::new();
    let rows = [
        ("event", Some(detail.id.clone())),
        ("webhook", Some(detail.webhook.clone())),
        ("type", Some(detail.kind.clone())),
        ("status", Some(detail.status.to_string())),
        ("attempts", Some(detail.attempts.len().to_string())),
        ("created", Some(detail.created_at.clone())),
        ("next attempt", detail.next_attempt_at.clone()),
        ("finished", detail.finished_at.clone()),
        ("last code", Some(or_dash(&detail.last_status_code))),
        ("last error", detail.last_error.clone()),
        ("render error", detail.render_error.clone()),
    ];
    for (label, value) in rows {
        // Absent facts (no render error, nothing due) would only add noise.
        if let Some(value) = value {
            let _ = writeln!(text, "{label:<13}{value}");
        }
    }
    text.push('\n');
    match &detail.request {
        Some(request) => text.push_str(&request_text(request)),
        None => text.push_str("request\n  (never rendered)\n"),
    }
    text.push_str("\nattempts\n");
    if detail.attempts.is_empty() {
        text.push_str("  none yet\n");
    }
    for attempt in &detail.attempts {
        let _ = writeln!(
            text,
            "  #{}  {}  {} ms  {}",
            attempt.number,
            attempt.started_at,
            attempt.duration_ms,
            attempt_outcome(attempt)
        );
        if let Some(error) = &attempt.error {
            let _ = writeln!(text, "      error: {error}");
        }
        if !attempt.response_body.is_empty() {
            text.push_str("      response:\n");
            push_indented(&mut text, &attempt.response_body, "        ");
        }
    }
    text
}

/// `200 success`, `500 status`, `timeout`: the code when there was one, and the outcome.
fn attempt_outcome(attempt: &AttemptView) -> String {
    match attempt.status_code {
        Some(code) => format!("{code} {}", attempt.outcome),
        None => attempt.outcome.clone(),
    }
}

/// A request as text: the request line, one header a line, the body.
pub(crate) fn request_text(request: &Request) -> String {
    let mut text = format!("request\n  {} {}\n", request.method, request.url);
    for (name, value) in &request.headers {
        let _ = writeln!(text, "  {name}: {value}");
    }
    match &request.body {
        Some(body) => {
            text.push('\n');
            push_indented(&mut text, body, "  ");
        }
        None => text.push_str("  (no body)\n"),
    }
    text
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
    use rowhook::event::Status;

    fn summary() -> EventSummary {
        EventSummary {
            id: "evt_1".into(),
            webhook: "hook".into(),
            model: "order".into(),
            kind: "order.created".into(),
            status: Status::Pending,
            attempts: 0,
            last_status_code: None,
            last_error: None,
            created_at: "2026-11-22T10:00:00.123456Z".into(),
            next_attempt_at: None,
            finished_at: None,
            sequence: 1,
            row_key: Some("42".into()),
        }
    }

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
        let text = summary_table(&[summary()]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "ID     WEBHOOK  TYPE           ROW  STATUS   ATTEMPTS  CODE  CREATED"
        );
        assert_eq!(
            lines[1],
            "evt_1  hook     order.created  42   pending  0         -     2026-11-22T10:00:00Z"
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
        let detail = EventDetail {
            id: "evt_1".into(),
            webhook: "hook".into(),
            model: "order".into(),
            kind: "order.created".into(),
            status: Status::Failed,
            last_status_code: Some(500),
            last_error: Some("HTTP 500".into()),
            created_at: "2026-11-22T10:00:00.000000Z".into(),
            next_attempt_at: None,
            finished_at: None,
            sequence: 1,
            envelope: serde_json::json!({"id": "evt_1"}),
            render_error: None,
            request: Some(Request {
                method: "POST".into(),
                url: "https://example.com/hook".into(),
                headers: vec![
                    ("authorization".into(), "••••".into()),
                    ("content-type".into(), "application/json".into()),
                ],
                body: Some("{\"id\":\"evt_1\"}".into()),
            }),
            attempts: vec![AttemptView {
                number: 1,
                started_at: "2026-11-22T10:00:05.000000Z".into(),
                duration_ms: 12,
                status_code: Some(500),
                outcome: "status".into(),
                error: Some("HTTP 500".into()),
                response_body: "oops".into(),
            }],
        };
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
    fn requests_read_well() {
        let request = Request {
            method: "POST".into(),
            url: "https://example.com/hook".into(),
            headers: vec![("authorization".into(), "••••".into())],
            body: Some("{\"id\":1}".into()),
        };
        assert_eq!(
            request_text(&request),
            "request\n  POST https://example.com/hook\n  authorization: ••••\n\n  {\"id\":1}\n"
        );
    }
}
