//! Routing tests, pure: configurations parsed from text, changes built by hand.
//! `formats` covers request bodies, `matching` the rules and ids, `templates` the
//! Liquid context, filters and compile errors.

mod formats;
mod matching;
mod templates;

use std::path::Path;

use serde_json::{Value, json};

use super::*;
use crate::change::{Action, Change, Lsn, Position, Row, TableName};
use crate::event::Request;

const MODELS: &str = r#"
[source]
url = "postgres://rowhook@localhost/shop"

[models.order]
table = "orders"

[models.customer]
table = "public.customers"
"#;

/// A `[[webhooks]]` table for model `order` named `name`; `keys` may set `url`.
fn webhook(name: &str, keys: &str) -> String {
    let url = if keys
        .lines()
        .any(|line| line.trim_start().starts_with("url"))
    {
        ""
    } else {
        "url = \"https://example.com/hook\"\n"
    };
    format!("\n[[webhooks]]\nname = \"{name}\"\nmodel = \"order\"\n{url}{keys}\n")
}

fn config(webhooks: &str) -> Config {
    let text = format!("{MODELS}{webhooks}");
    match crate::config::parse(Path::new("config/rowhook.toml"), &text, &|_| None) {
        Ok(config) => config,
        Err(errors) => panic!("configuration errors:\n{errors}"),
    }
}

fn router(webhooks: &str) -> Router {
    match Router::new(&config(webhooks)) {
        Ok(router) => router,
        Err(errors) => panic!("compile errors:\n{errors}"),
    }
}

/// The router of a single webhook `hook` with `keys`.
fn router_with(keys: &str) -> Router {
    router(&webhook("hook", keys))
}

fn compile_errors(webhooks: &str) -> Vec<String> {
    match Router::new(&config(webhooks)) {
        Ok(_) => panic!("expected compile errors"),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

/// The single compile error of webhook `hook` with `keys`.
fn compile_error(keys: &str) -> String {
    let mut errors = compile_errors(&webhook("hook", keys));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors.remove(0)
}

fn row(value: Value) -> Row {
    match value {
        Value::Object(map) => map,
        other => panic!("test rows are objects, not {other}"),
    }
}

fn order() -> Value {
    json!({
        "id": 42,
        "status": "paid",
        "total": "99.90",
        "phone": "+1 \"555\"\nnext",
        "note": null,
        "items": {"sku": "A1", "qty": 2},
        "rush": true,
    })
}

fn change(action: Action, item: Value, old: Option<Value>, changed: Option<&[&str]>) -> Change {
    Change {
        action,
        table: TableName::new("public", "orders"),
        item: row(item),
        old: old.map(row),
        changed: changed.map(|columns| columns.iter().map(|column| column.to_string()).collect()),
        lsn: Lsn(0x16B3748),
        position: Position {
            transaction: 0x16B3700,
            sequence: 3,
        },
        // 2026-11-22T10:00:00.123456Z
        commit_time_micros: 1_795_341_600_123_456,
    }
}

fn created() -> Change {
    change(Action::Create, order(), None, None)
}

fn only_event(router: &Router, change: &Change) -> RoutedEvent {
    let mut events = router.route(change);
    assert_eq!(events.len(), 1, "{events:#?}");
    events.remove(0)
}

/// The request of the single event `keys` create for a new order.
fn request_with(keys: &str) -> Request {
    request_for(keys, &created())
}

fn request_for(keys: &str, change: &Change) -> Request {
    match only_event(&router_with(keys), change).request {
        Ok(request) => request,
        Err(error) => panic!("render error: {error}"),
    }
}

/// The render error of the single event `keys` create for a new order.
fn render_error_with(keys: &str) -> String {
    match only_event(&router_with(keys), &created()).request {
        Ok(request) => panic!("expected a render error, got {request:#?}"),
        Err(error) => error.to_string(),
    }
}

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(header, _)| header.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

fn body_json(request: &Request) -> Value {
    let body = request.body.as_deref().unwrap_or_else(|| panic!("no body"));
    serde_json::from_str(body).unwrap_or_else(|error| panic!("{error}: {body}"))
}
