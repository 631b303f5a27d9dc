//! Relation lookups (CONTRACT §8): for a batch of rows of one model, one query per
//! included relation fetches the related rows of all of them, level by level, and puts
//! them into each row under the relation's name — an object or nil (belongs to), an
//! array (has many).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;
use tracing::debug;

use super::pool::{Pool, PoolError};
use super::queries::{Plan, newest_row_query};
use super::rows::{RowReader, key_text};
use super::table::{TableShape, describe_table};
use crate::capture::TypeCatalog;
use crate::change::Row;
use crate::config::{Config, Includes, ModelConfig, RelationConfig, RelationKind};
use crate::metrics::Metrics;
use crate::postgres::{self, DatabaseUrl};

/// Lookup connections: enough for a level's relations to run side by side.
const POOL_SIZE: usize = 2;
/// A lookup that takes longer fails the events it was for, rather than holding capture.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a lookup did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The database cannot be reached: nothing may be acknowledged; try again.
    #[error("the database is unreachable for relation lookups: {0}")]
    Unavailable(String),
    /// The lookup itself failed (a missing column, a timeout, a key that does not cast):
    /// the events it was for fail with this reason.
    #[error("relation lookup failed: {0}")]
    Failed(String),
}

impl From<PoolError> for LookupError {
    fn from(error: PoolError) -> Self {
        match &error {
            PoolError::Prepare(source) if !is_connection_problem(source) => {
                LookupError::Failed(error.to_string())
            }
            _ => LookupError::Unavailable(error.to_string()),
        }
    }
}

/// Whether a failed query says the database is out of reach (try again later) rather
/// than that the query itself is wrong.
pub(crate) fn is_connection_problem(error: &tokio_postgres::Error) -> bool {
    match error.code() {
        // Connection exceptions, the server shutting down or starting up.
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
        }
        None => true,
    }
}

fn query_error(error: tokio_postgres::Error) -> LookupError {
    if is_connection_problem(&error) {
        LookupError::Unavailable(postgres::describe(&error))
    } else {
        LookupError::Failed(postgres::describe(&error))
    }
}

/// What lookups know of the database: table shapes by model, and user-defined types.
#[derive(Default)]
struct Known {
    shapes: HashMap<String, Arc<TableShape>>,
    types: TypeCatalog,
}

pub struct Relations {
    models: BTreeMap<String, ModelConfig>,
    pool: Pool,
    known: Mutex<Known>,
    metrics: Arc<Metrics>,
}

impl Relations {
    pub fn new(config: &Config, url: DatabaseUrl, metrics: Arc<Metrics>) -> Relations {
        Relations {
            models: config.models.clone(),
            pool: Pool::new(url, POOL_SIZE, STATEMENT_TIMEOUT),
            known: Mutex::new(Known::default()),
            metrics,
        }
    }

    /// Looks up what `includes` names for every row (rows of `model`), in place. A query
    /// that fails because a table changed reads the table shapes again and runs once more.
    pub async fn enrich(
        &self,
        model: &str,
        includes: &Includes,
        mut rows: Vec<&mut Row>,
    ) -> Result<(), LookupError> {
        if includes.is_empty() || rows.is_empty() {
            return Ok(());
        }
        self.enrich_level(model, includes, &mut rows).await
    }

    async fn enrich_level(
        &self,
        model: &str,
        includes: &Includes,
        rows: &mut [&mut Row],
    ) -> Result<(), LookupError> {
        for (name, nested) in &includes.0 {
            let relation = self.relation(model, name)?;
            let found = match self.look_up(model, &relation, rows).await {
                Err(error @ LookupError::Failed(_)) => {
                    // Perhaps a table was altered since its shape was read.
                    debug!(%error, "lookup failed; reading table shapes again");
                    self.forget_shapes().await;
                    self.look_up(model, &relation, rows).await?
                }
                other => other?,
            };
            found.attach(name, rows);
            if nested.is_empty() {
                continue;
            }
            let mut children: Vec<&mut Row> = rows
                .iter_mut()
                .flat_map(|row| related_rows(row, name))
                .collect();
            if !children.is_empty() {
                Box::pin(self.enrich_level(&relation.model, nested, &mut children)).await?;
            }
        }
        Ok(())
    }

    /// The newest row of `model`'s table (highest primary key; last by `ctid` without
    /// one) with what `includes` names: `rowhook send-test`'s sample item.
    pub async fn newest_row(
        &self,
        model: &str,
        includes: &Includes,
    ) -> Result<Option<Row>, LookupError> {
        let client = self.pool.get().await?;
        let (shape, types) = {
            let mut known = self.known.lock().await;
            let shape = self.shape(&client, &mut known, model).await?;
            (shape, known.types.clone())
        };
        let result = client
            .query_opt(newest_row_query(&shape).as_str(), &[])
            .await
            .map_err(query_error)?;
        drop(client);
        let Some(result) = result else {
            return Ok(None);
        };
        let mut row = RowReader::new(&shape, &types).read(&result, 0);
        self.enrich(model, includes, vec![&mut row]).await?;
        Ok(Some(row))
    }

    /// `model`'s table shape and the types its columns use, read once.
    pub(crate) async fn shape_of(
        &self,
        model: &str,
    ) -> Result<(Arc<TableShape>, TypeCatalog), LookupError> {
        let client = self.pool.get().await?;
        let mut known = self.known.lock().await;
        let shape = self.shape(&client, &mut known, model).await?;
        Ok((shape, known.types.clone()))
    }

    /// The names of `model`'s primary key columns, in key order; empty without one.
    pub async fn primary_key(&self, model: &str) -> Result<Vec<String>, LookupError> {
        let (shape, _) = self.shape_of(model).await?;
        Ok(shape
            .key_columns()
            .map(|column| column.name.clone())
            .collect())
    }

