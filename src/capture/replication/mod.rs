//! Replication mode: a hand-built walsender connection reading a pgoutput slot.

mod check;
mod decoder;
mod error;
mod frames;
mod pgoutput;
mod setup;
mod slot;
mod stream;
mod wire;

pub use check::check;
pub use error::CaptureError;
pub use setup::setup;
pub use slot::SlotKind;
pub use stream::ReplicationSource;
pub use wire::{ConnectionError, ReplicationConnection};
