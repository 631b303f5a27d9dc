use std::path::Path;

use super::*;

#[test]
fn unknown_top_level_key() {
    assert_eq!(
        error(&format!("colour = \"red\"\n{MINIMAL}")),
        "config/rowhook.toml: colour: unknown key \
         (expected one of: source, store, admin, delivery, models, webhooks, alerts, \
         inbound)"
    );
}

#[test]
fn unknown_key_in_a_webhook() {
    assert_eq!(
        error(&with_webhook("timout = \"5s\"")),
        "config/rowhook.toml: webhooks[0].timout: unknown key (did you mean \"timeout\"?)"
    );
    assert!(error(&with_webhook("colour = 1")).starts_with(
        "config/rowhook.toml: webhooks[0].colour: unknown key (expected one of: name, model, on,"
    ));
}

#[test]
fn unknown_key_in_a_section_and_in_a_model() {
    assert_eq!(
        error(&format!("{MINIMAL}\n[store]\nretension = \"1d\"\n")),
        "config/rowhook.toml: store.retension: unknown key (did you mean \"retention\"?)"
    );
    assert_eq!(
        error(&format!(
            "{MINIMAL}\n[models.customer]\ntable = \"c\"\nschema = \"s\"\n"
        )),
        "config/rowhook.toml: models.customer.schema: unknown key (expected one of: table, relations)"
    );
}

#[test]
fn a_model_is_a_table() {
    assert_eq!(
        error(&MINIMAL.replace(
            "[models.order]\ntable = \"orders\"",
            "[models]\norder = \"orders\""
        )),
        "config/rowhook.toml: models.order: expected a table such as \
         { table = \"public.orders\" }, found a string"
    );
}

#[test]
fn missing_required_keys() {
    let text = "[source]\n[models.order]\n[[webhooks]]\nname = \"hook\"\n";
    assert_eq!(
        errors(text),
        [
            "config/rowhook.toml: source.url: missing required key",
            "config/rowhook.toml: models.order.table: missing required key",
            "config/rowhook.toml: webhooks[0].model: missing required key",
            "config/rowhook.toml: webhooks[0].url: missing required key",
        ]
    );
    assert_eq!(
        error("[source]\nurl = \"postgres://db/shop\"\n"),
        "config/rowhook.toml: models: at least one model must be declared ([models.NAME])"
    );
}

#[test]
fn bad_duration() {
    assert_eq!(
        error(&format!(
            "{MINIMAL}\n[delivery]\nretry = [\"5s\", \"5 sec\"]\n"
        )),
        "config/rowhook.toml: delivery.retry[1]: invalid duration \"5 sec\": \
         expected a number followed by ms, s, m, h or d"
    );
    assert_eq!(
        error(&with_webhook("timeout = 5")),
        "config/rowhook.toml: webhooks[0].timeout: expected a duration such as \"5s\", \
         found an integer"
    );
}

#[test]
fn bad_enum_values() {
    assert_eq!(
        error(&with_webhook("format = \"jsn\"")),
        "config/rowhook.toml: webhooks[0].format: unknown format \"jsn\": \
         expected json, form or text"
    );
    assert_eq!(
        error(&with_webhook("method = \"FETCH\"")),
        "config/rowhook.toml: webhooks[0].method: unknown method \"FETCH\": \
         expected GET, POST, PUT, PATCH or DELETE"
    );
    assert_eq!(
        error(&with_webhook("on = [\"create\", \"update\", \"upsert\"]")),
        "config/rowhook.toml: webhooks[0].on[2]: unknown action \"upsert\": \
         expected create, update or delete"
    );
    assert_eq!(
        error(&MINIMAL.replace("[source]", "[source]\nmode = \"logical\"")),
        "config/rowhook.toml: source.mode: unknown mode \"logical\": \
         expected replication or notify"
    );
}

#[test]
fn wrong_value_types() {
    assert_eq!(
        error(&with_webhook("active = \"yes\"")),
        "config/rowhook.toml: webhooks[0].active: expected a boolean, found a string"
    );
    assert_eq!(
        error(&with_webhook("on = \"create\"")),
        "config/rowhook.toml: webhooks[0].on: expected an array of strings, found a string"
    );
    assert_eq!(
        error(&with_webhook("headers = { X-Count = 3 }")),
        "config/rowhook.toml: webhooks[0].headers.X-Count: expected a string, found an integer"
    );
}

#[test]
fn duplicate_webhook_name() {
    let text = format!(
        "{}\n[[webhooks]]\nname = \"hook\"\nmodel = \"order\"\nurl = \"https://b.example\"\n",
        with_webhook("")
    );
    assert_eq!(
        error(&text),
        "config/rowhook.toml: webhooks[1].name: duplicate webhook name \"hook\" (also webhooks[0])"
    );
}

#[test]
fn invalid_names() {
    let long_name = "a".repeat(33);
    assert_eq!(
        error(&with_webhook("").replace("\"hook\"", &format!("\"{long_name}\""))),
        format!(
            "config/rowhook.toml: webhooks[0].name: invalid webhook name \"{long_name}\": \
             expected 1 to 32 characters of a-z, 0-9, _ and -"
        )
    );
    assert_eq!(
        error(&MINIMAL.replace("models.order", "models.Order-Line")),
        "config/rowhook.toml: models.Order-Line: invalid model name \"Order-Line\": \
         expected lower-case letters, digits and underscores"
    );
}

