//! What every capture mode hands to the next stage, and how that stage answers: the
//! replication stream and the notify outbox both emit `Captured` items and learn through
//! the `Acknowledger` what has been made durable.

use tokio::sync::watch;

use crate::change::{Change, Lsn, OversizedRow};

/// How far a capture run has handed changes on: what the next stage acknowledges once
/// their events are durable. Positions of one run only ever grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CommitPosition {
    /// Nothing handed on yet.
    #[default]
    Start,
    /// Replication: the end LSN of a transaction. The slot resumes after it, so the
    /// store keeps it as the point to restart from.
    Wal(Lsn),
    /// Notify: the number of a drained outbox batch, counting up from 1 in each run. The
    /// outbox keeps its own place (rows are deleted once acknowledged), so this number
    /// means nothing to another run.
    OutboxBatch(u64),
}

/// What the stage hands to the next one.
#[derive(Debug, Clone, PartialEq)]
pub enum Captured {
    Change(Box<Change>),
    /// A change whose row is larger than `source.max_row`; it was never read whole.
    Oversized(Box<OversizedRow>),
    /// Every change before this point has been handed on; once they are durable the next
    /// stage acknowledges the position. (Replication: a transaction cut off by a
    /// reconnect is sent again from its start, with the same change positions.)
    Commit(CommitPosition),
    /// Notify: the outbox rows of the changes handed on since the last `Drained`, sent
    /// before their `Commit`. A store in the same database deletes them in the
    /// transaction that stores their events; the source deletes them otherwise, once
    /// acknowledged.
    Drained(Vec<i64>),
}

/// The next stage's side of the acknowledgement: positions only ever move forward.
#[derive(Clone, Debug)]
pub struct Acknowledger(watch::Sender<CommitPosition>);

impl Acknowledger {
    pub fn acknowledge(&self, position: CommitPosition) {
        self.0.send_if_modified(|current| {
            let forward = position > *current;
            if forward {
                *current = position;
            }
            forward
        });
    }
}

/// Where capture learns what the next stage has made durable.
pub type Acknowledgements = watch::Receiver<CommitPosition>;

pub fn acknowledgement_channel() -> (Acknowledger, Acknowledgements) {
    let (sender, receiver) = watch::channel(CommitPosition::Start);
    (Acknowledger(sender), receiver)
}
