//! `[[webhooks]]`: each webhook's keys, its delivery overrides, and the rules that tie
//! `format`, `fields`, `body` and `method` together (CONTRACT §3).

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use toml::{Table, Value};

use super::delivery::{self, CLIENT_HEADERS, invalid_header_name, is_header_name};
use super::reader::{Reader, index_path, key_path};
use super::{AlertConfig, DeliveryConfig, Format, Method, ModelConfig, WebhookConfig};
use super::{alerts, relations};
use crate::change::Action;

/// Event ids embed the webhook name and must stay within 64 characters.
const MAX_NAME_CHARACTERS: usize = 32;

const OWN_KEYS: [&str; 15] = [
    "name", "model", "on", "active", "method", "url", "format", "fields", "body", "headers",
    "when", "columns", "secret", "include", "alerts",
];

/// Standard Webhooks headers, set by rowhook when the webhook has a `secret`.
const SIGNATURE_HEADERS: [&str; 3] = ["webhook-id", "webhook-timestamp", "webhook-signature"];

pub(super) fn read_webhooks(
    reader: &mut Reader,
    document: &Table,
    models: &BTreeMap<String, Option<ModelConfig>>,
    delivery: &DeliveryConfig,
    alert_targets: &[AlertConfig],
) -> Vec<WebhookConfig> {
    let mut first_by_name: BTreeMap<String, String> = BTreeMap::new();
    let mut webhooks = Vec::new();
    for (index, table) in reader.array_of_tables(document, "", "webhooks") {
        let path = index_path("webhooks", index);
        let mut webhook = read_webhook(reader, table, &path, models, delivery);
        webhook.alerts = alerts::read_webhook_alerts(reader, table, &path, alert_targets);
        if !webhook.name.is_empty() {
            match first_by_name.get(&webhook.name) {
                Some(first) => reader.error(
                    key_path(&path, "name"),
                    format!("duplicate webhook name {:?} (also {first})", webhook.name),
                ),
                None => {
                    first_by_name.insert(webhook.name.clone(), path.clone());
                }
            }
        }
        webhooks.push(webhook);
    }
    webhooks
}

fn read_webhook(
    reader: &mut Reader,
    table: &Table,
    path: &str,
    models: &BTreeMap<String, Option<ModelConfig>>,
    global_delivery: &DeliveryConfig,
) -> WebhookConfig {
    delivery::reject_unknown_target_keys(reader, table, path, &OWN_KEYS);

    let name = read_name(reader, table, path, "webhook");
    let model = read_model_reference(reader, table, path, models);
    let on = read_actions(reader, table, path);
    let active = reader.boolean(table, path, "active").unwrap_or(true);
    let method = read_method(reader, table, path);
    let format = read_format(reader, table, path);
    let url = read_url(reader, table, path);
    let fields = read_fields(reader, table, path);
    let body = reader.string(table, path, "body").map(|body| body.text);
    if let (Some(method), Some(format)) = (method, format) {
        check_body_rules(reader, table, path, method, format);
    }

    let delivery = delivery::read_overrides(reader, table, path, global_delivery);
    let secret = read_secret(reader, table, path);
    let (headers, secret_headers) = read_headers(reader, table, path, &delivery, secret.is_some());
    if secret.is_some() && SIGNATURE_HEADERS[1..].contains(&delivery.event_id_header.as_str()) {
        reader.error(
            key_path(path, "event_id_header"),
            format!(
                "{:?} carries the Standard Webhooks signature of this signed webhook; pick another header name",
                delivery.event_id_header
            ),
        );
    }

    let when = reader.string(table, path, "when").map(|when| when.text);
    if when.as_deref() == Some("") {
        reader.error(
            key_path(path, "when"),
            "must not be empty (leave it out instead)",
        );
    }
    let columns = read_columns(reader, table, path);
    let include = relations::read_includes(reader, table, path, &model, models);

    WebhookConfig {
        name,
        model,
        on,
        active,
        method: method.unwrap_or(Method::Post),
        url,
        format: format.unwrap_or(Format::Json),
        fields,
        body,
        headers,
        secret_headers,
        when,
        columns,
        include,
        secret,
        delivery,
        alerts: Vec::new(),
    }
}

