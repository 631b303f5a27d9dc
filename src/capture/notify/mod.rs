//! Notify mode: capture through a trigger-fed outbox (`sql/notify.sql`) and LISTEN/NOTIFY,
//! for databases where logical replication cannot be turned on.

pub mod check;
mod error;
pub mod outbox;
mod queries;
pub mod record;
pub mod setup;
pub mod stream;

pub use error::NotifyError;
pub use stream::NotifySource;

/// The schema, outbox and trigger functions, as `rowhook setup` installs them.
pub const NOTIFY_SQL: &str = include_str!("../../../sql/notify.sql");
