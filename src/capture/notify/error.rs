//! What can stop notify capture, and which of it may pass by itself.

use super::outbox::OutboxRowError;
use crate::capture::reconnect::Transient;
use crate::postgres::{DatabaseError, describe};

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Connect(#[from] DatabaseError),
    #[error("the outbox rowhook.outbox does not exist; run `rowhook setup` first")]
    OutboxMissing,
    #[error("{doing} failed: {message}")]
    Query {
        doing: &'static str,
        message: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("the database connection closed")]
    Closed,
    #[error(
        "another rowhook is draining rowhook.outbox of this database (it holds the drainer's \
         advisory lock); waiting for it to stop"
    )]
    Busy,
    #[error("outbox row {id}: unreadable {column} {value:?}")]
    Unreadable {
        id: i64,
        column: &'static str,
        value: String,
    },
    #[error(transparent)]
    Row(#[from] OutboxRowError),
}

impl Transient for NotifyError {
    /// Whether trying again later may succeed (the server down or restarting) rather than
    /// needing an operator (credentials, a missing outbox, a missing privilege).
    fn is_held_elsewhere(&self) -> bool {
        matches!(self, NotifyError::Busy)
    }

    fn is_transient(&self) -> bool {
        let server_code = |error: &tokio_postgres::Error| {
            error
                .as_db_error()
                .map(|server| server.code().code().to_string())
        };
        match self {
            NotifyError::Connect(DatabaseError::Connect { source, .. }) => {
                !matches!(server_code(source), Some(code) if code.starts_with("28") || code.starts_with("3D"))
            }
            NotifyError::Connect(DatabaseError::Socket(_)) => true,
            NotifyError::Connect(DatabaseError::Tls(_) | DatabaseError::ServerName(_)) => false,
            NotifyError::Query { source, .. } => {
                !matches!(server_code(source), Some(code) if code.starts_with("42"))
            }
            NotifyError::Closed | NotifyError::Busy => true,
            NotifyError::OutboxMissing | NotifyError::Unreadable { .. } | NotifyError::Row(_) => {
                false
            }
        }
    }
}

pub(super) fn query_error(doing: &'static str) -> impl Fn(tokio_postgres::Error) -> NotifyError {
    move |source| {
        if source
            .as_db_error()
            .is_some_and(|server| server.code().code() == "42P01")
        {
            return NotifyError::OutboxMissing;
        }
        NotifyError::Query {
            doing,
            message: describe(&source),
            source,
        }
    }
}
