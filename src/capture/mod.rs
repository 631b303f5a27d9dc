//! Capture: reading committed row changes out of PostgreSQL, by logical replication
//! (`replication/`) or a trigger-fed outbox (`notify/`), and handing them to ingest as
//! typed [`Change`](crate::change::Change)s, one at a time, with commit positions to
//! acknowledge once their events are durable.

pub mod finding;
pub mod notify;
mod reconnect;
pub mod replication;
pub mod setup_error;
mod source;
pub mod stage;
mod status;
pub mod value;

pub use source::{Source, SourceError};
pub use status::{CaptureState, CaptureStatus};
