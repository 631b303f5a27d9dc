//! Replication mode: a hand-built walsender connection reading a pgoutput slot.

mod check;
mod decoder;
mod frames;
mod pgoutput;
mod setup;
mod stream;
mod wire;

pub use check::check;
pub use setup::setup;
pub use stream::{CaptureError, ReplicationSource, SlotKind};
pub use wire::{ConnectionError, ReplicationConnection};
