//! Decoding of one pgoutput message (protocol version 1): the payload of an XLogData frame.
//!
//! The layout follows PostgreSQL's `src/backend/replication/logical/proto.c` and the
//! documentation chapter "Logical Replication Message Formats". Protocol version 1 never
//! carries the transaction id that streamed transactions (version 2 and later) put in
//! front of change messages, so it is not read here.
//!
//! Decoding is pure and total: any malformed or truncated input yields a [`DecodeError`]
//! naming the message, the field and the byte offset; nothing panics. Column values are
//! slices of one shared buffer ([`Bytes`]), so a message is copied at most once.

use std::ops::Range;

use bytes::Bytes;

use crate::change::Lsn;

/// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01 00:00:00 UTC),
/// in which pgoutput and the streaming replication protocol express timestamps.
pub(crate) const POSTGRES_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// Column flag: the column is part of the relation's replica identity (its key).
pub(crate) const COLUMN_FLAG_KEY: u8 = 1;

/// One decoded pgoutput message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Message {
    Begin(Begin),
    Commit(Commit),
    /// The origin of the transaction, when it was replicated from elsewhere.
    Origin {
        commit_lsn: Lsn,
        name: String,
    },
    Relation(Relation),
    /// The name of a non-builtin type used by a following Relation's column.
    Type {
        oid: u32,
        namespace: String,
        name: String,
    },
    Insert {
        relation_oid: u32,
        new: Tuple,
    },
    Update {
        relation_oid: u32,
        old: Option<OldTuple>,
        new: Tuple,
    },
    Delete {
        relation_oid: u32,
        old: OldTuple,
    },
    Truncate {
        cascade: bool,
        restart_identity: bool,
        relation_oids: Vec<u32>,
    },
    /// A message written with `pg_logical_emit_message` (only with `messages 'true'`).
    Logical {
        transactional: bool,
        lsn: Lsn,
        prefix: String,
        content: Bytes,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Begin {
    /// The LSN of the transaction's commit record.
    pub final_lsn: Lsn,
    /// Commit time, microseconds since 2000-01-01 00:00:00 UTC.
    pub commit_timestamp: i64,
    pub xid: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Commit {
    /// Unused by PostgreSQL so far (always 0).
    pub flags: u8,
    pub commit_lsn: Lsn,
    /// The end of the commit record: the position to confirm once the transaction is stored.
    pub end_lsn: Lsn,
    /// Commit time, microseconds since 2000-01-01 00:00:00 UTC.
    pub commit_timestamp: i64,
}

/// A table's description, sent before its first change and after every definition change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Relation {
    pub oid: u32,
    /// The schema; PostgreSQL sends an empty string for `pg_catalog`, decoded as `pg_catalog`.
    pub namespace: String,
    pub name: String,
    pub replica_identity: ReplicaIdentity,
    /// The published columns (no dropped or generated ones), in table order.
    pub columns: Vec<Column>,
}

/// `pg_class.relreplident`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplicaIdentity {
    /// `'d'`: the primary key.
    Default,
    /// `'n'`: none.
    Nothing,
    /// `'f'`: every column.
    Full,
    /// `'i'`: a chosen unique index.
    Index,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Column {
    pub flags: u8,
    pub name: String,
    pub type_oid: u32,
    /// `atttypmod`, e.g. a varchar's length plus 4; -1 when none.
    pub type_modifier: i32,
}

impl Column {
    /// Whether the column belongs to the replica identity (every column under FULL).
    pub(crate) fn is_key(&self) -> bool {
        self.flags & COLUMN_FLAG_KEY != 0
    }
}

/// The values of one row, one per relation column, in column order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tuple(pub Vec<ColumnValue>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ColumnValue {
    /// `'n'`.
    Null,
    /// `'u'`: a TOASTed value the change did not touch, so the WAL does not carry it.
    UnchangedToast,
    /// `'t'`: the type's text output.
    Text(Bytes),
    /// `'b'`: the type's binary send format (only with `binary 'true'`).
    Binary(Bytes),
}

