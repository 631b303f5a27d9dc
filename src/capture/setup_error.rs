//! What can stop `rowhook setup`, in either capture mode.

use crate::change::TableName;
use crate::postgres::describe;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Database(String),
    #[error("table {table} (model {model:?}) does not exist")]
    TableMissing { model: String, table: TableName },
    #[error(
        "table {table} (model {model:?}) has no primary key and no replica identity: once \
         published, UPDATE and DELETE on it would fail; add a primary key or run \
         `rowhook setup --replica-identity-full`"
    )]
    NoReplicaIdentity { model: String, table: TableName },
    #[error("replication slot {slot:?} exists with plugin {plugin:?}; rowhook needs pgoutput")]
    SlotPlugin { slot: String, plugin: String },
    #[error("replication slot {slot:?} belongs to database {database:?}, not {expected:?}")]
    SlotDatabase {
        slot: String,
        database: String,
        expected: String,
    },
    #[error("notify mode needs PostgreSQL 13 or newer; the server is {version}")]
    ServerTooOld { version: String },
}

impl From<tokio_postgres::Error> for SetupError {
    fn from(error: tokio_postgres::Error) -> Self {
        SetupError::Database(describe(&error))
    }
}
