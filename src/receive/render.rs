//! A received request as text for a person: one separator line, the headers, the
//! signature verdict, the answer, then the body in the most readable shape its content
//! type allows. Pure: `rowhook receive` prints it, `rowhook demo` prints parts of it.

use std::fmt::Write as _;

use serde_json::Value;

use super::{Receipt, ReceivedRequest};
use crate::time::rfc3339_from_unix_ms as time_text;

/// How JSON bodies are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonLayout {
    /// Indented all the way down, as `serde_json::to_string_pretty` writes it.
    Pretty,
    /// One line per top-level key (or array element), nested values compact: an event
    /// envelope stays a dozen lines however many columns the row has.
    TopLevelLines,
}

/// The whole request as `rowhook receive` prints it, ending with a blank line.
pub fn render(receipt: &Receipt) -> String {
    let request = &receipt.request;
    let mut text = separator(request);
    text.push_str(&header_lines(request, None));
    match &receipt.signature {
        Some(check) => {
            let _ = writeln!(text, "signature: {check}");
        }
        None if request.header("webhook-signature").is_some() => {
            text.push_str("signature: not checked (no secret given)\n");
        }
        None => {}
    }
    let _ = writeln!(text, "answered: {}", receipt.status);
    text.push('\n');
    text.push_str(&body_text(request, JsonLayout::Pretty));
    text.push('\n');
    text
}

/// `──── <time> <method> <path and query> ────`, with a newline.
pub fn separator(request: &ReceivedRequest) -> String {
    format!(
        "──── {}  {} {} ────\n",
        millisecond_time(request.received_at_ms),
        request.method,
        request.target
    )
}

/// `name: value` lines: every header as received, or only those in `only` (lower-case
/// names) in that order.
pub fn header_lines(request: &ReceivedRequest, only: Option<&[&str]>) -> String {
    let mut text = String::new();
    match only {
        None => {
            for (name, value) in &request.headers {
                let _ = writeln!(text, "{name}: {value}");
            }
        }
        Some(names) => {
            for name in names {
                if let Some(value) = request.header(name) {
                    let _ = writeln!(text, "{name}: {value}");
                }
            }
        }
    }
    text
}