/// The old row of an update or delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OldTuple {
    pub kind: OldTupleKind,
    pub tuple: Tuple,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OldTupleKind {
    /// `'K'`: replica-identity columns carry old values, the others are null.
    Key,
    /// `'O'`: the whole old row (REPLICA IDENTITY FULL).
    Full,
}

/// Where in a message decoding stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// The message type, e.g. `Insert`.
    pub message: &'static str,
    /// What was being read, e.g. `column kind`.
    pub field: &'static str,
    /// Bytes from the message's tag.
    pub offset: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Location {
            message,
            field,
            offset,
        } = self;
        write!(
            formatter,
            "pgoutput {message} message, {field} at byte {offset}"
        )
    }
}

/// Why a message could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty pgoutput message")]
    Empty,
    #[error("unknown pgoutput message type {}", describe_byte(*.0))]
    UnknownMessageType(u8),
    #[error("{at}: truncated, needs {needed} bytes, {available} left")]
    Truncated {
        at: Location,
        needed: usize,
        available: usize,
    },
    #[error("{0}: no terminating NUL")]
    UnterminatedString(Location),
    #[error("{0}: not valid UTF-8")]
    InvalidUtf8(Location),
    #[error("{at}: negative ({value})")]
    Negative { at: Location, value: i32 },
    #[error("{at}: expected {expected}, found {}", describe_byte(*found))]
    Unexpected {
        at: Location,
        expected: &'static str,
        found: u8,
    },
    #[error("pgoutput {message} message: {count} unexpected bytes after its end at byte {offset}")]
    TrailingBytes {
        message: &'static str,
        offset: usize,
        count: usize,
    },
}

/// A byte as a character when printable (`'I'`), else in hexadecimal (`0x00`).
fn describe_byte(byte: u8) -> String {
    if byte.is_ascii_graphic() {
        format!("'{}'", char::from(byte))
    } else {
        format!("0x{byte:02X}")
    }
}

#[cfg(test)]
/// Decodes one message, copying it once into a shared buffer that column values slice.
pub(crate) fn decode(message: &[u8]) -> Result<Message, DecodeError> {
    decode_bytes(Bytes::copy_from_slice(message))
}

/// Decodes one message without copying it: column values are slices of `message`.
pub(crate) fn decode_bytes(message: Bytes) -> Result<Message, DecodeError> {
    let (&tag, _) = message.split_first().ok_or(DecodeError::Empty)?;
    let name = match tag {
        b'B' => "Begin",
        b'C' => "Commit",
        b'O' => "Origin",
        b'R' => "Relation",
        b'Y' => "Type",
        b'I' => "Insert",
        b'U' => "Update",
        b'D' => "Delete",
        b'T' => "Truncate",
        b'M' => "Message",
        other => return Err(DecodeError::UnknownMessageType(other)),
    };
    let mut reader = Reader {
        buffer: &message,
        offset: 1,
        message: name,
    };
    let decoded = match tag {
        b'B' => Message::Begin(Begin {
            final_lsn: reader.lsn("final LSN")?,
            commit_timestamp: reader.i64("commit timestamp")?,
            xid: reader.u32("transaction id")?,
        }),
        b'C' => Message::Commit(Commit {
            flags: reader.u8("flags")?,
            commit_lsn: reader.lsn("commit LSN")?,
            end_lsn: reader.lsn("end LSN")?,
            commit_timestamp: reader.i64("commit timestamp")?,
        }),
        b'O' => Message::Origin {
            commit_lsn: reader.lsn("origin commit LSN")?,
            name: reader.string("origin name")?,
        },
        b'R' => Message::Relation(read_relation(&mut reader)?),
        b'Y' => Message::Type {
            oid: reader.u32("type OID")?,
            namespace: reader.namespace()?,
            name: reader.string("type name")?,
        },
        b'I' => {
            let relation_oid = reader.u32("relation OID")?;
            reader.expect(b'N', "tuple marker", "'N'")?;
            Message::Insert {
                relation_oid,
                new: reader.tuple()?,
            }
        }
        b'U' => {
            let relation_oid = reader.u32("relation OID")?;
            let old = match reader.peek("tuple marker")? {
                b'N' => None,
                _ => Some(read_old_tuple(&mut reader, "'K', 'O' or 'N'")?),
            };
            reader.expect(b'N', "tuple marker", "'N'")?;
            Message::Update {
                relation_oid,
                old,
                new: reader.tuple()?,
            }
        }
        b'D' => Message::Delete {
            relation_oid: reader.u32("relation OID")?,
            old: read_old_tuple(&mut reader, "'K' or 'O'")?,
        },
        b'T' => {
            let count = reader.length("relation count")?;
            let options = reader.u8("options")?;
            // Capacity bounded by what the buffer can hold, so garbage cannot force a huge allocation.
            let mut relation_oids = Vec::with_capacity(count.min(reader.remaining() / 4));
            for _ in 0..count {
                relation_oids.push(reader.u32("relation OID")?);
            }
            Message::Truncate {
                cascade: options & 1 != 0,
                restart_identity: options & 2 != 0,
                relation_oids,
            }
        }
        _ => {
            let flags = reader.u8("flags")?;
            let lsn = reader.lsn("message LSN")?;
            let prefix = reader.string("prefix")?;
            let length = reader.length("content length")?;
            Message::Logical {
                transactional: flags & 1 != 0,
                lsn,
                prefix,
                content: reader.bytes(length, "content")?,
            }
        }
    };
    reader.finish()?;
    Ok(decoded)
}