#[test]
fn unknown_model() {
    assert_eq!(
        error(&with_webhook("").replace("model = \"order\"", "model = \"ordr\"")),
        "config/rowhook.toml: webhooks[0].model: unknown model \"ordr\" (declared models: order)"
    );
}

#[test]
fn missing_environment_variable() {
    assert_eq!(
        error(&with_webhook(
            "headers = { Authorization = \"Bearer ${WMS_TOKN}\" }"
        )),
        "config/rowhook.toml: webhooks[0].headers.Authorization: \
         environment variable WMS_TOKN is not set"
    );
    assert_eq!(
        error(&with_webhook("retry = [\"5s\", \"${RETRY}\"]")),
        "config/rowhook.toml: webhooks[0].retry[1]: environment variable RETRY is not set"
    );
}

#[test]
fn bad_secret() {
    for secret in [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_not base64!",
        "whsec_",
    ] {
        assert_eq!(
            error(&with_webhook(&format!("secret = \"{secret}\""))),
            "config/rowhook.toml: webhooks[0].secret: invalid secret: \
             expected \"whsec_\" followed by a standard base64 key"
        );
    }
}

#[test]
fn form_without_fields() {
    assert_eq!(
        error(&with_webhook("format = \"form\"")),
        "config/rowhook.toml: webhooks[0].format: format \"form\" needs fields or body"
    );
}

#[test]
fn text_with_fields() {
    assert_eq!(
        error(&with_webhook(
            "format = \"text\"\nfields = { id = \"item.id\" }"
        )),
        "config/rowhook.toml: webhooks[0].fields: format \"text\" takes a body, not fields"
    );
    assert_eq!(
        error(&with_webhook("format = \"text\"")),
        "config/rowhook.toml: webhooks[0].format: format \"text\" needs a body"
    );
}

#[test]
fn body_rules() {
    assert_eq!(
        error(&with_webhook(
            "fields = { id = \"item.id\" }\nbody = \"{}\""
        )),
        "config/rowhook.toml: webhooks[0].body: fields and body cannot both be set"
    );
    assert_eq!(
        error(&with_webhook("method = \"GET\"\nbody = \"{}\"")),
        "config/rowhook.toml: webhooks[0].body: method GET sends no body \
         (its fields become the query string)"
    );
}

#[test]
fn toml_syntax_error_has_line_and_column() {
    assert_eq!(
        error("[source]\nurl = \"postgres://db\n"),
        "config/rowhook.toml: TOML syntax error at line 2, column 21: \
         invalid basic string, expected `\"`"
    );
    assert_eq!(
        error("[source]\nurl = \"a\"\nurl = \"b\"\n"),
        "config/rowhook.toml: TOML syntax error at line 3, column 1: duplicate key"
    );
}

#[test]
fn unreadable_file() {
    let missing = Path::new("/nonexistent/rowhook.toml");
    let message = load(missing).unwrap_err().to_string();
    assert!(
        message.starts_with("/nonexistent/rowhook.toml: cannot read the file: "),
        "{message}"
    );
}

#[test]
fn every_problem_is_reported_one_per_line() {
    let text = r#"
[source]
url = "${DATABASE_URL}"
slot = "Rowhook Slot"

[admin]
listen = "localhost:8480"
token = ""

[delivery]
timeout = "0s"
retry = []
concurrency = 0
event_id_header = "event id"

[models.order]
table = "a.b.c"
"#;
    let errors = parse(Path::new(FILE), text, &environment).unwrap_err();
    assert_eq!(
        errors.to_string(),
        [
            "config/rowhook.toml: source.slot: invalid slot name \"Rowhook Slot\": \
             expected 1 to 63 lower-case letters, digits and underscores",
            "config/rowhook.toml: admin.listen: invalid address \"localhost:8480\": \
             expected an IP address and a port such as 127.0.0.1:8480",
            "config/rowhook.toml: admin.token: must not be empty",
            "config/rowhook.toml: delivery.timeout: must be greater than 0s",
            "config/rowhook.toml: delivery.retry: must list at least one delay (one per attempt)",
            "config/rowhook.toml: delivery.event_id_header: invalid header name \"event id\": \
             expected letters, digits and !#$%&'*+-.^_`|~",
            "config/rowhook.toml: delivery.concurrency: must be at least 1",
            "config/rowhook.toml: models.order.table: invalid table name \"a.b.c\": \
             expected table or schema.table",
        ]
        .join("\n")
    );
}

#[test]
fn database_url_is_checked_without_showing_the_password() {
    let text = MINIMAL.replace(
        "${DATABASE_URL}",
        "postgres://u:hunter2@db/shop?sslmode=strict",
    );
    assert_eq!(
        error(&text),
        "config/rowhook.toml: source.url: invalid sslmode \"strict\": \
         expected disable, prefer, require, verify-ca or verify-full"
    );
}

