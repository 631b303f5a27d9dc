use serde_json::json;

use super::*;
use crate::capture::replication::pgoutput::tests::{
    Builder, Field, begin, commit, delete, insert, relation, truncate, update,
};
use crate::capture::value::type_oid::{INT4, JSONB, NUMERIC, TEXT};
use crate::fuzz::Random;
use crate::postgres::TypeShape;

const ORDERS: u32 = 16_400;
const COMMIT_LSN: u64 = 0x16B_3748;
const END_LSN: u64 = 0x16B_3780;
/// 2026-11-22T10:00:00.123456Z in microseconds since 2000-01-01.
const COMMIT_TIMESTAMP: i64 = 848_656_800_123_456;
const COMMIT_TIME_UNIX: i64 = 1_795_341_600_123_456;

fn orders_relation(identity: u8) -> Vec<u8> {
    relation(
        ORDERS,
        "public",
        "orders",
        identity,
        &[
            (1, "id", INT4, -1),
            (0, "status", TEXT, -1),
            (0, "total", NUMERIC, 655_366),
            (0, "items", JSONB, -1),
            (0, "note", TEXT, -1),
        ],
    )
}

/// A decoder that knows `public.orders` and is inside a transaction.
fn decoder_in_transaction() -> ChangeDecoder {
    let mut decoder = ChangeDecoder::new();
    assert!(matches!(
        decoder.decode(Lsn(1), &orders_relation(b'd')),
        Ok(Decoded::Described { user_types }) if user_types.is_empty()
    ));
    decoder
        .decode(Lsn(2), &begin(COMMIT_LSN, COMMIT_TIMESTAMP, 731))
        .expect("begin decodes");
    decoder
}

fn expect_change(decoded: Result<Decoded, DecodeError>) -> Change {
    match decoded {
        Ok(Decoded::Change(change)) => change,
        other => panic!("expected a change, got {other:?}"),
    }
}