    fn relation(&self, model: &str, name: &str) -> Result<RelationConfig, LookupError> {
        self.models
            .get(model)
            .and_then(|model| model.relations.get(name))
            .cloned()
            .ok_or_else(|| LookupError::Failed(format!("model {model} has no relation {name:?}")))
    }

    async fn forget_shapes(&self) {
        *self.known.lock().await = Known::default();
    }

    /// One query for the relation over all the rows.
    async fn look_up(
        &self,
        model: &str,
        relation: &RelationConfig,
        rows: &[&mut Row],
    ) -> Result<Found, LookupError> {
        let client = self.pool.get().await?;
        let (parent, related, types) = {
            let mut known = self.known.lock().await;
            let parent = self.shape(&client, &mut known, model).await?;
            let related = self.shape(&client, &mut known, &relation.model).await?;
            (parent, related, known.types.clone())
        };
        let plan = Plan::new(&parent, &related, relation)?;
        let keys: BTreeSet<String> = rows
            .iter()
            .filter_map(|row| row.get(&plan.parent_column).and_then(key_text))
            .collect();
        let mut found = Found {
            parent_column: plan.parent_column.clone(),
            rows: match relation.kind {
                RelationKind::BelongsTo { .. } => FoundRows::One(HashMap::new()),
                RelationKind::HasMany { .. } => FoundRows::Many(HashMap::new()),
            },
        };
        if keys.is_empty() {
            return Ok(found);
        }
        let keys: Vec<String> = keys.into_iter().collect();
        self.metrics.relation_query();
        let result = client
            .query(plan.sql.as_str(), &[&keys])
            .await
            .map_err(query_error)?;
        let reader = RowReader::new(&related, &types);
        let mut ordered: HashMap<String, Vec<(i64, Row)>> = HashMap::new();
        for row in &result {
            let key: String = row.get(0);
            let values = reader.read(row, 1);
            match &mut found.rows {
                FoundRows::One(by_key) => {
                    by_key.insert(key, values);
                }
                FoundRows::Many(_) => {
                    let ordinal: i64 = row.get(related.columns.len().max(1) + 1);
                    ordered.entry(key).or_default().push((ordinal, values));
                }
            }
        }
        if let FoundRows::Many(by_key) = &mut found.rows {
            for (key, mut rows) in ordered {
                rows.sort_by_key(|(ordinal, _)| *ordinal);
                by_key.insert(key, rows.into_iter().map(|(_, row)| row).collect());
            }
        }
        Ok(found)
    }

    /// The shape of `model`'s table, read once, with the user-defined types of its columns.
    async fn shape(
        &self,
        client: &tokio_postgres::Client,
        known: &mut Known,
        model: &str,
    ) -> Result<Arc<TableShape>, LookupError> {
        if let Some(shape) = known.shapes.get(model) {
            return Ok(shape.clone());
        }
        let config = self
            .models
            .get(model)
            .ok_or_else(|| LookupError::Failed(format!("no model {model:?} is declared")))?;
        let shape = describe_table(client, &config.table)
            .await
            .map_err(query_error)?
            .ok_or_else(|| {
                LookupError::Failed(format!(
                    "model {model}: table {} does not exist",
                    config.table
                ))
            })?;
        let user_types: Vec<u32> = shape.columns.iter().map(|column| column.type_oid).collect();
        known
            .types
            .load(client, user_types)
            .await
            .map_err(query_error)?;
        let shape = Arc::new(shape);
        known.shapes.insert(model.to_string(), shape.clone());
        Ok(shape)
    }
}

/// Related rows by the key text they were found for, and the parent column that holds
/// the key.
struct Found {
    parent_column: String,
    rows: FoundRows,
}

enum FoundRows {
    One(HashMap<String, Row>),
    Many(HashMap<String, Vec<Row>>),
}

impl Found {
    /// Puts the related rows into every parent row: nil or an empty array when none
    /// were found (or the parent's key is NULL).
    fn attach(&self, name: &str, rows: &mut [&mut Row]) {
        for row in rows.iter_mut() {
            let key = row.get(&self.parent_column).and_then(key_text);
            let value = match (&self.rows, key) {
                (FoundRows::One(by_key), Some(key)) => by_key
                    .get(&key)
                    .map_or(Value::Null, |found| Value::Object(found.clone())),
                (FoundRows::One(_), None) => Value::Null,
                (FoundRows::Many(by_key), Some(key)) => Value::Array(
                    by_key
                        .get(&key)
                        .map(|found| found.iter().cloned().map(Value::Object).collect())
                        .unwrap_or_default(),
                ),
                (FoundRows::Many(_), None) => Value::Array(Vec::new()),
            };
            row.insert(name.to_string(), value);
        }
    }
}

/// The rows a relation put into `row`: the object, or the array's objects.
fn related_rows<'a>(row: &'a mut Row, name: &str) -> Vec<&'a mut Row> {
    match row.get_mut(name) {
        Some(Value::Object(object)) => vec![object],
        Some(Value::Array(items)) => items
            .iter_mut()
            .filter_map(|item| match item {
                Value::Object(object) => Some(object),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Keeps in `row` only the relations `wanted` names, of those `looked_up` put there: the
/// batch looks up what any webhook of the model includes, each webhook sees its own.
pub fn retain_included(row: &mut Row, looked_up: &Includes, wanted: &Includes) {
    for (name, nested_looked_up) in &looked_up.0 {
        match wanted.0.get(name) {
            None => {
                row.remove(name);
            }
            Some(nested_wanted) => {
                for related in related_rows(row, name) {
                    retain_included(related, nested_looked_up, nested_wanted);
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "relations_tests.rs"]
mod tests;
