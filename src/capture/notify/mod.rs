//! Notify mode: capture through a trigger-fed outbox (`sql/notify.sql`) and LISTEN/NOTIFY,
//! for databases where logical replication cannot be turned on.

mod check;
mod drainer_lock;
mod error;
mod outbox;
mod queries;
mod setup;
mod stream;

pub use check::check;
pub use error::NotifyError;
pub use setup::setup;
pub use stream::NotifySource;

/// The schema, outbox and trigger functions, as `rowhook setup` installs them.
pub const NOTIFY_SQL: &str = include_str!("../../../sql/notify.sql");
