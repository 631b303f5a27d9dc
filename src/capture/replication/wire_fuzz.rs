//! Fuzz target `copy_both_frames`: the bytes a server sends once START_REPLICATION has
//! switched the connection to CopyBoth, arriving in pieces of any size, read as the
//! connection reads them: backend messages, then the XLogData and keepalive frames
//! inside CopyData. The reader must neither panic nor reserve memory for bytes that
//! have not arrived.

use bytes::BytesMut;
use postgres_protocol::message::backend;

use super::{Incoming, MAX_READ_AHEAD, ServerError, parse_buffered};
use crate::capture::replication::frames::parse_server_frame;
use crate::fuzz::{Target, fuzz};

/// Bytes arrive in pieces of these sizes, chosen by the input's first byte, so frames
/// split at every point are read too.
const PIECES: [usize; 4] = [1, 7, 300, 65_536];

/// The read buffer may hold what arrived and the read-ahead, doubled by growing in
/// steps, never more.
fn capacity_limit(arrived: usize) -> usize {
    2 * (arrived + MAX_READ_AHEAD) + 8192
}

fn read(input: &[u8]) -> Result<(), String> {
    let Some((&first, stream)) = input.split_first() else {
        return Ok(());
    };
    let piece = PIECES[usize::from(first) % PIECES.len()];
    let mut buffer = BytesMut::new();
    let mut arrived = 0;
    for chunk in stream.chunks(piece) {
        buffer.extend_from_slice(chunk);
        arrived += chunk.len();
        loop {
            let message = match parse_buffered(&mut buffer) {
                Ok(Some(message)) => message,
                Ok(None) => break,
                // An error ends the connection, so the rest of the stream is never read.
                Err(error) => {
                    let _ = error.to_string();
                    return Ok(());
                }
            };
            match message {
                Incoming::Message(backend::Message::CopyData(body)) => {
                    if let Err(error) = parse_server_frame(body.into_bytes()) {
                        let _ = error.to_string();
                    }
                }
                Incoming::Message(backend::Message::ErrorResponse(body)) => {
                    let _ = ServerError::from_body(&body).to_string();
                }
                Incoming::Message(_) | Incoming::CopyBothResponse | Incoming::OversizedAhead => {}
            }
        }
        if buffer.capacity() > capacity_limit(arrived) {
            return Err(format!(
                "the read buffer holds {} bytes of capacity after {arrived} bytes arrived",
                buffer.capacity()
            ));
        }
    }
    Ok(())
}

#[test]
fn copy_both_frames() {
    fuzz(Target {
        name: "copy_both_frames",
        dictionary: &[
            b"W\0\0\0\x07\0\0\0",
            b"d\0\0\0",
            b"w",
            b"k",
            b"c\0\0\0\x04",
            b"C\0\0\0\x0bCOPY 0\0",
            b"E\0\0\0",
            b"N\0\0\0",
            b"SERROR\0",
            b"\x7f\xff\xff\xff",
            b"\xff\xff\xff\xff",
        ],
        max_length: 1 << 16,
        extra_corpus: &[],
        execute: &read,
    });
}
