//! End to end: a row change in PostgreSQL becomes exactly the request each webhook's
//! configuration describes, received by a real HTTP server.

#[macro_use]
mod support;

use std::time::Duration;

use rowhook::signature;
use serde_json::json;
use support::receiver::Receiver;
use support::{Mode, Service, TestDatabase, rowhook, text};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn config(receiver: &Receiver) -> String {
    let url = |path: &str| receiver.url(path);
    format!(
        r#"
[delivery]
retry = ["0s"]

[models.order]
table = "orders"

[[webhooks]]
name = "full-json"
model = "order"
url = "{full}"

[[webhooks]]
name = "json-fields"
model = "order"
on = ["create"]
url = "{fields}"
fields = {{ total = "item.total", id = "item.id", items = "item.items", note = "Order {{{{ item.id }}}}" }}

[[webhooks]]
name = "json-body"
model = "order"
on = ["create"]
method = "PUT"
url = "{body}"
body = """{{"phone": {{{{ item.phone | json }}}}, "n": {{{{ item.id }}}}}}"""
headers = {{ Authorization = "Bearer ${{ROWHOOK_TEST_TOKEN}}", X-Order = "{{{{ item.id }}}}" }}

[[webhooks]]
name = "form-fields"
model = "order"
on = ["create"]
format = "form"
url = "{form}"
fields = {{ phone = "item.phone", text = "Hello {{{{ item.status }}}}" }}

[[webhooks]]
name = "form-body"
model = "order"
on = ["create"]
format = "form"
url = "{form_body}"
body = "phone={{{{ item.phone | url_encode }}}}&id={{{{ item.id }}}}"

[[webhooks]]
name = "text-body"
model = "order"
on = ["create"]
format = "text"
method = "PATCH"
url = "{text_url}"
body = "order {{{{ item.id }}}} is {{{{ item.status }}}}"

[[webhooks]]
name = "get-query"
model = "order"
on = ["create"]
method = "GET"
url = "{lookup}?source=rowhook"
fields = {{ id = "item.id", status = "item.status" }}

[[webhooks]]
name = "delete-call"
model = "order"
on = ["delete"]
method = "DELETE"
url = "{orders}/{{{{ item.id }}}}"

[[webhooks]]
name = "signed"
model = "order"
on = ["create"]
url = "{signed}"
secret = "{SECRET}"
event_id_header = "x-event-id"
headers = {{ Content-Type = "application/vnd.shop+json" }}
"#,
        full = url("/full"),
        fields = url("/orders/{{ item.id }}/fields"),
        body = url("/body"),
        form = url("/form"),
        form_body = url("/form-body"),
        text_url = url("/text"),
        lookup = url("/lookup"),
        orders = url("/orders"),
        signed = url("/signed"),
    )
}

async fn every_format_and_method_sends_the_request_its_config_describes(mode: Mode) {
    let database = TestDatabase::create_in(mode).await;
    database
        .execute(
            "CREATE TABLE orders (id integer PRIMARY KEY, status text, phone text,
                                  total numeric(10, 2), items jsonb)",
        )
        .await;
    let receiver = Receiver::start().await;
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("ROWHOOK_TEST_TOKEN", "secret-token") };
    let config = database.write_config(&config(&receiver));
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let service = Service::start(&database, &config).await;

    database
        .execute(
            r#"INSERT INTO orders VALUES (7, 'paid', '+1 555 "x"', 12.50, '{"sku": "A1"}');
               DELETE FROM orders WHERE id = 7;"#,
        )
        .await;
    let requests = receiver.wait_for(10, Duration::from_secs(30)).await;
    service.stop();
    let by_path = |target: &str| {
        let found: Vec<_> = requests
            .iter()
            .filter(|request| request.target == target)
            .collect();
        assert_eq!(found.len(), 1, "one request to {target}: {requests:#?}");
        found[0].clone()
    };

    for request in &requests {
        assert_eq!(
            request.header("user-agent"),
            Some(concat!("rowhook/", env!("CARGO_PKG_VERSION")))
        );
        let id = request
            .header("webhook-id")
            .or(request.header("x-event-id"))
            .expect("every request carries its event id");
        assert!(id.starts_with("evt_") && id.len() <= 64, "{id}");
    }

    let mut full: Vec<_> = requests
        .iter()
        .filter(|request| request.target == "/full")
        .collect();
    assert_eq!(full.len(), 2, "create and delete");
    // Both are delivered at once, in no particular order.
    full.sort_by_key(|request| request.json()["type"] != "order.created");
    let created = full[0].json();
    assert_eq!(full[0].method, "POST");
    assert_eq!(full[0].header("content-type"), Some("application/json"));
    assert_eq!(created["id"], full[0].header("webhook-id").unwrap());
    assert_eq!(created["type"], "order.created");
    assert_eq!(
        created["item"],
        json!({"id": 7, "status": "paid", "phone": "+1 555 \"x\"", "total": "12.50", "items": {"sku": "A1"}})
    );
    assert_eq!(full[1].json()["type"], "order.deleted");

    let fields = by_path("/orders/7/fields");
    assert_eq!(fields.header("content-type"), Some("application/json"));
    assert_eq!(
        fields.body,
        r#"{"total":"12.50","id":7,"items":{"sku":"A1"},"note":"Order 7"}"#
    );

    let body = by_path("/body");
    assert_eq!(body.method, "PUT");
    assert_eq!(body.body, r#"{"phone": "+1 555 \"x\"", "n": 7}"#);
    assert_eq!(body.header("authorization"), Some("Bearer secret-token"));
    assert_eq!(body.header("x-order"), Some("7"));

    let form = by_path("/form");
    assert_eq!(
        form.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(form.body, "phone=%2B1+555+%22x%22&text=Hello+paid");

    let form_body = by_path("/form-body");
    assert_eq!(
        form_body.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert!(
        form_body.body == "phone=%2B1+555+%22x%22&id=7"
            || form_body.body == "phone=%2B1%20555%20%22x%22&id=7",
        "{}",
        form_body.body
    );

    let text_request = by_path("/text");
    assert_eq!(text_request.method, "PATCH");
    assert_eq!(
        text_request.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(text_request.body, "order 7 is paid");

    let lookup = by_path("/lookup?source=rowhook&id=7&status=paid");
    assert_eq!(lookup.method, "GET");
    assert_eq!(lookup.body, "");
    assert_eq!(lookup.header("content-type"), None);

    let deleted = by_path("/orders/7");
    assert_eq!(deleted.method, "DELETE");
    assert_eq!(deleted.body, "");

    let signed = by_path("/signed");
    assert_eq!(
        signed.header("content-type"),
        Some("application/vnd.shop+json")
    );
    let id = signed.header("x-event-id").expect("custom event id header");
    assert_eq!(signed.header("webhook-id"), Some(id));
    let timestamp = signed.header("webhook-timestamp").expect("timestamp");
    let signature_header = signed.header("webhook-signature").expect("signature");
    assert!(signature::verify(
        SECRET,
        id,
        timestamp,
        signed.body.as_bytes(),
        signature_header
    ));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - timestamp.parse::<i64>().unwrap()).abs() < 60);
}

in_both_modes!(every_format_and_method_sends_the_request_its_config_describes);
