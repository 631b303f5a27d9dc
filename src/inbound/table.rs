//! Writing an inbound row: one `INSERT … RETURNING 1` per request, values passed as text
//! and cast by PostgreSQL to each column's type (`$1::text::integer`), with
//! `ON CONFLICT (dedupe) DO NOTHING` so a repeat adds nothing. The statement is built once
//! per endpoint from the catalog, and sent typed, in one round trip.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::types::{ToSql, Type};

use crate::change::quote_identifier;
use crate::config::EndpointConfig;
use crate::model::{Pool, TableShape, describe_table};
use crate::postgres::{self, DatabaseUrl};

/// Connections for inserts; a sender waits for one rather than opening more. Each insert
/// commits (and with `fsync = on` waits for the WAL flush), so throughput comes from
/// many commits in flight sharing one flush.
const POOL_SIZE: usize = 32;
/// An insert stuck behind a lock fails (503, the sender retries) instead of holding the
/// sender for ever.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// What an insert came to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inserted {
    Row,
    /// The `dedupe` value was there already.
    Duplicate,
}

pub(crate) struct Inserts {
    pool: Pool,
    statements: Mutex<HashMap<String, Arc<String>>>,
}

impl Inserts {
    pub(crate) fn new(url: DatabaseUrl) -> Inserts {
        Inserts {
            pool: Pool::new(url, POOL_SIZE, STATEMENT_TIMEOUT),
            statements: Mutex::new(HashMap::new()),
        }
    }

    /// Inserts and commits one row (autocommit: the statement is its own transaction, so
    /// a failure leaves nothing behind).
    pub(crate) async fn insert(
        &self,
        endpoint: &EndpointConfig,
        values: &[Option<String>],
    ) -> Result<Inserted, String> {
        let client = self.pool.get().await.map_err(|error| error.to_string())?;
        let sql = match self.known_statement(&endpoint.name) {
            Some(sql) => sql,
            None => {
                let shape = describe_table(&client, &endpoint.table)
                    .await
                    .map_err(|error| postgres::describe(&error))?
                    .ok_or_else(|| format!("table {} does not exist", endpoint.table))?;
                let sql = Arc::new(insert_sql(endpoint, &shape)?);
                self.statements
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .insert(endpoint.name.clone(), sql.clone());
                sql
            }
        };
        let parameters: Vec<(&(dyn ToSql + Sync), Type)> = values
            .iter()
            .map(|value| (value as &(dyn ToSql + Sync), Type::TEXT))
            .collect();
        match client.query_typed(sql.as_str(), &parameters).await {
            Ok(rows) if rows.is_empty() => Ok(Inserted::Duplicate),
            Ok(_) => Ok(Inserted::Row),
            Err(error) => {
                // The table may have changed: read it again next time.
                self.statements
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .remove(&endpoint.name);
                Err(postgres::describe(&error))
            }
        }
    }

    fn known_statement(&self, endpoint: &str) -> Option<Arc<String>> {
        self.statements
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(endpoint)
            .cloned()
    }
}

/// The endpoint's insert, for a table of `shape`.
pub(crate) fn insert_sql(endpoint: &EndpointConfig, shape: &TableShape) -> Result<String, String> {
    let mut names = Vec::with_capacity(endpoint.columns.len());
    let mut values = Vec::with_capacity(endpoint.columns.len());
    for (index, (column, _)) in endpoint.columns.iter().enumerate() {
        let found = shape
            .column(column)
            .ok_or_else(|| format!("table {} has no column {column:?}", endpoint.table))?;
        names.push(quote_identifier(column));
        values.push(format!("${}::text::{}", index + 1, found.type_name));
    }
    let conflict = match &endpoint.dedupe {
        Some(column) => format!(" ON CONFLICT ({}) DO NOTHING", quote_identifier(column)),
        None => String::new(),
    };
    Ok(format!(
        "INSERT INTO {} ({}) VALUES ({}){conflict} RETURNING 1",
        endpoint.table.quoted(),
        names.join(", "),
        values.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::TableName;
    use crate::config::{ColumnSource, SenderCheck};
    use crate::model::TableColumn;

    #[test]
    fn values_are_cast_from_text_and_repeats_do_nothing() {
        let column = |name: &str, type_name: &str| TableColumn {
            name: name.into(),
            type_oid: 0,
            type_name: type_name.into(),
        };
        let shape = TableShape {
            table: TableName::new("public", "inbox"),
            columns: vec![
                column("event_id", "text"),
                column("payload", "jsonb"),
                column("qty", "integer"),
            ],
            primary_key: vec![],
        };
        let mut endpoint = EndpointConfig {
            name: "tasks".into(),
            check: SenderCheck::None,
            table: TableName::new("public", "inbox"),
            columns: vec![
                ("event_id".into(), ColumnSource::Header("webhook-id".into())),
                ("payload".into(), ColumnSource::Body),
                ("qty".into(), ColumnSource::Text("1".into())),
            ],
            dedupe: Some("event_id".into()),
            respond_status: 200,
            respond_body: "ok".into(),
            max_body: 1024,
        };
        assert_eq!(
            insert_sql(&endpoint, &shape).unwrap(),
            "INSERT INTO \"public\".\"inbox\" (\"event_id\", \"payload\", \"qty\") VALUES \
             ($1::text::text, $2::text::jsonb, $3::text::integer) ON CONFLICT (\"event_id\") \
             DO NOTHING RETURNING 1"
        );
        endpoint.columns.push(("nope".into(), ColumnSource::Now));
        assert_eq!(
            insert_sql(&endpoint, &shape).unwrap_err(),
            "table public.inbox has no column \"nope\""
        );
    }
}
