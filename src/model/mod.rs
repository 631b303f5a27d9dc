//! Models as tables in the database, beyond the captured row: the rows they relate to
//! (looked up in batches when a change is routed) and the rows they hold already (read
//! in key order by a backfill). Values convert exactly as capture converts them.

mod check;
mod key;
mod pool;
mod queries;
mod relations;
mod rows;
mod table;

pub use check::check_relations;
pub use key::{key_query_forms, row_key};
pub(crate) use pool::{Pool, Pooled, VALUE_SETTINGS};
pub(crate) use relations::is_connection_problem;
pub use relations::{LookupError, Relations, retain_included};
pub(crate) use rows::RowReader;
#[cfg(test)]
pub(crate) use table::Column as TableColumn;
pub(crate) use table::{TableShape, describe_table};
