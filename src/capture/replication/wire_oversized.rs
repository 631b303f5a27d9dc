//! Reading past a CopyData message larger than the connection's limit (`source.max_row`):
//! its length is known from its header, so its body is dropped as it arrives, 64 KiB at
//! a time, and only its first bytes are kept — enough to name the action and the
//! relation of a row change. Memory stays bounded whatever the row's size.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncReadExt;

use super::{ConnectionError, CopyMessage, ReplicationConnection};

/// How much of an oversized message is kept: the XLogData header (25 bytes) and the
/// start of the pgoutput message, which names the action and the relation.
const OVERSIZED_HEAD: usize = 64;
const COPY_DATA_TAG: u8 = b'd';
pub(crate) const READ_BUFFER_BYTES: usize = 64 * 1024;

/// An oversized CopyData message being read past.
pub(super) struct Skipping {
    pub(super) head: Bytes,
    pub(super) length: usize,
    /// Bytes of its body still to drop.
    pub(super) remaining: usize,
}

impl ReplicationConnection {
    /// CopyData messages whose body is longer than `limit` bytes are not read into
    /// memory: [`Self::read_copy`] returns their head as [`CopyMessage::Oversized`].
    pub fn limit_copy_data(&mut self, limit: usize) {
        self.max_copy_data = limit;
    }

    /// Reads past an oversized CopyData message when one is at the front of the buffer
    /// (or already being read past); `None` when the next message is an ordinary one.
    pub(super) async fn read_past_oversized(
        &mut self,
    ) -> Result<Option<CopyMessage>, ConnectionError> {
        if self.skipping.is_none() {
            let Some(body) = self.oversized_ahead() else {
                return Ok(None);
            };
            let kept = OVERSIZED_HEAD.min(body);
            while self.read_buffer.len() < 5 + kept {
                if self.transport.read_buf(&mut self.read_buffer).await? == 0 {
                    return Err(ConnectionError::Closed);
                }
            }
            self.read_buffer.advance(5);
            let head = self.read_buffer.split_to(kept).freeze();
            self.skipping = Some(Skipping {
                head,
                length: body,
                remaining: body - kept,
            });
        }
        loop {
            let skipping = self.skipping.as_mut().expect("set above");
            let dropped = skipping.remaining.min(self.read_buffer.len());
            self.read_buffer.advance(dropped);
            skipping.remaining -= dropped;
            if self.read_buffer.is_empty() && self.read_buffer.capacity() > READ_BUFFER_BYTES {
                // Whatever was reserved for the message goes: reading into it would touch
                // every page of it, holding the row after all.
                self.read_buffer = BytesMut::with_capacity(READ_BUFFER_BYTES);
            }
            if skipping.remaining == 0 {
                let skipped = self.skipping.take().expect("set above");
                return Ok(Some(CopyMessage::Oversized {
                    head: skipped.head,
                    length: skipped.length,
                }));
            }
            if self.transport.read_buf(&mut self.read_buffer).await? == 0 {
                return Err(ConnectionError::Closed);
            }
        }
    }

    /// The body length of the CopyData message at the front of the buffer, when it is
    /// over the limit.
    pub(super) fn oversized_ahead(&self) -> Option<usize> {
        let header = self.read_buffer.get(..5)?;
        let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let body = length.saturating_sub(4);
        (header[0] == COPY_DATA_TAG && body > self.max_copy_data).then_some(body)
    }
}