/// A name: 1 to 32 characters of `a-z`, `0-9`, `_` and `-`; `what` names the thing named.
pub(super) fn read_name(reader: &mut Reader, table: &Table, path: &str, what: &str) -> String {
    let Some(name) = reader.required_string(table, path, "name") else {
        return String::new();
    };
    let is_name = (1..=MAX_NAME_CHARACTERS).contains(&name.text.len())
        && name.text.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"_-".contains(&byte)
        });
    if !is_name {
        reader.error(
            key_path(path, "name"),
            format!(
                "invalid {what} name {:?}: expected 1 to 32 characters of a-z, 0-9, _ and -",
                name.text
            ),
        );
    }
    name.text
}

fn read_model_reference(
    reader: &mut Reader,
    table: &Table,
    path: &str,
    models: &BTreeMap<String, Option<ModelConfig>>,
) -> String {
    let Some(model) = reader.required_string(table, path, "model") else {
        return String::new();
    };
    if !models.contains_key(&model.text) {
        let declared: Vec<&str> = models.keys().map(String::as_str).collect();
        let declared = if declared.is_empty() {
            "none".to_string()
        } else {
            declared.join(", ")
        };
        reader.error(
            key_path(path, "model"),
            format!(
                "unknown model {:?} (declared models: {declared})",
                model.text
            ),
        );
    }
    model.text
}

/// `None` when the value is not a known method (reported); POST when left out. Any
/// letter case is accepted, as HTTP tools commonly do.
fn read_method(reader: &mut Reader, table: &Table, path: &str) -> Option<Method> {
    let Some(method) = reader.string(table, path, "method") else {
        return table.get("method").is_none().then_some(Method::Post);
    };
    let found = Method::ALL
        .into_iter()
        .find(|known| known.as_str().eq_ignore_ascii_case(&method.text));
    if found.is_none() {
        reader.error(
            key_path(path, "method"),
            format!(
                "unknown method {:?}: expected GET, POST, PUT, PATCH or DELETE",
                method.text
            ),
        );
    }
    found
}

/// `None` when the value is not a known format (reported); json when left out.
fn read_format(reader: &mut Reader, table: &Table, path: &str) -> Option<Format> {
    let Some(format) = reader.string(table, path, "format") else {
        return table.get("format").is_none().then_some(Format::Json);
    };
    let found = [Format::Json, Format::Form, Format::Text]
        .into_iter()
        .find(|known| known.as_str() == format.text);
    if found.is_none() {
        reader.error(
            key_path(path, "format"),
            format!(
                "unknown format {:?}: expected json, form or text",
                format.text
            ),
        );
    }
    found
}

pub(super) fn read_url(reader: &mut Reader, table: &Table, path: &str) -> String {
    let Some(url) = reader.required_string(table, path, "url") else {
        return String::new();
    };
    if !is_plausible_url(&url.text) {
        reader.error(
            key_path(path, "url"),
            "expected an http:// or https:// URL (or a template that renders one)",
        );
    }
    url.text
}

fn read_fields(reader: &mut Reader, table: &Table, path: &str) -> Option<Vec<(String, String)>> {
    let entries = reader.string_table(table, path, "fields")?;
    let fields_path = key_path(path, "fields");
    let mut fields = Vec::with_capacity(entries.len());
    for (field, value) in entries {
        if field.is_empty() {
            reader.error(key_path(&fields_path, &field), "empty field name");
        } else if value.text.is_empty() {
            reader.error(key_path(&fields_path, &field), "must not be empty");
        }
        fields.push((field, value.text));
    }
    Some(fields)
}

fn read_actions(reader: &mut Reader, table: &Table, path: &str) -> Vec<Action> {
    let Some(elements) = reader.string_array(table, path, "on") else {
        return Action::ALL.to_vec();
    };
    if matches!(table.get("on"), Some(Value::Array(raw)) if raw.is_empty()) {
        reader.error(
            key_path(path, "on"),
            "must list at least one action (create, update, delete)",
        );
    }
    let mut actions = BTreeSet::new();
    for (element_path, word) in elements {
        match word.text.parse::<Action>() {
            Ok(action) => {
                actions.insert(action);
            }
            Err(()) => reader.error(
                element_path,
                format!(
                    "unknown action {:?}: expected create, update or delete",
                    word.text
                ),
            ),
        }
    }
    actions.into_iter().collect()
}