fn read_relation(reader: &mut Reader<'_>) -> Result<Relation, DecodeError> {
    let oid = reader.u32("relation OID")?;
    let namespace = reader.namespace()?;
    let name = reader.string("relation name")?;
    let offset = reader.offset;
    let replica_identity = match reader.u8("replica identity")? {
        b'd' => ReplicaIdentity::Default,
        b'n' => ReplicaIdentity::Nothing,
        b'f' => ReplicaIdentity::Full,
        b'i' => ReplicaIdentity::Index,
        found => {
            let at = reader.at("replica identity", offset);
            let expected = "'d', 'n', 'f' or 'i'";
            return Err(DecodeError::Unexpected {
                at,
                expected,
                found,
            });
        }
    };
    let count = usize::from(reader.u16("column count")?);
    // Each column takes at least 10 bytes: flags, empty name, type OID, modifier.
    let mut columns = Vec::with_capacity(count.min(reader.remaining() / 10));
    for _ in 0..count {
        columns.push(Column {
            flags: reader.u8("column flags")?,
            name: reader.string("column name")?,
            type_oid: reader.u32("column type OID")?,
            type_modifier: reader.i32("column type modifier")?,
        });
    }
    Ok(Relation {
        oid,
        namespace,
        name,
        replica_identity,
        columns,
    })
}

/// The `'K'` or `'O'` marker and the tuple after it; `expected` describes the markers
/// acceptable at this point, for the error.
fn read_old_tuple(
    reader: &mut Reader<'_>,
    expected: &'static str,
) -> Result<OldTuple, DecodeError> {
    let offset = reader.offset;
    let kind = match reader.u8("tuple marker")? {
        b'K' => OldTupleKind::Key,
        b'O' => OldTupleKind::Full,
        found => {
            let at = reader.at("tuple marker", offset);
            return Err(DecodeError::Unexpected {
                at,
                expected,
                found,
            });
        }
    };
    let tuple = reader.tuple()?;
    Ok(OldTuple { kind, tuple })
}

/// A bounds-checked cursor over one message; every read names its field for errors.
struct Reader<'a> {
    buffer: &'a Bytes,
    offset: usize,
    message: &'static str,
}

