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
    /// Another instance holds the slot or the outbox lock; this one takes over when it
    /// can (CONTRACT §10).
    Standby,
    Stopped,
}

impl CaptureState {
    /// Whether the instance is as it should be: capturing, or standing by while another
    /// instance captures.
    pub fn is_healthy(self) -> bool {
        matches!(self, CaptureState::Streaming | CaptureState::Standby)
    }

    /// `capturing` or `standby`, for `/healthz`; other states are on the way to one.
    pub fn role(self) -> &'static str {
        match self {
            CaptureState::Standby => "standby",
            _ => "capturing",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CaptureState::Connecting => "connecting",
            CaptureState::Streaming => "streaming",
            CaptureState::Retrying => "retrying",
            CaptureState::Standby => "standby",
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
