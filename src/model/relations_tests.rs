use serde_json::json;

use super::*;
use crate::change::TableName;
use crate::model::table::Column;

fn includes(paths: &[&str]) -> Includes {
    let mut includes = Includes::default();
    for path in paths {
        let mut node = &mut includes;
        for segment in path.split('.') {
            node = node.0.entry(segment.to_string()).or_default();
        }
    }
    includes
}

fn row(value: Value) -> Row {
    match value {
        Value::Object(row) => row,
        _ => unreachable!("rows are objects"),
    }
}

fn shape(table: &str, columns: &[(&str, &str)], key: &[usize]) -> TableShape {
    TableShape {
        table: TableName::new("public", table),
        columns: columns
            .iter()
            .map(|(name, type_name)| Column {
                name: name.to_string(),
                type_oid: 20,
                type_name: type_name.to_string(),
            })
            .collect(),
        primary_key: key.to_vec(),
    }
}

#[test]
fn each_webhook_sees_only_what_it_includes() {
    let looked_up = includes(&["customer", "lines.product"]);
    let full = row(json!({
        "id": 1,
        "customer": {"id": 7, "email": "a@example.com"},
        "lines": [{"sku": "A", "product": {"name": "a"}}, {"sku": "B", "product": null}]
    }));

    let mut lines_only = full.clone();
    retain_included(&mut lines_only, &looked_up, &includes(&["lines"]));
    assert_eq!(
        Value::Object(lines_only),
        json!({"id": 1, "lines": [{"sku": "A"}, {"sku": "B"}]})
    );

    let mut everything = full.clone();
    retain_included(&mut everything, &looked_up, &looked_up);
    assert_eq!(everything, full);

    let mut nothing = full;
    retain_included(&mut nothing, &looked_up, &Includes::default());
    assert_eq!(Value::Object(nothing), json!({"id": 1}));
}

#[test]
fn related_rows_are_the_object_or_the_arrays_objects() {
    let mut parent = row(json!({"one": {"a": 1}, "many": [{"b": 2}, 3], "none": null}));
    assert_eq!(related_rows(&mut parent, "one").len(), 1);
    assert_eq!(related_rows(&mut parent, "many").len(), 1);
    assert!(related_rows(&mut parent, "none").is_empty());
    assert!(related_rows(&mut parent, "absent").is_empty());
}

#[test]
fn found_rows_go_into_each_parent_or_nil() {
    let found = Found {
        parent_column: "customer_id".into(),
        rows: FoundRows::One(HashMap::from([(
            "7".to_string(),
            row(json!({"id": 7, "email": "a@example.com"})),
        )])),
    };
    let mut first = row(json!({"id": 1, "customer_id": 7}));
    let mut second = row(json!({"id": 2, "customer_id": 8}));
    let mut third = row(json!({"id": 3, "customer_id": null}));
    found.attach("customer", &mut [&mut first, &mut second, &mut third]);
    assert_eq!(
        first["customer"],
        json!({"id": 7, "email": "a@example.com"})
    );
    assert_eq!(second["customer"], Value::Null);
    assert_eq!(third["customer"], Value::Null);

    let lines = Found {
        parent_column: "id".into(),
        rows: FoundRows::Many(HashMap::from([(
            "1".to_string(),
            vec![row(json!({"sku": "A"})), row(json!({"sku": "B"}))],
        )])),
    };
    let mut order = row(json!({"id": 1}));
    let mut other = row(json!({"id": 2}));
    lines.attach("lines", &mut [&mut order, &mut other]);
    assert_eq!(order["lines"], json!([{"sku": "A"}, {"sku": "B"}]));
    assert_eq!(other["lines"], json!([]));
}

#[test]
fn newest_row_orders_by_key_or_ctid() {
    let keyed = shape(
        "orders",
        &[("tenant", "integer"), ("i\"d", "integer")],
        &[0, 1],
    );
    assert_eq!(
        newest_row_query(&keyed),
        "SELECT t.\"tenant\"::text, t.\"i\"\"d\"::text FROM \"public\".\"orders\" AS t \
         ORDER BY t.\"tenant\" DESC, t.\"i\"\"d\" DESC LIMIT 1"
    );
    let unkeyed = shape("log", &[("line", "text")], &[]);
    assert!(newest_row_query(&unkeyed).ends_with("ORDER BY t.ctid DESC LIMIT 1"));
}

#[test]
fn one_query_per_relation_casts_the_keys_to_the_related_column() {
    let orders = shape(
        "orders",
        &[("id", "bigint"), ("customer_id", "bigint")],
        &[0],
    );
    let customers = shape("customers", &[("id", "bigint"), ("email", "text")], &[0]);
    let lines = shape(
        "order_lines",
        &[("id", "bigint"), ("order_id", "bigint")],
        &[0],
    );
    let belongs = RelationConfig {
        name: "customer".into(),
        model: "customer".into(),
        kind: RelationKind::BelongsTo {
            key: "customer_id".into(),
        },
    };
    let plan = Plan::new(&orders, &customers, &belongs).unwrap();
    assert_eq!(plan.parent_column, "customer_id");
    assert_eq!(
        plan.sql,
        "SELECT k.key, r.* FROM unnest($1::text[]) AS k(key) CROSS JOIN LATERAL \
         (SELECT t.\"id\"::text, t.\"email\"::text FROM \"public\".\"customers\" AS t \
         WHERE t.\"id\" = k.key::bigint LIMIT 1) AS r"
    );
    let many = RelationConfig {
        name: "lines".into(),
        model: "order_line".into(),
        kind: RelationKind::HasMany {
            foreign_key: "order_id".into(),
            order_by: None,
            limit: 200,
        },
    };
    let plan = Plan::new(&orders, &lines, &many).unwrap();
    assert_eq!(plan.parent_column, "id");
    assert!(
        plan.sql
            .contains("WHERE t.\"order_id\" = k.key::bigint ORDER BY t.\"id\" LIMIT 200"),
        "{}",
        plan.sql
    );

    let missing = RelationConfig {
        kind: RelationKind::BelongsTo {
            key: "client_id".into(),
        },
        ..belongs
    };
    assert_eq!(
        Plan::new(&orders, &customers, &missing).err(),
        Some(LookupError::Failed(
            "public.orders has no column \"client_id\"".into()
        ))
    );
}