#[test]
fn header_rules() {
    let messages = errors(&with_webhook(
        "secret = \"${SIGNING_SECRET}\"\n\
         headers = { \"X Bad\" = \"1\", Webhook-Id = \"x\", Webhook-Signature = \"x\", \
         Content-Length = \"1\", X-A = \"1\", x-a = \"2\", X-Line = \"a\\nb\" }",
    ));
    assert_eq!(
        messages,
        [
            "config/rowhook.toml: webhooks[0].headers.\"X Bad\": invalid header name \"X Bad\": \
             expected letters, digits and !#$%&'*+-.^_`|~",
            "config/rowhook.toml: webhooks[0].headers.Webhook-Id: \
             set by rowhook: it carries the event id",
            "config/rowhook.toml: webhooks[0].headers.Webhook-Signature: \
             set by rowhook: the webhook has a secret",
            "config/rowhook.toml: webhooks[0].headers.Content-Length: \
             set by the HTTP client; leave it out",
            "config/rowhook.toml: webhooks[0].headers.x-a: duplicate header (also X-A)",
            "config/rowhook.toml: webhooks[0].headers.X-Line: \
             header value must not contain line breaks or NUL",
        ]
    );
}

#[test]
fn rowhook_owns_user_agent_and_the_event_id_takes_no_reserved_header() {
    assert_eq!(
        error(&with_webhook("headers = { User-Agent = \"mine\" }")),
        "config/rowhook.toml: webhooks[0].headers.User-Agent: \
         set by rowhook: every request says rowhook/<version>"
    );
    assert_eq!(
        error(&with_webhook("event_id_header = \"Content-Type\"")),
        "config/rowhook.toml: webhooks[0].event_id_header: \"content-type\" already means \
         something else in every request; pick another header name"
    );
    assert_eq!(
        error(&with_webhook(
            "secret = \"${SIGNING_SECRET}\"\nevent_id_header = \"webhook-signature\""
        )),
        "config/rowhook.toml: webhooks[0].event_id_header: \"webhook-signature\" carries the \
         Standard Webhooks signature of this signed webhook; pick another header name"
    );
}

#[test]
fn a_get_in_text_format_is_told_where_its_data_goes() {
    assert_eq!(
        error(&with_webhook("method = \"GET\"\nformat = \"text\"")),
        "config/rowhook.toml: webhooks[0].format: method GET sends no body, so format \"text\" \
         has nothing to send: use fields (they become the query string) with format \"json\" \
         or \"form\""
    );
}

#[test]
fn one_mistake_gives_one_message() {
    assert_eq!(
        error(&with_webhook("format = \"text\"\nbody = \"${BODY}\"")),
        "config/rowhook.toml: webhooks[0].body: environment variable BODY is not set"
    );
    assert_eq!(
        error(&with_webhook("").replace("name = \"hook\"", "name = 7")),
        "config/rowhook.toml: webhooks[0].name: expected a string, found an integer"
    );
    assert_eq!(
        error(&with_webhook("").replace("model = \"order\"", "model = \"${MODEL}\"")),
        "config/rowhook.toml: webhooks[0].model: environment variable MODEL is not set"
    );
    assert_eq!(
        error(&with_webhook("method = 1\nbody = \"x\"")),
        "config/rowhook.toml: webhooks[0].method: expected a string, found an integer"
    );
}

#[test]
fn ordering_is_none_or_row() {
    assert_eq!(
        error(&with_webhook("ordering = \"key\"")),
        "config/rowhook.toml: webhooks[0].ordering: unknown ordering \"key\": expected \"none\" \
         or \"row\""
    );
    assert_eq!(
        error(&format!("{MINIMAL}\n[delivery]\nordering = \"fifo\"\n")),
        "config/rowhook.toml: delivery.ordering: unknown ordering \"fifo\": expected \"none\" \
         or \"row\""
    );
}

#[test]
fn a_rate_is_a_count_per_unit() {
    assert_eq!(
        error(&with_webhook("rate = \"fast\"")),
        "config/rowhook.toml: webhooks[0].rate: \"fast\": expected a number of attempts per \
         s, m or h, such as \"50/s\""
    );
    assert_eq!(
        error(&format!("{MINIMAL}\n[delivery]\nrate = \"0/m\"\n")),
        "config/rowhook.toml: delivery.rate: \"0/m\": at least 1 attempt per period"
    );
    let config = parsed(&with_webhook("rate = \"120/m\""));
    assert_eq!(
        config.webhooks[0]
            .delivery
            .rate
            .map(|rate| rate.to_string()),
        Some("120/m".to_string())
    );
}

#[test]
fn pause_after_is_a_duration_above_zero() {
    assert_eq!(
        error(&with_webhook("pause_after = \"0s\"")),
        "config/rowhook.toml: webhooks[0].pause_after: must be greater than 0s"
    );
    let config = parsed(&with_webhook("pause_after = \"1h\""));
    assert_eq!(
        config.webhooks[0].delivery.pause_after,
        Some(Duration::from_secs(3_600))
    );
}
