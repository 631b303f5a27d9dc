//! Request bodies by method and format (CONTRACT §3).

use super::*;

#[test]
fn json_without_fields_or_body_sends_the_envelope() {
    let router = router_with("");
    let event = only_event(&router, &created());
    let request = event.request.as_ref().unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.url, "https://example.com/hook");
    assert_eq!(
        request.headers,
        vec![("content-type".to_string(), "application/json".to_string())]
    );
    let body = request.body.as_deref().unwrap();
    assert_eq!(body, event.envelope.to_string());
    assert!(body.starts_with(&format!(
        r#"{{"id":"{}","type":"order.created","model":"order","action":"create","table":"public.orders","timestamp":"2026-11-22T10:00:00.123456Z","lsn":"0/16B3748","item":{{"id":42,"#,
        event.id
    )));
}

#[test]
fn json_fields_keep_the_type_of_paths_and_make_strings_of_templates() {
    let request = request_with(
        r#"fields = { id = "item.id", items = "item.items", rush = "item.rush", note = "item.note", previous = "old.status", changed = "changed", event = "event.type", label = "Order {{ item.id }}", count = "{{ item.items.qty }}" }"#,
    );
    assert_eq!(header(&request, "content-type"), Some("application/json"));
    assert_eq!(body_json(&request)["items"], json!({"sku": "A1", "qty": 2}));
    let body = request.body.as_deref().unwrap();
    // One key per field, in file order.
    assert_eq!(
        body,
        r#"{"id":42,"items":{"sku":"A1","qty":2},"rush":true,"note":null,"previous":null,"changed":null,"event":"order.created","label":"Order 42","count":"2"}"#
    );
}

#[test]
fn json_body_is_sent_as_rendered() {
    let request = request_with(
        r#"body = """{ "order": {{ item.id }},  "status": {{ item.status | json }} }""""#,
    );
    assert_eq!(
        request.body.as_deref(),
        Some(r#"{ "order": 42,  "status": "paid" }"#)
    );
    assert_eq!(header(&request, "content-type"), Some("application/json"));
}

#[test]
fn json_body_that_is_not_json_is_a_render_error() {
    let message = render_error_with(r#"body = """{"status": {{ item.status }}}""""#);
    assert_eq!(
        message,
        "body: the rendered body is not valid JSON: expected value at line 1 column 12"
    );
}

#[test]
fn form_fields_are_urlencoded() {
    let request = request_with(
        r#"format = "form"
fields = { phone = "item.phone", id = "item.id", rush = "item.rush", note = "item.note", items = "item.items", label = "A & B {{ item.status }}" }"#,
    );
    assert_eq!(
        header(&request, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        request.body.as_deref(),
        Some(
            "phone=%2B1+%22555%22%0Anext&id=42&rush=true&note=\
             &items=%7B%22sku%22%3A%22A1%22%2C%22qty%22%3A2%7D&label=A+%26+B+paid"
        )
    );
}

#[test]
fn form_body_is_sent_as_rendered() {
    let request = request_with(
        r#"format = "form"
body = "phone={{ item.phone | url_encode }}&id={{ item.id }}""#,
    );
    assert_eq!(
        request.body.as_deref(),
        Some("phone=%2B1%20%22555%22%0Anext&id=42")
    );
    assert_eq!(
        header(&request, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

#[test]
fn text_body_is_plain_text() {
    let request = request_with(
        r#"format = "text"
body = "Order {{ item.id }} is {{ item.status }}.""#,
    );
    assert_eq!(request.body.as_deref(), Some("Order 42 is paid."));
    assert_eq!(
        header(&request, "content-type"),
        Some("text/plain; charset=utf-8")
    );
}

#[test]
fn get_sends_fields_as_the_query_string() {
    let request = request_with(
        r#"method = "GET"
url = "https://example.com/orders?source=db"
fields = { id = "item.id", phone = "item.phone", label = "{{ item.status }} order" }"#,
    );
    assert_eq!(request.method, "GET");
    assert_eq!(
        request.url,
        "https://example.com/orders?source=db&id=42&phone=%2B1+%22555%22%0Anext&label=paid+order"
    );
    assert_eq!(request.body, None);
    assert_eq!(header(&request, "content-type"), None);
}

#[test]
fn delete_without_fields_sends_nothing() {
    let request = request_with(
        r#"method = "DELETE"
url = "https://example.com/orders/{{ item.id }}""#,
    );
    assert_eq!(request.method, "DELETE");
    assert_eq!(request.url, "https://example.com/orders/42");
    assert_eq!(request.body, None);
    assert!(request.headers.is_empty());
}

#[test]
fn get_with_fields_and_a_plain_url_starts_the_query() {
    let request = request_with(
        r#"method = "GET"
fields = { id = "item.id" }"#,
    );
    assert_eq!(request.url, "https://example.com/hook?id=42");
}

#[test]
fn url_and_headers_are_rendered_in_order() {
    let request = request_with(
        r#"method = "PUT"
url = "https://example.com/orders/{{ item.id }}?status={{ item.status | url_encode }}"
headers = { X-Order = "{{ item.id }}", Authorization = "Bearer static", X-Event = "{{ event.type }}/{{ event.webhook }}" }"#,
    );
    assert_eq!(request.method, "PUT");
    assert_eq!(request.url, "https://example.com/orders/42?status=paid");
    assert_eq!(
        request.headers,
        vec![
            ("X-Order".to_string(), "42".to_string()),
            ("Authorization".to_string(), "Bearer static".to_string()),
            ("X-Event".to_string(), "order.created/hook".to_string()),
            ("content-type".to_string(), "application/json".to_string()),
        ]
    );
}

#[test]
fn a_configured_content_type_replaces_the_default() {
    let request = request_with(r#"headers = { Content-Type = "application/vnd.shop+json" }"#);
    assert_eq!(
        request.headers,
        vec![(
            "Content-Type".to_string(),
            "application/vnd.shop+json".to_string()
        )]
    );
}

#[test]
fn rendered_urls_must_be_absolute_http() {
    let message = render_error_with(r#"url = "{{ item.status }}/orders""#);
    assert_eq!(
        message,
        "url: \"paid/orders\" is not an absolute http:// or https:// URL: \
         relative URL without a base"
    );
}

#[test]
fn rendered_headers_must_not_break_lines() {
    let message = render_error_with(r#"headers = { X-Phone = "{{ item.phone }}" }"#);
    assert_eq!(
        message,
        "headers.X-Phone: the rendered value contains a line break or NUL, \
         which a header cannot carry"
    );
}

#[test]
fn a_path_to_a_missing_column_is_a_render_error() {
    let message = render_error_with(r#"fields = { serial = "item.serial_number" }"#);
    assert_eq!(
        message,
        "fields.serial: no column \"serial_number\" in item"
    );
}
