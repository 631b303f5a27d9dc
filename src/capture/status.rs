//! How capture is doing, as `/healthz`, `/metrics` and the pages show it: published by
//! the capture stage on a watch channel, read by whoever asks.

use crate::change::Lsn;

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
