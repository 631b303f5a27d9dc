//! What every capture mode hands to the next stage, and how that stage answers: the
//! replication stream and the notify outbox both emit `Captured` items and learn through
//! the `Acknowledger` what has been made durable.

use tokio::sync::watch;

use crate::change::{Change, Lsn};

/// What the stage hands to the next one.
#[derive(Debug, Clone, PartialEq)]
pub enum Captured {
    Change(Box<Change>),
    /// Every change before this point has been handed on; once they are durable the next
    /// stage acknowledges `end_lsn`. Replication: the transaction's end LSN (a transaction
    /// cut off by a reconnect is sent again from its start with the same positions).
    /// Notify: the number of a drained outbox batch, counting up from 1 per process.
    Commit {
        end_lsn: Lsn,
    },
}

/// The next stage's side of the acknowledgement: positions only ever move forward.
#[derive(Clone, Debug)]
pub struct Acknowledger(watch::Sender<Lsn>);

impl Acknowledger {
    pub fn acknowledge(&self, lsn: Lsn) {
        self.0.send_if_modified(|current| {
            let forward = lsn > *current;
            if forward {
                *current = lsn;
            }
            forward
        });
    }
}

pub fn acknowledgement_channel() -> (Acknowledger, watch::Receiver<Lsn>) {
    let (sender, receiver) = watch::channel(Lsn(0));
    (Acknowledger(sender), receiver)
}

/// How capture is doing, for `/healthz` and `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CaptureState {
    #[default]
    Connecting,
    Streaming,
    Retrying,
    Stopped,
}

impl CaptureState {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureState::Connecting => "connecting",
            CaptureState::Streaming => "streaming",
            CaptureState::Retrying => "retrying",
            CaptureState::Stopped => "stopped",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CaptureStatus {
    pub state: CaptureState,
    /// Why the stream is down, while retrying.
    pub last_error: Option<String>,
    /// How far the server has sent.
    pub server_sent: Lsn,
    /// How far rowhook has confirmed.
    pub confirmed: Lsn,
}