impl Reader<'_> {
    fn at(&self, field: &'static str, offset: usize) -> Location {
        Location {
            message: self.message,
            field,
            offset,
        }
    }

    fn remaining(&self) -> usize {
        self.buffer.len() - self.offset
    }

    /// Reserves the next `count` bytes and returns their range.
    fn claim(&mut self, count: usize, field: &'static str) -> Result<Range<usize>, DecodeError> {
        let available = self.remaining();
        if count > available {
            let at = self.at(field, self.offset);
            return Err(DecodeError::Truncated {
                at,
                needed: count,
                available,
            });
        }
        let start = self.offset;
        self.offset += count;
        Ok(start..self.offset)
    }

    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let range = self.claim(N, field)?;
        let mut array = [0; N];
        array.copy_from_slice(&self.buffer[range]);
        Ok(array)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.take(field).map(u8::from_be_bytes)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.take(field).map(u16::from_be_bytes)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.take(field).map(u32::from_be_bytes)
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        self.take(field).map(i32::from_be_bytes)
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        self.take(field).map(i64::from_be_bytes)
    }

    fn lsn(&mut self, field: &'static str) -> Result<Lsn, DecodeError> {
        self.take(field).map(|bytes| Lsn(u64::from_be_bytes(bytes)))
    }

    /// An Int32 count or length, which PostgreSQL never sends negative.
    fn length(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        let offset = self.offset;
        let value = self.i32(field)?;
        usize::try_from(value).map_err(|_| DecodeError::Negative {
            at: self.at(field, offset),
            value,
        })
    }

    /// The next byte, without consuming it.
    fn peek(&self, field: &'static str) -> Result<u8, DecodeError> {
        let at = self.at(field, self.offset);
        let truncated = DecodeError::Truncated {
            at,
            needed: 1,
            available: 0,
        };
        self.buffer.get(self.offset).copied().ok_or(truncated)
    }

    fn expect(
        &mut self,
        wanted: u8,
        field: &'static str,
        expected: &'static str,
    ) -> Result<(), DecodeError> {
        let offset = self.offset;
        match self.u8(field)? {
            found if found == wanted => Ok(()),
            found => Err(DecodeError::Unexpected {
                at: self.at(field, offset),
                expected,
                found,
            }),
        }
    }

    fn bytes(&mut self, count: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        let range = self.claim(count, field)?;
        Ok(self.buffer.slice(range))
    }

    /// A NUL-terminated string.
    fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let at = self.at(field, self.offset);
        let rest = &self.buffer[self.offset..];
        let length = rest
            .iter()
            .position(|&byte| byte == 0)
            .ok_or(DecodeError::UnterminatedString(at))?;
        let text =
            std::str::from_utf8(&rest[..length]).map_err(|_| DecodeError::InvalidUtf8(at))?;
        self.offset += length + 1;
        Ok(text.to_owned())
    }

    /// A schema name; PostgreSQL abbreviates `pg_catalog` to an empty string.
    fn namespace(&mut self) -> Result<String, DecodeError> {
        let namespace = self.string("namespace")?;
        Ok(if namespace.is_empty() {
            "pg_catalog".to_owned()
        } else {
            namespace
        })
    }

    fn tuple(&mut self) -> Result<Tuple, DecodeError> {
        let count = usize::from(self.u16("tuple column count")?);
        // Each column takes at least its kind byte.
        let mut values = Vec::with_capacity(count.min(self.remaining()));
        for _ in 0..count {
            let offset = self.offset;
            let value = match self.u8("column kind")? {
                b'n' => ColumnValue::Null,
                b'u' => ColumnValue::UnchangedToast,
                b't' => {
                    let length = self.length("text value length")?;
                    ColumnValue::Text(self.bytes(length, "text value")?)
                }
                b'b' => {
                    let length = self.length("binary value length")?;
                    ColumnValue::Binary(self.bytes(length, "binary value")?)
                }
                found => {
                    let at = self.at("column kind", offset);
                    let expected = "'n', 'u', 't' or 'b'";
                    return Err(DecodeError::Unexpected {
                        at,
                        expected,
                        found,
                    });
                }
            };
            values.push(value);
        }
        Ok(Tuple(values))
    }

    /// Protocol version 1 messages have an exact length: anything left over means the
    /// stream is not what this decoder thinks it is.
    fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes {
                message: self.message,
                offset: self.offset,
                count,
            }),
        }
    }
}

#[cfg(test)]
#[path = "pgoutput_tests.rs"]
pub(crate) mod tests;