/// The body, ending with a newline: JSON laid out by `layout`, a form as decoded
/// `key = value` lines, anything else as it is.
pub fn body_text(request: &ReceivedRequest, layout: JsonLayout) -> String {
    if request.body.is_empty() {
        return "(no body)\n".to_string();
    }
    let Ok(raw) = std::str::from_utf8(&request.body) else {
        return format!("({} bytes that are not UTF-8 text)\n", request.body.len());
    };
    let content_type = request
        .header("content-type")
        .and_then(|value| value.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if content_type == "application/json" || content_type.ends_with("+json") {
        return match serde_json::from_str::<Value>(raw) {
            Ok(value) => json_text(&value, layout),
            Err(error) => format!(
                "{}\n(the body is not valid JSON: {error})\n",
                raw.trim_end()
            ),
        };
    }
    if content_type == "application/x-www-form-urlencoded" {
        return form_text(raw);
    }
    format!("{}\n", raw.trim_end())
}

fn json_text(value: &Value, layout: JsonLayout) -> String {
    let compact = |value: &Value| value.to_string();
    let text = match (layout, value) {
        (JsonLayout::Pretty, _) => serde_json::to_string_pretty(value).unwrap_or_default(),
        (JsonLayout::TopLevelLines, Value::Object(fields)) if !fields.is_empty() => {
            let lines: Vec<String> = fields
                .iter()
                .map(|(key, value)| {
                    format!(
                        "  {}: {}",
                        compact(&Value::from(key.as_str())),
                        compact(value)
                    )
                })
                .collect();
            format!("{{\n{}\n}}", lines.join(",\n"))
        }
        (JsonLayout::TopLevelLines, Value::Array(elements)) if !elements.is_empty() => {
            let lines: Vec<String> = elements
                .iter()
                .map(|element| format!("  {}", compact(element)))
                .collect();
            format!("[\n{}\n]", lines.join(",\n"))
        }
        (JsonLayout::TopLevelLines, scalar) => compact(scalar),
    };
    text + "\n"
}

/// Each pair of a form body decoded, one `key = value` a line.
fn form_text(raw: &str) -> String {
    let mut text = String::new();
    for (key, value) in form_urlencoded::parse(raw.trim_end().as_bytes()) {
        let _ = writeln!(text, "{key} = {value}");
    }
    if text.is_empty() {
        text.push_str("(an empty form)\n");
    }
    text
}

/// RFC 3339 in UTC with milliseconds: enough to tell a retry's delay at a glance.
fn millisecond_time(unix_ms: u64) -> String {
    let micros = time_text(unix_ms);
    // `time_text` writes six fraction digits before the `Z`; the last three are zero.
    match micros.strip_suffix("000Z") {
        Some(millis) => format!("{millis}Z"),
        None => micros,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receive::SignatureCheck;

    fn request(content_type: Option<&str>, body: &str) -> ReceivedRequest {
        let mut headers = vec![("host".to_string(), "127.0.0.1:9000".to_string())];
        if let Some(content_type) = content_type {
            headers.push(("content-type".to_string(), content_type.to_string()));
        }
        ReceivedRequest {
            received_at_ms: 1_795_000_000_123,
            method: "POST".into(),
            target: "/hooks/orders?source=rowhook".into(),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_whole_request_reads_top_to_bottom() {
        let receipt = Receipt {
            request: request(Some("application/json"), r#"{"id":1,"tags":["a"]}"#),
            signature: Some(SignatureCheck::Invalid("missing header webhook-id".into())),
            status: 503,
        };
        assert_eq!(
            render(&receipt),
            "──── 2026-11-18T11:06:40.123Z  POST /hooks/orders?source=rowhook ────\n\
             host: 127.0.0.1:9000\n\
             content-type: application/json\n\
             signature: INVALID (missing header webhook-id)\n\
             answered: 503\n\
             \n\
             {\n  \"id\": 1,\n  \"tags\": [\n    \"a\"\n  ]\n}\n\
             \n"
        );
    }

    #[test]
    fn an_unchecked_signature_is_said_only_when_one_was_sent() {
        let mut receipt = Receipt {
            request: request(None, ""),
            signature: None,
            status: 200,
        };
        assert!(!render(&receipt).contains("signature"));
        receipt
            .request
            .headers
            .push(("webhook-signature".into(), "v1,abc".into()));
        assert!(render(&receipt).contains("signature: not checked (no secret given)\n"));
    }

    #[test]
    fn top_level_lines_keep_nested_values_on_one_line() {
        let body = r#"{"id":"evt_1","item":{"id":1,"items":[{"sku":"A1"}]},"old":null}"#;
        let text = body_text(
            &request(Some("application/json; charset=utf-8"), body),
            JsonLayout::TopLevelLines,
        );
        assert_eq!(
            text,
            "{\n  \"id\": \"evt_1\",\n  \"item\": {\"id\":1,\"items\":[{\"sku\":\"A1\"}]},\n  \"old\": null\n}\n"
        );
        let array = body_text(
            &request(Some("application/cloudevents+json"), "[1,{\"a\":2}]"),
            JsonLayout::TopLevelLines,
        );
        assert_eq!(array, "[\n  1,\n  {\"a\":2}\n]\n");
    }

    #[test]
    fn forms_are_decoded_into_key_value_lines() {
        let body = "phone=%2B44+20+7946+0018&note=call+me+%26+ask%3F&empty=";
        assert_eq!(
            body_text(
                &request(Some("application/x-www-form-urlencoded"), body),
                JsonLayout::Pretty
            ),
            "phone = +44 20 7946 0018\nnote = call me & ask?\nempty = \n"
        );
    }

    #[test]
    fn other_bodies_are_shown_as_they_are() {
        assert_eq!(
            body_text(&request(Some("text/plain"), "hello\n"), JsonLayout::Pretty),
            "hello\n"
        );
        assert_eq!(
            body_text(&request(None, ""), JsonLayout::Pretty),
            "(no body)\n"
        );
        assert_eq!(
            body_text(
                &request(Some("application/json"), "{oops"),
                JsonLayout::Pretty
            ),
            "{oops\n(the body is not valid JSON: key must be a string at line 1 column 2)\n"
        );
        let mut binary = request(Some("application/octet-stream"), "");
        binary.body = vec![0xff, 0xfe, 0x00];
        assert_eq!(
            body_text(&binary, JsonLayout::Pretty),
            "(3 bytes that are not UTF-8 text)\n"
        );
    }

    #[test]
    fn only_the_chosen_headers_in_the_chosen_order() {
        let request = request(Some("text/plain"), "x");
        assert_eq!(
            header_lines(&request, Some(&["content-type", "webhook-id", "host"])),
            "content-type: text/plain\nhost: 127.0.0.1:9000\n"
        );
    }
}
