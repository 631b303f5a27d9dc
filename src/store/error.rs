//! What a store operation can fail with, in terms every backend shares.

use std::error::Error as StdError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no event {0:?}")]
    NotFound(String),
    #[error("event {id:?} cannot be redelivered: its request could not be rendered ({reason})")]
    NotRedeliverable { id: String, reason: String },
    /// The store admits one process and another holds it (a running `rowhook run`).
    #[error("the store at {path} is in use by another process")]
    Locked { path: String },
    /// The shared store's database cannot be reached at start.
    #[error("cannot open the store: {reason}")]
    Unreachable { reason: String },
    /// The shared store's tables were made by a newer rowhook.
    #[error(
        "the store's tables (schema rowhook) are of version {found}, made by a newer rowhook; \
         this binary knows version {supported} at most: upgrade it, or point store.url elsewhere"
    )]
    SchemaTooNew { found: u32, supported: u32 },
    #[error("stored {what} is unreadable: {reason}")]
    Corrupt { what: String, reason: String },
    /// Anything the backend itself reports: I/O, its own errors.
    #[error("{doing}: {source}")]
    Backend {
        doing: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

impl StoreError {
    pub(crate) fn backend(
        doing: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Backend {
            doing: doing.into(),
            source: Box::new(source),
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            what: what.into(),
            reason: reason.into(),
        }
    }
}
