//! Every supported column type round-trips from an INSERT to the JSON of CONTRACT §4,
//! read through `rowhook tail` from a real replication slot.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Tail, TestDatabase, rowhook, text};

const MODELS: &str = "[models.thing]\ntable = \"things\"\n";

#[tokio::test]
async fn every_type_round_trips_to_json() {
    let database = TestDatabase::create().await;
    database
        .execute(
            "CREATE TYPE mood AS ENUM ('happy', 'sad');
             CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
             CREATE TABLE things (
                id bigint PRIMARY KEY,
                small smallint, regular integer, big bigint,
                real_value real, double_value double precision,
                not_a_number double precision, infinite double precision,
                price numeric(30, 10), huge numeric,
                flag boolean,
                name text, code varchar(10), fixed char(3),
                document json, binary_document jsonb,
                identifier uuid,
                day date, moment timestamptz, local_moment timestamp,
                clock time, clock_zone timetz, forever timestamptz,
                duration interval,
                raw bytea,
                numbers integer[], words text[], prices numeric[], empty_list integer[],
                flags boolean[], moments timestamptz[], documents jsonb[],
                feeling mood, amount positive, nothing text
             );",
        )
        .await;
    let config = database.write_config(MODELS);
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let tail = Tail::start(&database, &config).await;

    database
        .execute(
            r#"INSERT INTO things VALUES (
                1, -32768, 2147483647, 9223372036854775807,
                1.5, 0.1, 'NaN', '-Infinity',
                '12345678901234567890.0123456789', 1e40,
                true,
                'héllo "quoted"', 'abc', 'ab',
                '{"a": [1, 2]}', '{"b": {"c": null}}',
                'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
                '2026-11-22', '2026-11-22 10:00:00.123456+02', '2026-11-22 10:00:00.5',
                '10:00:00', '10:00:00+02', 'infinity',
                '1 year 2 months 3 days 04:05:06',
                '\xdeadbeef',
                '{1,NULL,3}', '{"a,b","NULL",NULL,"with \"quote\" and \\ backslash"}',
                '{1.10,2.20}', '{}',
                '{t,f}', '{"2026-11-22 10:00:00+00"}', ARRAY['{"k": 1}'::jsonb],
                'happy', 5, NULL
            )"#,
        )
        .await;

    let event = tail.next_json(Duration::from_secs(30));
    let expected_item = json!({
        "id": 1, "small": -32768, "regular": 2147483647, "big": 9223372036854775807_i64,
        "real_value": 1.5, "double_value": 0.1,
        "not_a_number": "NaN", "infinite": "-Infinity",
        "price": "12345678901234567890.0123456789",
        "huge": "10000000000000000000000000000000000000000",
        "flag": true,
        "name": "héllo \"quoted\"", "code": "abc", "fixed": "ab ",
        "document": {"a": [1, 2]}, "binary_document": {"b": {"c": null}},
        "identifier": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "day": "2026-11-22", "moment": "2026-11-22T08:00:00.123456Z",
        "local_moment": "2026-11-22T10:00:00.5",
        "clock": "10:00:00", "clock_zone": "10:00:00+02:00", "forever": "infinity",
        "duration": "P1Y2M3DT4H5M6S",
        "raw": "\\xdeadbeef",
        "numbers": [1, null, 3],
        "words": ["a,b", "NULL", null, "with \"quote\" and \\ backslash"],
        "prices": ["1.10", "2.20"], "empty_list": [],
        "flags": [true, false], "moments": ["2026-11-22T10:00:00Z"], "documents": [{"k": 1}],
        "feeling": "happy", "amount": 5, "nothing": null
    });
    assert_eq!(event["item"], expected_item);
    // The column order of the table is kept.
    let keys: Vec<&String> = event["item"].as_object().unwrap().keys().collect();
    assert_eq!(keys.first().map(|key| key.as_str()), Some("id"));
    assert_eq!(keys.last().map(|key| key.as_str()), Some("nothing"));

    assert_eq!(event["type"], "thing.created");
    assert_eq!(event["model"], "thing");
    assert_eq!(event["action"], "create");
    assert_eq!(event["table"], "public.things");
    assert_eq!(event["old"], serde_json::Value::Null);
    assert_eq!(event["changed"], serde_json::Value::Null);
    assert!(event.get("id").is_none(), "tail prints no event id");
    let lsn = event["lsn"].as_str().unwrap();
    assert!(lsn.contains('/'), "lsn in PostgreSQL notation: {lsn}");
    let timestamp = event["timestamp"].as_str().unwrap();
    assert_eq!(
        timestamp.len(),
        "2026-11-22T10:00:00.123456Z".len(),
        "{timestamp}"
    );
    assert!(timestamp.ends_with('Z'));
}
