//! Which webhooks a change reaches, and the ids of its events.

use super::*;

fn names(events: &[RoutedEvent]) -> Vec<&str> {
    events.iter().map(|event| event.webhook.as_str()).collect()
}

fn updated(changed: Option<&[&str]>) -> Change {
    let mut old = order();
    old["status"] = json!("new");
    change(Action::Update, order(), Some(old), changed)
}

#[test]
fn every_matching_webhook_of_the_model_in_file_order() {
    let router = router(&format!(
        "{}{}{}",
        webhook("second", ""),
        webhook("first", ""),
        "\n[[webhooks]]\nname = \"other-model\"\nmodel = \"customer\"\nurl = \"https://example.com/c\"\n",
    ));
    let events = router.route(&created());
    assert_eq!(names(&events), ["second", "first"]);
    assert_eq!(events[0].model, "order");
    assert_eq!(events[0].kind, "order.created");
    assert_eq!(events[0].envelope["id"], json!(events[0].id));
}

#[test]
fn tables_without_a_model_create_no_events() {
    let router = router_with("");
    let mut change = created();
    change.table = TableName::new("public", "invoices");
    assert!(router.route(&change).is_empty());
    assert_eq!(router.model_for_table(&change.table), None);
    assert_eq!(
        router.model_for_table(&TableName::new("public", "orders")),
        Some("order")
    );
}

#[test]
fn inactive_webhooks_and_other_actions_are_skipped() {
    let router = router(&format!(
        "{}{}{}",
        webhook("inactive", "active = false"),
        webhook("updates", r#"on = ["update"]"#),
        webhook("creates", r#"on = ["create", "delete"]"#),
    ));
    assert_eq!(names(&router.route(&created())), ["creates"]);
    assert_eq!(names(&router.route(&updated(None))), ["updates"]);
    let deleted = change(Action::Delete, order(), Some(order()), None);
    let events = router.route(&deleted);
    assert_eq!(names(&events), ["creates"]);
    assert_eq!(events[0].kind, "order.deleted");
}

#[test]
fn columns_filter_updates_whose_changes_are_known() {
    let router = router_with(r#"columns = ["status", "total"]"#);
    assert_eq!(router.route(&updated(Some(&["status"]))).len(), 1);
    assert_eq!(router.route(&updated(Some(&["note", "total"]))).len(), 1);
    assert!(router.route(&updated(Some(&["note"]))).is_empty());
    assert!(router.route(&updated(Some(&[]))).is_empty());
}

#[test]
fn columns_let_updates_through_when_old_values_are_unknown() {
    let router = router_with(r#"columns = ["status"]"#);
    let unknown = change(Action::Update, order(), None, None);
    assert_eq!(router.route(&unknown).len(), 1);
    // Creates and deletes have no `changed`: columns concern updates only.
    assert_eq!(router.route(&created()).len(), 1);
}

#[test]
fn when_decides_per_event() {
    let router = router(&format!(
        "{}{}{}{}",
        webhook("paid", r#"when = "item.status == 'paid'""#),
        webhook("refunded", r#"when = "item.status == 'refunded'""#),
        webhook("missing-column", r#"when = "item.no_such_column""#),
        webhook(
            "status-changed",
            r#"when = "changed and changed contains 'status' and old.status != item.status""#
        ),
    ));
    assert_eq!(names(&router.route(&created())), ["paid"]);
    assert_eq!(
        names(&router.route(&updated(Some(&["status"])))),
        ["paid", "status-changed"]
    );
}

#[test]
fn a_when_that_fails_to_evaluate_creates_a_failed_event() {
    // `contains` on nil is an error in liquid; the admin sees it rather than losing events.
    let router = router_with(r#"when = "changed contains 'status'""#);
    let event = only_event(&router, &created());
    assert_eq!(
        event.request.unwrap_err().to_string(),
        "when: expected string | array | object, found `nil` \
         ({% if changed contains \"status\" %})"
    );
}

#[test]
fn when_can_read_the_event() {
    let router = router_with(r#"when = "event.action == 'create' and event.webhook == 'hook'""#);
    assert_eq!(router.route(&created()).len(), 1);
    assert!(router.route(&updated(None)).is_empty());
}

#[test]
fn render_for_ignores_the_matching_rules() {
    let router = router_with(
        r#"active = false
on = ["delete"]
columns = ["status"]
when = "item.status == 'never'""#,
    );
    assert!(router.route(&created()).is_empty());
    let event = router.render_for("hook", &created()).unwrap();
    assert_eq!(event.webhook, "hook");
    assert!(event.request.is_ok());
    assert!(router.render_for("nope", &created()).is_none());
    assert_eq!(router.webhook_names().collect::<Vec<_>>(), ["hook"]);
}

#[test]
fn routers_and_events_can_cross_threads() {
    fn shared<T: Send + Sync>() {}
    fn sent<T: Send>() {}
    shared::<Router>();
    sent::<RoutedEvent>();
}

#[test]
fn event_ids_are_deterministic_and_short() {
    let position = Position {
        transaction: 0x16B3700,
        sequence: 3,
    };
    assert_eq!(
        event_id(position, "order-to-warehouse"),
        "evt_00000000016b370000000003_order-to-warehouse"
    );
    let longest = event_id(
        Position {
            transaction: u64::MAX,
            sequence: u32::MAX,
        },
        &"w".repeat(32),
    );
    assert_eq!(longest.len(), 61);
    assert!(
        longest
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
    );

    let router = router(&format!("{}{}", webhook("a", ""), webhook("b", "")));
    let first = router.route(&created());
    let again = router.route(&created());
    assert_eq!(first[0].id, again[0].id);
    assert_ne!(first[0].id, first[1].id);
    let mut next = created();
    next.position.sequence += 1;
    assert_ne!(router.route(&next)[0].id, first[0].id);
}
