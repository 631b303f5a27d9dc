//! The Liquid context and filters, runtime errors, and compile errors with their exact
//! one-line messages.

use super::*;

fn text_body(template: &str, change: &Change) -> String {
    let keys = format!("format = \"text\"\nbody = '''{template}'''");
    request_for(&keys, change).body.unwrap_or_default()
}

#[test]
fn the_context_holds_item_old_changed_and_event() {
    let mut old = order();
    old["status"] = json!("new");
    let updated = change(Action::Update, order(), Some(old), Some(&["status"]));
    assert_eq!(
        text_body(
            "{{ item.id }} {{ old.status }}->{{ item.status }} {{ changed | join: ',' }} [{{ item.note }}]",
            &updated
        ),
        "42 new->paid status []"
    );
    assert_eq!(
        text_body(
            "{{ event.id }}|{{ event.type }}|{{ event.model }}|{{ event.action }}|{{ event.table }}|{{ event.timestamp }}|{{ event.lsn }}|{{ event.webhook }}",
            &updated
        ),
        "evt_00000000016b370000000003_hook|order.updated|order|update|public.orders|\
         2026-11-22T10:00:00.123456Z|0/16B3748|hook"
    );
    assert_eq!(
        text_body(
            "{% if old %}old{% else %}none{% endif %}/{{ changed | json }}",
            &created()
        ),
        "none/null"
    );
}

