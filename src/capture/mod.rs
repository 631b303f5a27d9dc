//! Capture: reading committed row changes out of PostgreSQL, by logical replication
//! (`replication/`) or a trigger-fed outbox (`notify/`), and handing them to ingest as
//! typed [`Change`](crate::change::Change)s, one at a time, with commit positions to
//! acknowledge once their events are durable.

mod finding;
pub mod notify;
mod reconnect;
pub mod replication;
mod setup_error;
mod source;
mod stage;
mod status;
mod value;

pub use finding::{Finding, Severity};
pub use setup_error::SetupError;
pub use source::{Source, SourceError};
pub use stage::{
    Acknowledgements, Acknowledger, Captured, CommitPosition, acknowledgement_channel,
};
pub use status::{CaptureState, CaptureStatus};
pub use value::{TypeCatalog, to_json};