/// Presence is taken from the table itself, so that a `body` whose `${NAME}` failed to
/// expand does not also count as missing.
fn check_body_rules(
    reader: &mut Reader,
    table: &Table,
    path: &str,
    method: Method,
    format: Format,
) {
    let has_fields = table.contains_key("fields");
    let has_body = table.contains_key("body");
    if has_fields && has_body {
        reader.error(key_path(path, "body"), "fields and body cannot both be set");
        return;
    }
    match format {
        Format::Form if !has_fields && !has_body => reader.error(
            key_path(path, "format"),
            "format \"form\" needs fields or body",
        ),
        Format::Text if has_fields => reader.error(
            key_path(path, "fields"),
            "format \"text\" takes a body, not fields",
        ),
        Format::Text if !has_body && !method.sends_body() => reader.error(
            key_path(path, "format"),
            format!(
                "method {} sends no body, so format \"text\" has nothing to send: use \
                 fields (they become the query string) with format \"json\" or \"form\"",
                method.as_str()
            ),
        ),
        Format::Text if !has_body => {
            reader.error(key_path(path, "format"), "format \"text\" needs a body")
        }
        _ => {}
    }
    if has_body && !method.sends_body() {
        reader.error(
            key_path(path, "body"),
            format!(
                "method {} sends no body (its fields become the query string)",
                method.as_str()
            ),
        );
    }
}

/// Literal URLs must be http(s); one that starts with a Liquid tag is checked when it is
/// rendered.
fn is_plausible_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let has_host = |rest: &str| !rest.is_empty() && !rest.starts_with('/');
    lower.strip_prefix("https://").is_some_and(has_host)
        || lower.strip_prefix("http://").is_some_and(has_host)
        || url.starts_with("{{")
        || url.starts_with("{%")
}

pub(super) fn read_secret(reader: &mut Reader, table: &Table, path: &str) -> Option<String> {
    let secret = reader.string(table, path, "secret")?.text;
    let is_valid = secret
        .strip_prefix("whsec_")
        .and_then(|key| STANDARD.decode(key).ok())
        .is_some_and(|key| !key.is_empty());
    if is_valid {
        Some(secret)
    } else {
        // The value is a secret: never echo it.
        reader.error(
            key_path(path, "secret"),
            "invalid secret: expected \"whsec_\" followed by a standard base64 key",
        );
        None
    }
}

pub(super) fn read_headers(
    reader: &mut Reader,
    table: &Table,
    path: &str,
    delivery: &DeliveryConfig,
    signed: bool,
) -> (Vec<(String, String)>, BTreeSet<String>) {
    let headers_path = key_path(path, "headers");
    let mut headers = Vec::new();
    let mut secret_headers = BTreeSet::new();
    let mut first_by_lower_name: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in reader
        .string_table(table, path, "headers")
        .unwrap_or_default()
    {
        let header_path = key_path(&headers_path, &name);
        let lower_name = name.to_ascii_lowercase();
        if !is_header_name(&name) {
            reader.error(&header_path, invalid_header_name(&name));
        } else if let Some(first) = first_by_lower_name.get(&lower_name) {
            reader.error(&header_path, format!("duplicate header (also {first})"));
        } else if CLIENT_HEADERS.contains(&lower_name.as_str()) {
            reader.error(&header_path, "set by the HTTP client; leave it out");
        } else if lower_name == delivery.event_id_header {
            reader.error(&header_path, "set by rowhook: it carries the event id");
        } else if lower_name == "user-agent" {
            reader.error(
                &header_path,
                "set by rowhook: every request says rowhook/<version>",
            );
        } else if signed && SIGNATURE_HEADERS.contains(&lower_name.as_str()) {
            reader.error(&header_path, "set by rowhook: the webhook has a secret");
        }
        // Checked after expansion: a variable read with `$(cat file)` often ends in a
        // newline, which would split the header.
        if value.text.contains(['\r', '\n', '\0']) {
            reader.error(
                &header_path,
                "header value must not contain line breaks or NUL",
            );
        }
        first_by_lower_name
            .entry(lower_name.clone())
            .or_insert_with(|| name.clone());
        if value.from_environment {
            secret_headers.insert(lower_name);
        }
        headers.push((name, value.text));
    }
    (headers, secret_headers)
}

fn read_columns(reader: &mut Reader, table: &Table, path: &str) -> Option<Vec<String>> {
    let elements = reader.string_array(table, path, "columns")?;
    if matches!(table.get("columns"), Some(Value::Array(raw)) if raw.is_empty()) {
        reader.error(
            key_path(path, "columns"),
            "must list at least one column (leave it out to react to every change)",
        );
    }
    let mut columns = Vec::with_capacity(elements.len());
    for (element_path, column) in elements {
        if column.text.is_empty() {
            reader.error(element_path, "empty column name");
        } else if !columns.contains(&column.text) {
            columns.push(column.text);
        }
    }
    Some(columns)
}
