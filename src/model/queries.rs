//! The SQL of lookups: the newest row of a table, and one relation's query over a batch
//! of keys. Pure: built from table shapes, tested as text.

use super::relations::LookupError;
use super::table::{Column, TableShape};
use crate::change::quote_identifier;
use crate::config::{RelationConfig, RelationKind};

/// The newest row: by primary key descending, else by `ctid`.
pub(super) fn newest_row_query(shape: &TableShape) -> String {
    let order = if shape.primary_key.is_empty() {
        "t.ctid DESC".to_string()
    } else {
        shape
            .key_columns()
            .map(|column| format!("t.{} DESC", quote_identifier(&column.name)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "SELECT {} FROM {} AS t ORDER BY {order} LIMIT 1",
        shape.text_columns("t"),
        shape.table.quoted()
    )
}

/// A relation's query and the parent column its keys come from.
pub(super) struct Plan {
    pub(super) parent_column: String,
    pub(super) sql: String,
}

impl Plan {
    pub(super) fn new(
        parent: &TableShape,
        related: &TableShape,
        relation: &RelationConfig,
    ) -> Result<Plan, LookupError> {
        let missing = |table: &TableShape, column: &str| {
            LookupError::Failed(format!("{} has no column {column:?}", table.table))
        };
        let single_key = |table: &TableShape| {
            table.single_key().cloned().ok_or_else(|| {
                LookupError::Failed(format!(
                    "{} needs a primary key of one column for relation {:?}",
                    table.table, relation.name
                ))
            })
        };
        let columns = related.text_columns("t");
        let table = related.table.quoted();
        // The keys travel as text and are cast to the related column's type, so the
        // comparison uses that column's index.
        let (parent_column, sql) = match &relation.kind {
            RelationKind::BelongsTo { key } => {
                parent.column(key).ok_or_else(|| missing(parent, key))?;
                let related_key = single_key(related)?;
                let sql = format!(
                    "SELECT k.key, r.* FROM unnest($1::text[]) AS k(key) \
                     CROSS JOIN LATERAL (SELECT {columns} FROM {table} AS t \
                     WHERE t.{} = k.key::{} LIMIT 1) AS r",
                    quote_identifier(&related_key.name),
                    related_key.type_name
                );
                (key.clone(), sql)
            }
            RelationKind::HasMany {
                foreign_key,
                order_by,
                limit,
            } => {
                let parent_key = single_key(parent)?;
                let foreign: &Column = related
                    .column(foreign_key)
                    .ok_or_else(|| missing(related, foreign_key))?;
                let order = match order_by {
                    Some(order_by) => {
                        related
                            .column(&order_by.column)
                            .ok_or_else(|| missing(related, &order_by.column))?;
                        format!(
                            "t.{}{}",
                            quote_identifier(&order_by.column),
                            if order_by.descending { " DESC" } else { "" }
                        )
                    }
                    None => related
                        .key_columns()
                        .map(|column| format!("t.{}", quote_identifier(&column.name)))
                        .collect::<Vec<_>>()
                        .join(", "),
                };
                let order = if order.is_empty() {
                    "1".to_string()
                } else {
                    order
                };
                let sql = format!(
                    "SELECT k.key, r.* FROM unnest($1::text[]) AS k(key) \
                     CROSS JOIN LATERAL (SELECT {columns}, row_number() OVER (ORDER BY {order}) \
                     FROM {table} AS t WHERE t.{} = k.key::{} ORDER BY {order} LIMIT {limit}) AS r",
                    quote_identifier(&foreign.name),
                    foreign.type_name
                );
                (parent_key.name, sql)
            }
        };
        Ok(Plan { parent_column, sql })
    }
}