#[test]
fn json_filter_quotes_escapes_and_sorts_keys() {
    let request = request_with(
        r#"body = '''{"phone": {{ item.phone | json }}, "note": {{ item.note | json }}, "id": {{ item.id | json }}, "items": {{ item.items | json }}}'''"#,
    );
    assert_eq!(
        request.body.as_deref(),
        Some(
            r#"{"phone": "+1 \"555\"\nnext", "note": null, "id": 42, "items": {"qty":2,"sku":"A1"}}"#
        )
    );
    // liquid keeps objects in hash maps: keys come out sorted, the same on every run.
    let whole = text_body("{{ item | json }}", &created());
    assert!(whole.starts_with(r#"{"id":42,"items":{"qty":2,"sku":"A1"},"note":null,"#));
    assert_eq!(serde_json::from_str::<Value>(&whole).unwrap(), order());
}

#[test]
fn values_liquid_cannot_hold_do_not_panic() {
    let item = json!({"id": 1, "big": {"n": 18446744073709551615u64, "f": 0.5}});
    let change = change(Action::Create, item, None, None);
    assert_eq!(
        text_body(
            "{{ item.big.n }} {{ item.big.f }} {{ item.big | json }}",
            &change
        ),
        r#"18446744073709551615 0.5 {"f":0.5,"n":"18446744073709551615"}"#
    );
}

#[test]
fn stdlib_filters_work_on_the_context() {
    assert_eq!(
        text_body(
            "{{ item.status | upcase }} {{ item.items | size }} {{ item.total | plus: 0.1 }} {{ 'now' | date: '%Y' | size }}",
            &created()
        ),
        "PAID 2 100 4"
    );
}

#[test]
fn runtime_template_errors_become_render_errors() {
    assert_eq!(
        render_error_with(r#"url = "https://example.com/{{ item.missing }}""#),
        "url: unknown index \"missing\" in item"
    );
    assert_eq!(
        render_error_with(r#"headers = { X-Total = "{{ item.total | plus: 'x' }}" }"#),
        "headers.X-Total: invalid argument: Number expected \
         (filter error, argument operand, filter plus : \"x\", input \"99.90\")"
    );
    assert_eq!(
        render_error_with(r#"fields = { label = "{{ nothing_here }}" }"#),
        "fields.label: unknown variable \"nothing_here\""
    );
}

#[test]
fn unknown_filters_are_reported_with_their_position() {
    let errors = compile_errors(&format!(
        "{}{}",
        webhook("fine", ""),
        webhook(
            "broken",
            r#"url = "https://wms.example.com/{{ item.id | jsn }}""#
        ),
    ));
    assert_eq!(
        errors,
        ["config/rowhook.toml: webhooks[1].url: unknown filter \"jsn\" (line 1, column 38)"]
    );
}

#[test]
fn unclosed_tags_are_reported_where_they_open() {
    assert_eq!(
        compile_error(
            r#"format = "text"
body = "Order {% if item.id %}{{ item.id }}""#
        ),
        "config/rowhook.toml: webhooks[0].body: unclosed \"if\" block: no {% endif %} \
         (line 1, column 7)"
    );
    assert_eq!(
        compile_error(r#"headers = { Authorization = "Bearer {{ item.token" }"#),
        "config/rowhook.toml: webhooks[0].headers.Authorization: unclosed \"{{\": \
         no matching \"}}\" (line 1, column 8)"
    );
}

#[test]
fn positions_count_lines_in_multi_line_templates() {
    assert_eq!(
        compile_error(
            "format = \"text\"\nbody = \"\"\"Order {{ item.id }}\nStatus {{ item.status | shout }}\"\"\""
        ),
        "config/rowhook.toml: webhooks[0].body: unknown filter \"shout\" (line 2, column 25)"
    );
}

#[test]
fn when_errors_point_into_the_condition() {
    assert_eq!(
        compile_error(r#"when = "item.status = 'paid'""#),
        "config/rowhook.toml: webhooks[0].when: \"and\" or \"or\" expected (line 1, column 13)"
    );
}

#[test]
fn field_errors_name_the_field() {
    let errors = compile_errors(&webhook(
        "hook",
        r#"fields = { serial = "serial_number", note = "Order {{ item.id | nope }}", total = "item.total" }"#,
    ));
    assert_eq!(
        errors,
        [
            "config/rowhook.toml: webhooks[0].fields.serial: invalid path \"serial_number\": \
             a path starts with item, old, changed or event (such as item.total); \
             a template needs {{ }}",
            "config/rowhook.toml: webhooks[0].fields.note: unknown filter \"nope\" \
             (line 1, column 20)",
        ]
    );
}

#[test]
fn other_compile_errors_are_one_line() {
    assert_eq!(
        compile_error(r#"url = "https://example.com/{% shout %}""#),
        "config/rowhook.toml: webhooks[0].url: unknown tag \"shout\" (line 1, column 24)"
    );
    assert_eq!(
        compile_error(r#"url = "https://example.com/{{ item.id | append }}""#),
        "config/rowhook.toml: webhooks[0].url: invalid number of arguments: expected at \
         least 1 positional argument (filter parsing error, filter append) (line 1, column 34)"
    );
    assert_eq!(
        compile_error(r#"body = '{"id": 1,}'"#),
        "config/rowhook.toml: webhooks[0].body: not valid JSON: key must be a string at line 1 \
         column 10"
    );
}

#[test]
fn every_problem_is_reported() {
    let errors = compile_errors(&format!(
        "{}{}",
        webhook(
            "one",
            r#"url = "https://example.com/{{ item.id | a }}"
headers = { X-A = "{{ item.id | b }}" }"#
        ),
        webhook("two", r#"when = "item.id | c""#),
    ));
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors[0].contains("webhooks[0].url: unknown filter \"a\""));
    assert!(errors[1].contains("webhooks[0].headers.X-A: unknown filter \"b\""));
    assert_eq!(
        errors[2],
        "config/rowhook.toml: webhooks[1].when: a condition takes no filters (line 1, column 9)"
    );
}

#[test]
fn a_request_past_max_body_is_a_render_error() {
    // A template that would grow without bound stops at the limit, never rendered whole.
    let looping = "max_body = \"1KB\"\nformat = \"text\"\nbody = '''{% for n in (1..100000) %}{{ item.id }}{% endfor %}'''";
    assert_eq!(
        render_error_with(looping),
        "the rendered request is larger than delivery.max_body (1024 bytes)"
    );
    // The envelope is measured once serialised, URL and headers included.
    let envelope = render_error_with("max_body = \"200B\"");
    assert!(
        envelope.starts_with("the rendered request is larger than delivery.max_body (200 bytes): "),
        "{envelope}"
    );
    // At the limit is fine.
    let small = request_for(
        "max_body = \"1KB\"\nformat = \"text\"\nbody = '''{{ item.id }}'''",
        &created(),
    );
    assert_eq!(small.body.as_deref(), Some("42"));
}
