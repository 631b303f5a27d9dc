//! The queries of a backfill: one page of rows after the cursor, in primary-key order
//! (keyset paging: each page a short query, no transaction held open), and the planner's
//! estimate of how many rows the job reads, which also proves `--where` is valid SQL.

use crate::change::quote_identifier;
use crate::model::TableShape;

/// Where the WAL stood when the page was read: the events' `lsn`.
const WAL_POSITION: &str = "(CASE WHEN pg_catalog.pg_is_in_recovery() \
     THEN pg_catalog.pg_last_wal_replay_lsn() ELSE pg_catalog.pg_current_wal_lsn() END)::text";

/// `condition` as a clause of its own: parenthesised, and on its own line, so that a
/// trailing `--` comment in it cannot swallow the rest of the query.
fn clause(condition: &str) -> String {
    format!("({condition}\n)")
}

/// A page: the WAL position, the key columns' text, then every column's text (as
/// [`TableShape::text_columns`]). After a cursor, the key values are parameters `$1…`,
/// passed as text and cast to the key columns' types.
pub(crate) fn page_query(
    shape: &TableShape,
    condition: Option<&str>,
    after_cursor: bool,
    batch: u32,
) -> String {
    let keys: Vec<String> = shape
        .key_columns()
        .map(|column| format!("t.{}", quote_identifier(&column.name)))
        .collect();
    let key_text = keys
        .iter()
        .map(|key| format!("{key}::text"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut clauses = Vec::new();
    if after_cursor {
        let cursor = shape
            .key_columns()
            .enumerate()
            .map(|(index, column)| format!("${}::text::{}", index + 1, column.type_name))
            .collect::<Vec<_>>()
            .join(", ");
        clauses.push(format!("({}) > ({cursor})", keys.join(", ")));
    }
    if let Some(condition) = condition {
        clauses.push(clause(condition));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    format!(
        "SELECT {WAL_POSITION}, {key_text}, {} FROM {} AS t{filter} ORDER BY {} LIMIT {batch}",
        shape.text_columns("t"),
        shape.table.quoted(),
        keys.join(", ")
    )
}

/// `EXPLAIN` of the rows the job reads: the server parses and plans `condition` (so a
/// mistake is its message, before anything is sent) and estimates the rows.
pub(crate) fn estimate_query(shape: &TableShape, condition: Option<&str>) -> String {
    let filter = condition
        .map(|condition| format!(" WHERE {}", clause(condition)))
        .unwrap_or_default();
    format!(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM {} AS t{filter}",
        shape.table.quoted()
    )
}

/// The row estimate of an `EXPLAIN (FORMAT JSON)` answer.
pub(crate) fn estimated_rows(plan: &serde_json::Value) -> Option<u64> {
    let rows = plan.get(0)?.get("Plan")?.get("Plan Rows")?.as_f64()?;
    Some(rows.max(0.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::change::TableName;
    use crate::model::{TableColumn, TableShape};

    fn lines() -> TableShape {
        let column = |name: &str, type_name: &str| TableColumn {
            name: name.to_string(),
            type_oid: 20,
            type_name: type_name.to_string(),
        };
        TableShape {
            table: TableName::new("shop", "order_lines"),
            columns: vec![
                column("order_id", "bigint"),
                column("line", "integer"),
                column("sku", "text"),
            ],
            primary_key: vec![0, 1],
        }
    }

    #[test]
    fn pages_follow_the_key_after_the_cursor() {
        let first = page_query(&lines(), None, false, 500);
        assert_eq!(
            first,
            format!(
                "SELECT {WAL_POSITION}, t.\"order_id\"::text, t.\"line\"::text, \
                 t.\"order_id\"::text, t.\"line\"::text, t.\"sku\"::text \
                 FROM \"shop\".\"order_lines\" AS t ORDER BY t.\"order_id\", t.\"line\" LIMIT 500"
            )
        );
        let next = page_query(&lines(), Some("sku <> 'x' -- a note"), true, 10);
        assert!(
            next.contains(
                " WHERE (t.\"order_id\", t.\"line\") > ($1::text::bigint, $2::text::integer) \
                 AND (sku <> 'x' -- a note\n) ORDER BY"
            ),
            "{next}"
        );
    }

    #[test]
    fn the_estimate_comes_from_the_plan() {
        assert_eq!(
            estimate_query(&lines(), Some("line = 1")),
            "EXPLAIN (FORMAT JSON) SELECT 1 FROM \"shop\".\"order_lines\" AS t WHERE (line = 1\n)"
        );
        let plan = json!([{"Plan": {"Node Type": "Seq Scan", "Plan Rows": 1234.0}}]);
        assert_eq!(estimated_rows(&plan), Some(1234));
        assert_eq!(estimated_rows(&json!({})), None);
    }
}
