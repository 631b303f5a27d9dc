//! Tests of the pgoutput decoder, and byte fixtures written the way PostgreSQL's
//! `proto.c` writes them (shared with the change decoder's tests).

use super::*;
use crate::fuzz::Random;

/// One column of a tuple fixture.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Field<'a> {
    Null,
    Unchanged,
    Text(&'a str),
    Binary(&'a [u8]),
}

/// Writes a message field by field, big-endian like PostgreSQL's `pq_send*`.
pub(crate) struct Builder(Vec<u8>);

impl Builder {
    pub(crate) fn new(tag: u8) -> Self {
        Builder(vec![tag])
    }

    pub(crate) fn byte(mut self, value: u8) -> Self {
        self.0.push(value);
        self
    }

    pub(crate) fn int16(mut self, value: u16) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn int32(mut self, value: u32) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn int64(mut self, value: u64) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }

    pub(crate) fn string(self, text: &str) -> Self {
        self.raw(text.as_bytes()).byte(0)
    }

    pub(crate) fn tuple(self, fields: &[Field<'_>]) -> Self {
        let mut builder = self.int16(fields.len() as u16);
        for field in fields {
            builder = match *field {
                Field::Null => builder.byte(b'n'),
                Field::Unchanged => builder.byte(b'u'),
                Field::Text(text) => builder
                    .byte(b't')
                    .int32(text.len() as u32)
                    .raw(text.as_bytes()),
                Field::Binary(bytes) => builder.byte(b'b').int32(bytes.len() as u32).raw(bytes),
            };
        }
        builder
    }

    pub(crate) fn build(self) -> Vec<u8> {
        self.0
    }
}

pub(crate) fn begin(final_lsn: u64, commit_timestamp: i64, xid: u32) -> Vec<u8> {
    Builder::new(b'B')
        .int64(final_lsn)
        .int64(commit_timestamp as u64)
        .int32(xid)
        .build()
}

pub(crate) fn commit(commit_lsn: u64, end_lsn: u64, commit_timestamp: i64) -> Vec<u8> {
    Builder::new(b'C')
        .byte(0)
        .int64(commit_lsn)
        .int64(end_lsn)
        .int64(commit_timestamp as u64)
        .build()
}

/// Columns as (flags, name, type OID, type modifier).
pub(crate) fn relation(
    oid: u32,
    namespace: &str,
    name: &str,
    replica_identity: u8,
    columns: &[(u8, &str, u32, i32)],
) -> Vec<u8> {
    let mut builder = Builder::new(b'R')
        .int32(oid)
        .string(namespace)
        .string(name)
        .byte(replica_identity)
        .int16(columns.len() as u16);
    for &(flags, column, type_oid, modifier) in columns {
        builder = builder
            .byte(flags)
            .string(column)
            .int32(type_oid)
            .int32(modifier as u32);
    }
    builder.build()
}

pub(crate) fn insert(relation_oid: u32, new: &[Field<'_>]) -> Vec<u8> {
    Builder::new(b'I')
        .int32(relation_oid)
        .byte(b'N')
        .tuple(new)
        .build()
}

/// `old` is the marker (`b'K'` or `b'O'`) and the old tuple.
pub(crate) fn update(
    relation_oid: u32,
    old: Option<(u8, &[Field<'_>])>,
    new: &[Field<'_>],
) -> Vec<u8> {
    let mut builder = Builder::new(b'U').int32(relation_oid);
    if let Some((marker, fields)) = old {
        builder = builder.byte(marker).tuple(fields);
    }
    builder.byte(b'N').tuple(new).build()
}

pub(crate) fn delete(relation_oid: u32, marker: u8, old: &[Field<'_>]) -> Vec<u8> {
    Builder::new(b'D')
        .int32(relation_oid)
        .byte(marker)
        .tuple(old)
        .build()
}

pub(crate) fn truncate(relation_oids: &[u32], options: u8) -> Vec<u8> {
    let mut builder = Builder::new(b'T')
        .int32(relation_oids.len() as u32)
        .byte(options);
    for &oid in relation_oids {
        builder = builder.int32(oid);
    }
    builder.build()
}

fn origin() -> Vec<u8> {
    Builder::new(b'O')
        .int64(0x1_0000_0042)
        .string("upstream")
        .build()
}

fn type_message() -> Vec<u8> {
    Builder::new(b'Y')
        .int32(16_385)
        .string("public")
        .string("mood")
        .build()
}

fn logical_message(flags: u8, content: &[u8]) -> Vec<u8> {
    Builder::new(b'M')
        .byte(flags)
        .int64(0x16B_3748)
        .string("rowhook")
        .int32(content.len() as u32)
        .raw(content)
        .build()
}

fn orders_relation() -> Vec<u8> {
    relation(
        16_400,
        "public",
        "orders",
        b'd',
        &[
            (1, "id", 23, -1),
            (0, "status", 25, -1),
            (0, "total", 1700, 655_366),
        ],
    )
}

/// One fixture of every message kind and shape.
fn all_fixtures() -> Vec<Vec<u8>> {
    let row = [Field::Text("42"), Field::Null, Field::Unchanged];
    let key = [Field::Text("42"), Field::Null, Field::Null];
    vec![
        begin(0x16B_3748, 817_207_200_123_456, 731),
        commit(0x16B_3748, 0x16B_3780, 817_207_200_123_456),
        origin(),
        orders_relation(),
        relation(1, "", "pg_thing", b'f', &[]),
        type_message(),
        insert(
            16_400,
            &[
                Field::Text("42"),
                Field::Text("paid"),
                Field::Binary(b"\x00\x01"),
            ],
        ),
        update(16_400, None, &row),
        update(16_400, Some((b'K', &key)), &row),
        update(16_400, Some((b'O', &row)), &row),
        delete(16_400, b'K', &key),
        delete(16_400, b'O', &row),
        truncate(&[16_400, 16_401], 3),
        logical_message(1, b"hello\0world"),
    ]
}

fn text(value: &str) -> ColumnValue {
    ColumnValue::Text(Bytes::copy_from_slice(value.as_bytes()))
}

#[test]
fn decodes_begin_and_commit() {
    assert_eq!(
        decode(&begin(0x16B_3748, 817_207_200_123_456, 731)),
        Ok(Message::Begin(Begin {
            final_lsn: Lsn(0x16B_3748),
            commit_timestamp: 817_207_200_123_456,
            xid: 731,
        }))
    );
    assert_eq!(
        decode(&commit(0x16B_3748, 0x16B_3780, -5)),
        Ok(Message::Commit(Commit {
            flags: 0,
            commit_lsn: Lsn(0x16B_3748),
            end_lsn: Lsn(0x16B_3780),
            commit_timestamp: -5,
        }))
    );
}

#[test]
fn decodes_origin_type_and_logical_messages() {
    assert_eq!(
        decode(&origin()),
        Ok(Message::Origin {
            commit_lsn: Lsn(0x1_0000_0042),
            name: "upstream".to_owned(),
        })
    );
    assert_eq!(
        decode(&type_message()),
        Ok(Message::Type {
            oid: 16_385,
            namespace: "public".to_owned(),
            name: "mood".to_owned(),
        })
    );
    assert_eq!(
        decode(&logical_message(1, b"hello\0world")),
        Ok(Message::Logical {
            transactional: true,
            lsn: Lsn(0x16B_3748),
            prefix: "rowhook".to_owned(),
            content: Bytes::from_static(b"hello\0world"),
        })
    );
    let Ok(Message::Logical { transactional, .. }) = decode(&logical_message(0, b"")) else {
        panic!("expected a logical message");
    };
    assert!(!transactional);
}

#[test]
fn decodes_relations() {
    let Ok(Message::Relation(orders)) = decode(&orders_relation()) else {
        panic!("expected a relation");
    };
    assert_eq!(orders.oid, 16_400);
    assert_eq!(orders.namespace, "public");
    assert_eq!(orders.name, "orders");
    assert_eq!(orders.replica_identity, ReplicaIdentity::Default);
    let names: Vec<&str> = orders
        .columns
        .iter()
        .map(|column| column.name.as_str())
        .collect();
    assert_eq!(names, ["id", "status", "total"]);
    let keys: Vec<bool> = orders.columns.iter().map(Column::is_key).collect();
    assert_eq!(keys, [true, false, false]);
    assert_eq!(orders.columns[2].type_oid, 1700);
    assert_eq!(orders.columns[2].type_modifier, 655_366);
    assert_eq!(orders.columns[0].type_modifier, -1);

    // An empty namespace is PostgreSQL's abbreviation of pg_catalog.
    let Ok(Message::Relation(catalog)) = decode(&relation(1, "", "pg_thing", b'f', &[])) else {
        panic!("expected a relation");
    };
    assert_eq!(catalog.namespace, "pg_catalog");
    assert_eq!(catalog.replica_identity, ReplicaIdentity::Full);
    assert!(catalog.columns.is_empty());
    for (byte, identity) in [
        (b'n', ReplicaIdentity::Nothing),
        (b'i', ReplicaIdentity::Index),
    ] {
        let Ok(Message::Relation(decoded)) = decode(&relation(2, "s", "t", byte, &[])) else {
            panic!("expected a relation");
        };
        assert_eq!(decoded.replica_identity, identity);
    }
}

#[test]
fn decodes_inserts_with_every_column_kind() {
    let message = insert(
        16_400,
        &[
            Field::Text("42"),
            Field::Null,
            Field::Unchanged,
            Field::Text(""),
            Field::Text("grüße"),
            Field::Binary(b"\x00\xFF"),
        ],
    );
    assert_eq!(
        decode(&message),
        Ok(Message::Insert {
            relation_oid: 16_400,
            new: Tuple(vec![
                text("42"),
                ColumnValue::Null,
                ColumnValue::UnchangedToast,
                text(""),
                text("grüße"),
                ColumnValue::Binary(Bytes::from_static(b"\x00\xFF")),
            ]),
        })
    );
}

#[test]
fn decodes_updates_with_and_without_old_tuples() {
    let new = [Field::Text("42"), Field::Text("paid")];
    let Ok(Message::Update {
        relation_oid,
        old,
        new: decoded,
    }) = decode(&update(7, None, &new))
    else {
        panic!("expected an update");
    };
    assert_eq!((relation_oid, old), (7, None));
    assert_eq!(decoded, Tuple(vec![text("42"), text("paid")]));

    let key = [Field::Text("41"), Field::Null];
    let Ok(Message::Update { old, .. }) = decode(&update(7, Some((b'K', &key)), &new)) else {
        panic!("expected an update");
    };
    assert_eq!(
        old,
        Some(OldTuple {
            kind: OldTupleKind::Key,
            tuple: Tuple(vec![text("41"), ColumnValue::Null]),
        })
    );

    let full = [Field::Text("42"), Field::Text("new")];
    let Ok(Message::Update { old, .. }) = decode(&update(7, Some((b'O', &full)), &new)) else {
        panic!("expected an update");
    };
    assert_eq!(
        old,
        Some(OldTuple {
            kind: OldTupleKind::Full,
            tuple: Tuple(vec![text("42"), text("new")]),
        })
    );
}

#[test]
fn decodes_deletes_and_truncates() {
    assert_eq!(
        decode(&delete(9, b'K', &[Field::Text("1"), Field::Null])),
        Ok(Message::Delete {
            relation_oid: 9,
            old: OldTuple {
                kind: OldTupleKind::Key,
                tuple: Tuple(vec![text("1"), ColumnValue::Null]),
            },
        })
    );
    let Ok(Message::Delete { old, .. }) = decode(&delete(9, b'O', &[Field::Text("1")])) else {
        panic!("expected a delete");
    };
    assert_eq!(old.kind, OldTupleKind::Full);

    assert_eq!(
        decode(&truncate(&[16_400, 16_401], 2)),
        Ok(Message::Truncate {
            cascade: false,
            restart_identity: true,
            relation_oids: vec![16_400, 16_401],
        })
    );
    let Ok(Message::Truncate {
        cascade,
        restart_identity,
        ..
    }) = decode(&truncate(&[1], 1))
    else {
        panic!("expected a truncate");
    };
    assert!(cascade && !restart_identity);
}

#[test]
fn column_values_share_the_message_buffer() {
    let message = Bytes::from(insert(1, &[Field::Text("a fairly long value")]));
    let Ok(Message::Insert { new, .. }) = decode_bytes(message.clone()) else {
        panic!("expected an insert");
    };
    let ColumnValue::Text(value) = &new.0[0] else {
        panic!("expected text");
    };
    let start = message.as_ptr() as usize;
    let value_start = value.as_ptr() as usize;
    assert!(value_start > start && value_start < start + message.len());
}

#[test]
fn rejects_malformed_messages_with_typed_errors() {
    assert_eq!(decode(b""), Err(DecodeError::Empty));
    assert_eq!(
        decode(b"S\0\0\0\x01\x01"),
        Err(DecodeError::UnknownMessageType(b'S'))
    );

    let insert_without_marker = Builder::new(b'I').int32(1).byte(b'K').tuple(&[]).build();
    assert_eq!(
        decode(&insert_without_marker),
        Err(DecodeError::Unexpected {
            at: Location {
                message: "Insert",
                field: "tuple marker",
                offset: 5
            },
            expected: "'N'",
            found: b'K',
        })
    );
    let update_with_bad_marker = Builder::new(b'U').int32(1).byte(b'X').build();
    assert_eq!(
        decode(&update_with_bad_marker),
        Err(DecodeError::Unexpected {
            at: Location {
                message: "Update",
                field: "tuple marker",
                offset: 5
            },
            expected: "'K', 'O' or 'N'",
            found: b'X',
        })
    );
    let update_without_new = Builder::new(b'U')
        .int32(1)
        .byte(b'K')
        .tuple(&[])
        .byte(b'K')
        .build();
    assert_eq!(
        decode(&update_without_new),
        Err(DecodeError::Unexpected {
            at: Location {
                message: "Update",
                field: "tuple marker",
                offset: 8
            },
            expected: "'N'",
            found: b'K',
        })
    );
    let delete_with_new = Builder::new(b'D').int32(1).byte(b'N').tuple(&[]).build();
    assert_eq!(
        decode(&delete_with_new),
        Err(DecodeError::Unexpected {
            at: Location {
                message: "Delete",
                field: "tuple marker",
                offset: 5
            },
            expected: "'K' or 'O'",
            found: b'N',
        })
    );

    let bad_kind = Builder::new(b'I')
        .int32(1)
        .byte(b'N')
        .int16(1)
        .byte(b'x')
        .build();
    assert_eq!(
        decode(&bad_kind),
        Err(DecodeError::Unexpected {
            at: Location {
                message: "Insert",
                field: "column kind",
                offset: 8
            },
            expected: "'n', 'u', 't' or 'b'",
            found: b'x',
        })
    );
    let negative = Builder::new(b'I')
        .int32(1)
        .byte(b'N')
        .int16(1)
        .byte(b't')
        .int32(u32::MAX)
        .build();
    assert_eq!(
        decode(&negative),
        Err(DecodeError::Negative {
            at: Location {
                message: "Insert",
                field: "text value length",
                offset: 9
            },
            value: -1,
        })
    );
    let unterminated = Builder::new(b'Y').int32(1).raw(b"public").build();
    assert_eq!(
        decode(&unterminated),
        Err(DecodeError::UnterminatedString(Location {
            message: "Type",
            field: "namespace",
            offset: 5,
        }))
    );
    let invalid_utf8 = Builder::new(b'O').int64(1).raw(b"\xFF\xFE").byte(0).build();
    assert_eq!(
        decode(&invalid_utf8),
        Err(DecodeError::InvalidUtf8(Location {
            message: "Origin",
            field: "origin name",
            offset: 9,
        }))
    );
    assert!(matches!(
        decode(&relation(1, "s", "t", b'x', &[])),
        Err(DecodeError::Unexpected {
            at: Location {
                field: "replica identity",
                ..
            },
            found: b'x',
            ..
        })
    ));
    let mut trailing = begin(1, 2, 3);
    trailing.push(0);
    assert_eq!(
        decode(&trailing),
        Err(DecodeError::TrailingBytes {
            message: "Begin",
            offset: 21,
            count: 1
        })
    );
}

#[test]
fn errors_read_well() {
    let error = decode(&begin(1, 2, 3)[..5]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "pgoutput Begin message, final LSN at byte 1: truncated, needs 8 bytes, 4 left"
    );
    let error = decode(&Builder::new(b'D').int32(1).byte(b'N').build()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "pgoutput Delete message, tuple marker at byte 5: expected 'K' or 'O', found 'N'"
    );
    assert_eq!(
        DecodeError::UnknownMessageType(0).to_string(),
        "unknown pgoutput message type 0x00"
    );
}

#[test]
fn every_truncated_prefix_of_every_fixture_is_an_error() {
    for fixture in all_fixtures() {
        assert!(decode(&fixture).is_ok(), "fixture {fixture:?} must decode");
        for length in 0..fixture.len() {
            let prefix = &fixture[..length];
            assert!(decode(prefix).is_err(), "prefix {prefix:?} decoded");
        }
    }
}

#[test]
fn huge_counts_fail_without_huge_allocations() {
    let truncate = Builder::new(b'T').int32(i32::MAX as u32).byte(0).build();
    assert!(matches!(
        decode(&truncate),
        Err(DecodeError::Truncated { .. })
    ));
    let negative = Builder::new(b'T').int32(u32::MAX).byte(0).build();
    assert!(matches!(
        decode(&negative),
        Err(DecodeError::Negative { value: -1, .. })
    ));
    let columns = Builder::new(b'I')
        .int32(1)
        .byte(b'N')
        .int16(u16::MAX)
        .build();
    assert!(matches!(
        decode(&columns),
        Err(DecodeError::Truncated { .. })
    ));
    let content = Builder::new(b'M')
        .byte(0)
        .int64(0)
        .string("p")
        .int32(i32::MAX as u32)
        .build();
    assert!(matches!(
        decode(&content),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn garbage_and_mutated_fixtures_never_panic() {
    let mut garbage = Random::new(0x5EED);
    let tags = b"BCORYIUDTMSxn\0";
    for _ in 0..20_000 {
        let length = garbage.below(64);
        let mut message: Vec<u8> = (0..length).map(|_| garbage.next() as u8).collect();
        if let Some(first) = message.first_mut() {
            *first = tags[garbage.below(tags.len())];
        }
        let _ = decode(&message);
    }
    let fixtures = all_fixtures();
    for _ in 0..20_000 {
        let mut message = fixtures[garbage.below(fixtures.len())].clone();
        for _ in 0..=garbage.below(3) {
            let index = garbage.below(message.len());
            message[index] = garbage.next() as u8;
        }
        let _ = decode(&message);
    }
}