fn row(value: serde_json::Value) -> Row {
    match value {
        serde_json::Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

const PAID: [Field<'static>; 5] = [
    Field::Text("42"),
    Field::Text("paid"),
    Field::Text("99.90"),
    Field::Text(r#"{"sku": "A1"}"#),
    Field::Null,
];

#[test]
fn begin_reports_the_commit_position_and_unix_time() {
    let mut decoder = ChangeDecoder::new();
    let decoded = decoder.decode(Lsn(5), &begin(COMMIT_LSN, COMMIT_TIMESTAMP, 731));
    assert_eq!(
        decoded.expect("begin decodes"),
        Decoded::Begin {
            commit_lsn: Lsn(COMMIT_LSN),
            commit_time_micros: COMMIT_TIME_UNIX,
        }
    );
    assert_eq!(
        crate::time::rfc3339_from_unix_micros(COMMIT_TIME_UNIX),
        "2026-11-22T10:00:00.123456Z"
    );
}

#[test]
fn inserts_carry_every_column_typed_in_order() {
    let mut decoder = decoder_in_transaction();
    let change = expect_change(decoder.decode(Lsn(0x16B_3700), &insert(ORDERS, &PAID)));
    assert_eq!(change.action, Action::Create);
    assert_eq!(change.table, TableName::new("public", "orders"));
    assert_eq!(
        serde_json::to_string(&change.item).expect("serializes"),
        r#"{"id":42,"status":"paid","total":"99.90","items":{"sku":"A1"},"note":null}"#
    );
    assert_eq!((change.old, change.changed), (None, None));
    assert_eq!(change.lsn, Lsn(0x16B_3700));
    assert_eq!(
        change.position,
        Position {
            transaction: COMMIT_LSN,
            sequence: 0
        }
    );
    assert_eq!(change.commit_time_micros, COMMIT_TIME_UNIX);
}

#[test]
fn transactions_number_their_changes_and_end_at_commit() {
    let mut decoder = decoder_in_transaction();
    for sequence in 0..3 {
        let change = expect_change(decoder.decode(Lsn(10), &insert(ORDERS, &PAID)));
        assert_eq!(change.position.sequence, sequence);
    }
    // Truncates and other messages take no sequence number.
    assert!(matches!(
        decoder.decode(Lsn(11), &truncate(&[ORDERS], 0)),
        Ok(Decoded::Truncate { .. })
    ));
    let change = expect_change(decoder.decode(Lsn(12), &delete(ORDERS, b'K', &PAID)));
    assert_eq!(change.position.sequence, 3);
    assert_eq!(
        decoder
            .decode(Lsn(13), &commit(COMMIT_LSN, END_LSN, COMMIT_TIMESTAMP))
            .expect("commit decodes"),
        Decoded::Commit {
            commit_lsn: Lsn(COMMIT_LSN),
            end_lsn: Lsn(END_LSN)
        }
    );
    // A change after Commit and before the next Begin is out of place.
    assert!(matches!(
        decoder.decode(Lsn(14), &insert(ORDERS, &PAID)),
        Err(DecodeError::OutsideTransaction { message: "Insert" })
    ));
    // The next transaction starts again at 0 with its own position.
    decoder
        .decode(Lsn(15), &begin(0x200_0000, 1, 732))
        .expect("begin decodes");
    let change = expect_change(decoder.decode(Lsn(16), &insert(ORDERS, &PAID)));
    assert_eq!(
        change.position,
        Position {
            transaction: 0x200_0000,
            sequence: 0
        }
    );
    assert_eq!(change.commit_time_micros, 946_684_800_000_001);
}

#[test]
fn full_updates_fill_unchanged_toast_from_old_and_list_changed_columns() {
    let mut decoder = decoder_in_transaction();
    let old = [
        Field::Text("42"),
        Field::Text("new"),
        Field::Text("99.90"),
        Field::Text(r#"{"sku": "A1"}"#),
        Field::Null,
    ];
    let new = [
        Field::Text("42"),
        Field::Text("paid"),
        Field::Text("99.90"),
        Field::Unchanged,
        Field::Text("gift"),
    ];
    let change = expect_change(decoder.decode(Lsn(20), &update(ORDERS, Some((b'O', &old)), &new)));
    assert_eq!(change.action, Action::Update);
    assert_eq!(
        change.item,
        row(
            json!({"id": 42, "status": "paid", "total": "99.90", "items": {"sku": "A1"}, "note": "gift"})
        )
    );
    assert_eq!(
        change.old,
        Some(row(
            json!({"id": 42, "status": "new", "total": "99.90", "items": {"sku": "A1"}, "note": null})
        ))
    );
    assert_eq!(
        change.changed,
        Some(vec!["status".to_owned(), "note".to_owned()])
    );

    // Setting a value to NULL is a change too; an identical row changes nothing.
    let cleared = [
        Field::Text("42"),
        Field::Null,
        Field::Text("99.90"),
        Field::Unchanged,
        Field::Null,
    ];
    let change =
        expect_change(decoder.decode(Lsn(21), &update(ORDERS, Some((b'O', &old)), &cleared)));
    assert_eq!(change.changed, Some(vec!["status".to_owned()]));
    let change = expect_change(decoder.decode(Lsn(22), &update(ORDERS, Some((b'O', &old)), &old)));
    assert_eq!(change.changed, Some(vec![]));
}

#[test]
fn key_updates_carry_the_old_key_only() {
    let mut decoder = decoder_in_transaction();
    let key = [
        Field::Text("41"),
        Field::Null,
        Field::Null,
        Field::Null,
        Field::Null,
    ];
    let new = [
        Field::Text("42"),
        Field::Text("paid"),
        Field::Text("99.90"),
        Field::Unchanged,
        Field::Null,
    ];
    let change = expect_change(decoder.decode(Lsn(30), &update(ORDERS, Some((b'K', &key)), &new)));
    assert_eq!(
        change.old,
        Some(row(
            json!({"id": 41, "status": null, "total": null, "items": null, "note": null})
        ))
    );
    // The K tuple's nulls are placeholders, not the old value of the TOASTed column.
    assert_eq!(
        change.item,
        row(
            json!({"id": 42, "status": "paid", "total": "99.90", "items": {"unchanged_toast": true}, "note": null})
        )
    );
    assert_eq!(change.changed, None);

    // A key column marked unchanged is known from the K tuple.
    let new = [
        Field::Unchanged,
        Field::Text("paid"),
        Field::Null,
        Field::Null,
        Field::Null,
    ];
    let change = expect_change(decoder.decode(Lsn(31), &update(ORDERS, Some((b'K', &key)), &new)));
    assert_eq!(change.item["id"], json!(41));
}

#[test]
fn updates_without_old_tuple_mark_unchanged_toast() {
    let mut decoder = decoder_in_transaction();
    let new = [
        Field::Text("42"),
        Field::Text("paid"),
        Field::Text("1"),
        Field::Unchanged,
        Field::Null,
    ];
    let change = expect_change(decoder.decode(Lsn(40), &update(ORDERS, None, &new)));
    assert_eq!(change.item["items"], json!({"unchanged_toast": true}));
    assert_eq!(change.item.len(), 5);
    assert_eq!((change.old, change.changed), (None, None));
}

#[test]
fn deletes_expose_the_old_row_as_item_and_old() {
    let mut decoder = decoder_in_transaction();
    let key = [
        Field::Text("42"),
        Field::Null,
        Field::Null,
        Field::Null,
        Field::Null,
    ];
    let change = expect_change(decoder.decode(Lsn(50), &delete(ORDERS, b'K', &key)));
    assert_eq!(change.action, Action::Delete);
    let expected =
        row(json!({"id": 42, "status": null, "total": null, "items": null, "note": null}));
    assert_eq!(change.item, expected);
    assert_eq!(change.old, Some(expected));
    assert_eq!(change.changed, None);

    let change = expect_change(decoder.decode(Lsn(51), &delete(ORDERS, b'O', &PAID)));
    assert_eq!(change.item["items"], json!({"sku": "A1"}));
    assert_eq!(change.old.as_ref(), Some(&change.item));
}

#[test]
fn user_defined_column_types_are_asked_for_and_then_convert() {
    const POSITIVE: u32 = 16_500;
    const PAIR: u32 = 16_501;
    let mut decoder = decoder_in_transaction();
    let described = relation(
        ORDERS,
        "public",
        "orders",
        b'd',
        &[
            (1, "id", INT4, -1),
            (0, "amount", POSITIVE, -1),
            (0, "pair", PAIR, -1),
        ],
    );
    let Ok(Decoded::Described { user_types }) = decoder.decode(Lsn(3), &described) else {
        panic!("a Relation message describes");
    };
    assert_eq!(user_types, BTreeSet::from([POSITIVE, PAIR]));
    decoder.types_mut().learn([
        (POSITIVE, TypeShape::Domain { base: INT4 }),
        (
            PAIR,
            TypeShape::Composite {
                fields: vec![("a".into(), INT4), ("b".into(), TEXT)],
            },
        ),
    ]);
    let change = expect_change(decoder.decode(
        Lsn(4),
        &insert(
            ORDERS,
            &[Field::Text("1"), Field::Text("5"), Field::Text("(7,seven)")],
        ),
    ));
    assert_eq!(
        serde_json::Value::Object(change.item),
        json!({"id": 1, "amount": 5, "pair": {"a": 7, "b": "seven"}})
    );
}

#[test]
fn a_new_relation_message_replaces_the_cached_one() {
    let mut decoder = decoder_in_transaction();
    // ALTER TABLE orders RENAME TO purchases, DROP note, ADD paid_at.
    let altered = relation(
        ORDERS,
        "shop",
        "purchases",
        b'f',
        &[
            (1, "id", INT4, -1),
            (1, "status", TEXT, -1),
            (1, "paid_at", 1184, -1),
        ],
    );
    assert!(matches!(
        decoder.decode(Lsn(60), &altered),
        Ok(Decoded::Described { user_types }) if user_types.is_empty()
    ));
    let change = expect_change(decoder.decode(
        Lsn(61),
        &insert(
            ORDERS,
            &[
                Field::Text("7"),
                Field::Text("paid"),
                Field::Text("2026-11-22 10:00:00+00"),
            ],
        ),
    ));
    assert_eq!(change.table, TableName::new("shop", "purchases"));
    assert_eq!(
        change.item,
        row(json!({"id": 7, "status": "paid", "paid_at": "2026-11-22T10:00:00Z"}))
    );
    // Tuples of the old shape no longer fit.
    assert!(matches!(
        decoder.decode(Lsn(62), &insert(ORDERS, &PAID)),
        Err(DecodeError::ColumnCountMismatch {
            message: "Insert",
            tuple: "new",
            expected: 3,
            found: 5,
            ..
        })
    ));
}

#[test]
fn truncates_name_their_tables() {
    let mut decoder = decoder_in_transaction();
    let other = relation(16_500, "public", "lines", b'd', &[(1, "id", INT4, -1)]);
    decoder.decode(Lsn(70), &other).expect("relation decodes");
    assert_eq!(
        decoder
            .decode(Lsn(71), &truncate(&[ORDERS, 16_500], 1))
            .expect("truncate decodes"),
        Decoded::Truncate {
            tables: vec![
                TableName::new("public", "orders"),
                TableName::new("public", "lines")
            ],
        }
    );
    assert!(matches!(
        decoder.decode(Lsn(72), &truncate(&[99], 0)),
        Err(DecodeError::UnknownRelation {
            message: "Truncate",
            relation_oid: 99
        })
    ));
}

#[test]
fn metadata_messages_decode_to_other() {
    let mut decoder = decoder_in_transaction();
    let origin = Builder::new(b'O').int64(1).string("upstream").build();
    let type_message = Builder::new(b'Y')
        .int32(16_385)
        .string("public")
        .string("mood")
        .build();
    let message = Builder::new(b'M')
        .byte(1)
        .int64(3)
        .string("p")
        .int32(1)
        .raw(b"x")
        .build();
    for bytes in [origin, type_message, message] {
        assert_eq!(
            decoder.decode(Lsn(80), &bytes).expect("decodes"),
            Decoded::Other
        );
    }
}

#[test]
fn binary_values_are_kept_as_hex_text() {
    let mut decoder = decoder_in_transaction();
    let new = [
        Field::Binary(b"\x00\x00\x00\x2A"),
        Field::Null,
        Field::Null,
        Field::Null,
        Field::Null,
    ];
    let change = expect_change(decoder.decode(Lsn(90), &insert(ORDERS, &new)));
    assert_eq!(change.item["id"], json!("\\x0000002a"));
}

#[test]
fn decode_bytes_matches_decode() {
    let mut copying = decoder_in_transaction();
    let mut sharing = decoder_in_transaction();
    let message = insert(ORDERS, &PAID);
    let copied = copying.decode(Lsn(95), &message).expect("decodes");
    let shared = sharing
        .decode_bytes(Lsn(95), bytes::Bytes::from(message))
        .expect("decodes");
    assert_eq!(copied, shared);
}

#[test]
fn out_of_place_messages_are_typed_errors() {
    let mut decoder = ChangeDecoder::new();
    decoder
        .decode(Lsn(1), &orders_relation(b'd'))
        .expect("relation decodes");
    for (message, name) in [
        (update(ORDERS, None, &PAID), "Update"),
        (delete(ORDERS, b'K', &PAID), "Delete"),
        (truncate(&[ORDERS], 0), "Truncate"),
        (commit(COMMIT_LSN, END_LSN, 0), "Commit"),
    ] {
        match decoder.decode(Lsn(2), &message) {
            Err(DecodeError::OutsideTransaction { message }) => assert_eq!(message, name),
            other => panic!("{name}: expected OutsideTransaction, got {other:?}"),
        }
    }
    decoder
        .decode(Lsn(3), &begin(COMMIT_LSN, 0, 1))
        .expect("begin decodes");
    assert!(matches!(
        decoder.decode(Lsn(4), &begin(0x999, 0, 2)),
        Err(DecodeError::BeginInsideTransaction {
            open: Lsn(COMMIT_LSN),
            new: Lsn(0x999)
        })
    ));
    assert!(matches!(
        decoder.decode(Lsn(5), &commit(0x999, END_LSN, 0)),
        Err(DecodeError::CommitMismatch {
            begin: Lsn(COMMIT_LSN),
            commit: Lsn(0x999)
        })
    ));

    // After a broken connection the transaction is sent again from its Begin.
    decoder
        .decode(Lsn(6), &begin(COMMIT_LSN, 0, 1))
        .expect("begin decodes");
    decoder.abandon_transaction();
    decoder
        .decode(Lsn(7), &begin(COMMIT_LSN, 0, 1))
        .expect("begin decodes after abandon");
}

#[test]
fn mismatched_tuples_and_unknown_relations_are_typed_errors() {
    let mut decoder = decoder_in_transaction();
    assert!(matches!(
        decoder.decode(Lsn(1), &insert(77, &PAID)),
        Err(DecodeError::UnknownRelation {
            message: "Insert",
            relation_oid: 77
        })
    ));
    let short = [Field::Text("42")];
    assert!(matches!(
        decoder.decode(Lsn(2), &update(ORDERS, Some((b'O', &short)), &PAID)),
        Err(DecodeError::ColumnCountMismatch {
            message: "Update",
            tuple: "old",
            expected: 5,
            found: 1,
            ..
        })
    ));
    assert!(matches!(
        decoder.decode(Lsn(3), &update(ORDERS, Some((b'K', &PAID)), &short)),
        Err(DecodeError::ColumnCountMismatch { tuple: "new", .. })
    ));
    let error = decoder
        .decode(Lsn(4), &delete(ORDERS, b'K', &short))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Delete on public.orders: the old key tuple has 1 columns, the relation has 5"
    );
    let error = decoder.decode(Lsn(5), &[b'I', 0]).unwrap_err();
    assert!(matches!(
        error,
        DecodeError::Message(pgoutput::DecodeError::Truncated { .. })
    ));
    assert_eq!(
        error.to_string(),
        "pgoutput Insert message, relation OID at byte 1: truncated, needs 4 bytes, 1 left"
    );
}

#[test]
fn garbage_never_panics_the_change_decoder() {
    let mut garbage = Random::new(0xDEC0DE);
    let fixtures = [
        insert(ORDERS, &PAID),
        update(ORDERS, Some((b'O', &PAID)), &PAID),
        update(ORDERS, Some((b'K', &PAID)), &PAID),
        delete(ORDERS, b'O', &PAID),
        orders_relation(b'f'),
        truncate(&[ORDERS], 0),
        begin(COMMIT_LSN, 0, 1),
        commit(COMMIT_LSN, END_LSN, 0),
    ];
    let mut decoder = decoder_in_transaction();
    for _ in 0..20_000 {
        let mut message = fixtures[garbage.below(fixtures.len())].clone();
        for _ in 0..garbage.below(3) {
            let index = garbage.below(message.len());
            message[index] = garbage.next() as u8;
        }
        let _ = decoder.decode(Lsn(garbage.next()), &message);
    }
}

#[test]
fn an_oversized_change_keeps_its_place_without_its_row() {
    let mut decoder = decoder_in_transaction();
    // Only the head of the message arrived: the action, the relation, a few tuple bytes.
    let mut head = vec![b'U'];
    head.extend_from_slice(&ORDERS.to_be_bytes());
    head.extend_from_slice(b"N\0\x05t");
    let Ok(Decoded::Oversized(oversized)) =
        decoder.decode_oversized(Lsn(3), &head, 100 << 20, 64 << 20)
    else {
        panic!("an oversized update");
    };
    assert_eq!(oversized.change.action, Action::Update);
    assert_eq!(oversized.change.table, TableName::new("public", "orders"));
    assert!(oversized.change.item.is_empty());
    assert_eq!(oversized.change.position.sequence, 0);
    assert_eq!((oversized.bytes, oversized.limit), (100 << 20, 64 << 20));
    // The next change of the transaction has the sequence it would have had.
    let next = expect_change(decoder.decode(Lsn(4), &insert(ORDERS, &PAID)));
    assert_eq!(next.position.sequence, 1);
    // Anything else that large is no row; a row message too short to name its relation
    // is an error, not a guess.
    assert_eq!(
        decoder.decode_oversized(Lsn(5), b"M\0", 1, 0).unwrap(),
        Decoded::Other
    );
    assert!(decoder.decode_oversized(Lsn(6), b"I\0", 1, 0).is_err());
}
