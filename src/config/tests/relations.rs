//! `[models.NAME.relations]` and `include`: what loads, and the message of each mistake.

use super::*;

const SHOP: &str = r#"
[source]
url = "${DATABASE_URL}"

[models.order]
table = "orders"
[models.order.relations]
customer = { model = "customer", key = "customer_id" }
lines = { model = "order_line", foreign_key = "order_id", order_by = "position desc", limit = 20 }

[models.customer]
table = "customers"
[models.customer.relations]
orders = { model = "order", foreign_key = "customer_id" }

[models.order_line]
table = "order_lines"
[models.order_line.relations]
order = { model = "order", key = "order_id" }
"#;

fn shop_with(include: &str) -> String {
    format!(
        "{SHOP}\n[[webhooks]]\nname = \"crm\"\nmodel = \"order\"\n\
         url = \"https://example.com/crm\"\ninclude = {include}\n"
    )
}

#[test]
fn relations_and_includes_load() {
    let config = parsed(&shop_with(r#"["customer", "lines.order.customer"]"#));
    let order = &config.models["order"];
    assert_eq!(
        order.relations["customer"].kind,
        RelationKind::BelongsTo {
            key: "customer_id".into()
        }
    );
    assert_eq!(
        order.relations["lines"].kind,
        RelationKind::HasMany {
            foreign_key: "order_id".into(),
            order_by: Some(OrderBy {
                column: "position".into(),
                descending: true
            }),
            limit: 20,
        }
    );
    assert_eq!(
        config.models["customer"].relations["orders"].kind,
        RelationKind::HasMany {
            foreign_key: "customer_id".into(),
            order_by: None,
            limit: DEFAULT_HAS_MANY_LIMIT,
        }
    );
    let include = &config.webhooks[0].include;
    let names: Vec<&String> = include.0.keys().collect();
    assert_eq!(names, ["customer", "lines"]);
    assert!(include.0["lines"].0["order"].0.contains_key("customer"));
    // Only the order has a webhook; the models reached through relations are looked up.
    let captured: Vec<&str> = config
        .captured_models()
        .map(|model| model.name.as_str())
        .collect();
    assert_eq!(captured, ["order"]);
}

#[test]
fn an_unknown_relation_in_include() {
    assert_eq!(
        error(&shop_with(r#"["custmer"]"#)),
        "config/rowhook.toml: webhooks[0].include[0]: model order has no relation \"custmer\" \
         (it has: customer, lines)"
    );
    assert_eq!(
        error(&shop_with(r#"["customer.address"]"#)),
        "config/rowhook.toml: webhooks[0].include[0]: model customer has no relation \
         \"address\" (it has: orders)"
    );
}

#[test]
fn a_relation_to_an_undeclared_model() {
    let text = SHOP.replace("model = \"customer\", key", "model = \"client\", key");
    assert_eq!(
        error(&text),
        "config/rowhook.toml: models.order.relations.customer.model: no model \"client\" is declared"
    );
}

#[test]
fn includes_deeper_than_three_levels_are_refused_with_their_cycle() {
    assert_eq!(
        error(&shop_with(r#"["customer.orders.customer.orders"]"#)),
        "config/rowhook.toml: webhooks[0].include[0]: \"customer.orders.customer.orders\" is 4 \
         levels deep and goes round (order → customer → order → customer → order); at most 3 \
         are looked up"
    );
}

#[test]
fn a_relation_is_belongs_to_or_has_many() {
    let both = SHOP.replace(
        "key = \"customer_id\" }\nlines",
        "key = \"customer_id\", foreign_key = \"x\" }\nlines",
    );
    assert_eq!(
        error(&both),
        "config/rowhook.toml: models.order.relations.customer: give either `key` (belongs to) \
         or `foreign_key` (has many), not both"
    );
    let ordered = SHOP.replace(
        "key = \"customer_id\" }\nlines",
        "key = \"customer_id\", limit = 5 }\nlines",
    );
    assert_eq!(
        error(&ordered),
        "config/rowhook.toml: models.order.relations.customer.limit: only a has-many relation \
         (`foreign_key`) is ordered and limited"
    );
    let unlimited = SHOP.replace("limit = 20", "limit = 0");
    assert_eq!(
        error(&unlimited),
        "config/rowhook.toml: models.order.relations.lines.limit: 0: expected 1 to 10000"
    );
    let sorted = SHOP.replace("position desc", "position sideways");
    assert_eq!(
        error(&sorted),
        "config/rowhook.toml: models.order.relations.lines.order_by: \"position sideways\": \
         expected a column name, optionally followed by asc or desc"
    );
}
