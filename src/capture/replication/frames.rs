//! The streaming replication sub-protocol inside CopyData: XLogData and keepalives from
//! the server, standby status updates from us, and the rule for what we may confirm.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::change::Lsn;

/// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01).
pub(crate) const POSTGRES_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

#[derive(Debug, PartialEq)]
pub(crate) enum ServerFrame {
    /// WAL data: a pgoutput message that starts at `start`.
    XLogData { start: Lsn, payload: Bytes },
    /// `wal_end` is how far the server has sent; it wants an answer when `reply_requested`.
    Keepalive { wal_end: Lsn, reply_requested: bool },
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FrameError {
    #[error("empty replication frame")]
    Empty,
    #[error("replication frame {kind:?} is {length} bytes, shorter than its header")]
    Truncated { kind: char, length: usize },
    #[error("unknown replication frame kind {0:?}")]
    UnknownKind(char),
}

pub(crate) fn parse_server_frame(mut data: Bytes) -> Result<ServerFrame, FrameError> {
    let Some(&kind) = data.first() else {
        return Err(FrameError::Empty);
    };
    let length = data.len();
    let truncated = FrameError::Truncated {
        kind: char::from(kind),
        length,
    };
    match kind {
        b'w' => {
            if length < 25 {
                return Err(truncated);
            }
            data.advance(1);
            let start = Lsn(data.get_u64());
            // WAL end and send time follow; neither is needed to decode.
            data.advance(16);
            Ok(ServerFrame::XLogData {
                start,
                payload: data,
            })
        }
        b'k' => {
            if length < 18 {
                return Err(truncated);
            }
            data.advance(1);
            let wal_end = Lsn(data.get_u64());
            data.advance(8);
            Ok(ServerFrame::Keepalive {
                wal_end,
                reply_requested: data.get_u8() == 1,
            })
        }
        other => Err(FrameError::UnknownKind(char::from(other))),
    }
}

/// A standby status update: everything up to `confirmed` is written, flushed and applied.
pub(crate) fn status_update(confirmed: Lsn, now_unix_micros: i64, reply_requested: bool) -> Bytes {
    let mut frame = BytesMut::with_capacity(34);
    frame.put_u8(b'r');
    frame.put_u64(confirmed.0);
    frame.put_u64(confirmed.0);
    frame.put_u64(confirmed.0);
    frame.put_i64(now_unix_micros - POSTGRES_EPOCH_OFFSET_MICROS);
    frame.put_u8(u8::from(reply_requested));
    frame.freeze()
}

/// What the stream knows when it decides how far to confirm.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Progress {
    /// The highest position the next stage has made durable.
    pub acknowledged: Lsn,
    /// The end of the last transaction handed to the next stage.
    pub last_commit_end: Lsn,
    /// Whether a transaction has begun and not yet committed.
    pub in_transaction: bool,
    /// How far the server says it has sent (from its last keepalive).
    pub server_sent: Lsn,
}

/// The position to confirm to the server. It never moves backwards. When every
/// transaction handed on is durable and none is half read, everything the server has sent
/// is accounted for, so its send position may be confirmed: that keeps an idle slot from
/// holding WAL while unrelated tables churn.
pub(crate) fn confirmed_position(previous: Lsn, progress: Progress) -> Lsn {
    let idle = !progress.in_transaction && progress.acknowledged >= progress.last_commit_end;
    let target = if idle {
        progress.acknowledged.max(progress.server_sent)
    } else {
        progress.acknowledged
    };
    previous.max(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_xlog_data() {
        let mut frame = BytesMut::new();
        frame.put_u8(b'w');
        frame.put_u64(0x16B3748);
        frame.put_u64(0x16B3800);
        frame.put_i64(12345);
        frame.put_slice(b"B...");
        let parsed = parse_server_frame(frame.freeze()).unwrap();
        assert_eq!(
            parsed,
            ServerFrame::XLogData {
                start: Lsn(0x16B3748),
                payload: Bytes::from_static(b"B...")
            }
        );
    }

    #[test]
    fn parses_keepalive() {
        let mut frame = BytesMut::new();
        frame.put_u8(b'k');
        frame.put_u64(42);
        frame.put_i64(0);
        frame.put_u8(1);
        assert_eq!(
            parse_server_frame(frame.freeze()).unwrap(),
            ServerFrame::Keepalive {
                wal_end: Lsn(42),
                reply_requested: true
            }
        );
    }

    #[test]
    fn rejects_short_and_unknown_frames() {
        assert_eq!(parse_server_frame(Bytes::new()), Err(FrameError::Empty));
        assert_eq!(
            parse_server_frame(Bytes::from_static(b"w\0\0")),
            Err(FrameError::Truncated {
                kind: 'w',
                length: 3
            })
        );
        assert_eq!(
            parse_server_frame(Bytes::from_static(b"k")),
            Err(FrameError::Truncated {
                kind: 'k',
                length: 1
            })
        );
        assert_eq!(
            parse_server_frame(Bytes::from_static(b"x")),
            Err(FrameError::UnknownKind('x'))
        );
    }

    #[test]
    fn status_update_layout() {
        let frame = status_update(Lsn(7), POSTGRES_EPOCH_OFFSET_MICROS + 5, true);
        assert_eq!(frame.len(), 34);
        assert_eq!(frame[0], b'r');
        assert_eq!(&frame[1..9], &7u64.to_be_bytes());
        assert_eq!(&frame[9..17], &7u64.to_be_bytes());
        assert_eq!(&frame[17..25], &7u64.to_be_bytes());
        assert_eq!(&frame[25..33], &5i64.to_be_bytes());
        assert_eq!(frame[33], 1);
    }

    #[test]
    fn idle_stream_confirms_the_server_position() {
        let progress = Progress {
            acknowledged: Lsn(100),
            last_commit_end: Lsn(100),
            in_transaction: false,
            server_sent: Lsn(500),
        };
        assert_eq!(confirmed_position(Lsn(100), progress), Lsn(500));
    }

    #[test]
    fn pending_work_holds_the_position_at_the_acknowledgement() {
        let unacknowledged = Progress {
            acknowledged: Lsn(100),
            last_commit_end: Lsn(200),
            in_transaction: false,
            server_sent: Lsn(500),
        };
        assert_eq!(confirmed_position(Lsn(50), unacknowledged), Lsn(100));
        let half_read = Progress {
            acknowledged: Lsn(200),
            last_commit_end: Lsn(200),
            in_transaction: true,
            server_sent: Lsn(500),
        };
        assert_eq!(confirmed_position(Lsn(50), half_read), Lsn(200));
    }

    #[test]
    fn the_position_never_moves_backwards() {
        let progress = Progress {
            acknowledged: Lsn(10),
            last_commit_end: Lsn(20),
            in_transaction: false,
            server_sent: Lsn(30),
        };
        assert_eq!(confirmed_position(Lsn(900), progress), Lsn(900));
    }
}
