//! A model's table as the catalog describes it: its columns with their types, and its
//! primary key. Lookups and backfills build their queries from it.

use tokio_postgres::Client;

use crate::change::{TableName, quote_identifier};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Column {
    pub name: String,
    /// The declared type, as logical replication describes it.
    pub type_oid: u32,
    /// The type as SQL writes it, schema-qualified where needed (`format_type`), for
    /// casting text parameters to it.
    pub type_name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TableShape {
    pub table: TableName,
    /// In column order.
    pub columns: Vec<Column>,
    /// Indexes into `columns`, in key order; empty without a primary key.
    pub primary_key: Vec<usize>,
}

impl TableShape {
    pub(crate) fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|column| column.name == name)
    }

    pub(crate) fn key_columns(&self) -> impl Iterator<Item = &Column> {
        self.primary_key.iter().map(|index| &self.columns[*index])
    }

    /// The single primary key column, when the key has exactly one.
    pub(crate) fn single_key(&self) -> Option<&Column> {
        match self.primary_key.as_slice() {
            [index] => Some(&self.columns[*index]),
            _ => None,
        }
    }

    /// `alias.col::text, …` for every column, in order: values as their output functions
    /// write them, the text capture converts.
    pub(crate) fn text_columns(&self, alias: &str) -> String {
        if self.columns.is_empty() {
            // A table without columns still has rows; select something.
            return "NULL::text".to_string();
        }
        self.columns
            .iter()
            .map(|column| format!("{alias}.{}::text", quote_identifier(&column.name)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Reads `table`'s shape; `None` when there is no such table (or view).
pub(crate) async fn describe_table(
    client: &Client,
    table: &TableName,
) -> Result<Option<TableShape>, tokio_postgres::Error> {
    // format_type qualifies a type's name unless its schema is on the search path; the
    // connections that cast with it run with `search_path = pg_catalog`.
    let rows = client
        .query(
            "SELECT a.attname::text AS name, a.atttypid AS type_oid,
                    pg_catalog.format_type(a.atttypid, NULL) AS type_name,
                    coalesce((SELECT k.position::int4
                              FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
                              WHERE k.attnum = a.attnum), 0) AS key_position
             FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
             ORDER BY a.attnum",
            &[&table.schema, &table.name],
        )
        .await?;
    if rows.is_empty() {
        let exists = client
            .query_opt(
                "SELECT 1 FROM pg_catalog.pg_class c
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
                &[&table.schema, &table.name],
            )
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
    }
    let mut key: Vec<(i32, usize)> = Vec::new();
    let columns = rows
        .iter()
        .enumerate()
        .map(|(index, row)| {
            let key_position: i32 = row.get("key_position");
            if key_position > 0 {
                key.push((key_position, index));
            }
            Column {
                name: row.get("name"),
                type_oid: row.get("type_oid"),
                type_name: row.get("type_name"),
            }
        })
        .collect();
    key.sort_unstable();
    Ok(Some(TableShape {
        table: table.clone(),
        columns,
        primary_key: key.into_iter().map(|(_, index)| index).collect(),
    }))
}
