//! Replication mode: a hand-built walsender connection reading a pgoutput slot.

pub mod check;
pub mod decoder;
mod frames;
pub mod pgoutput;
pub mod setup;
pub mod stream;
mod transport;
pub mod wire;

pub use stream::{CaptureError, ReplicationSource, SlotKind};
