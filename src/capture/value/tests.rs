use serde_json::json;

use super::type_oid::*;
use super::*;

fn string(text: &str) -> Value {
    Value::String(text.to_owned())
}

#[test]
fn integers_become_json_integers() {
    assert_eq!(to_json(INT2, "-32768"), json!(-32768));
    assert_eq!(to_json(INT4, "42"), json!(42));
    assert_eq!(to_json(INT8, "9223372036854775807"), json!(i64::MAX));
    assert_eq!(to_json(INT8, "-9223372036854775808"), json!(i64::MIN));
    assert_eq!(to_json(OID, "4294967295"), json!(u32::MAX));
    // Not an integer after all: kept as text rather than lost.
    assert_eq!(to_json(INT4, "forty-two"), string("forty-two"));
}

#[test]
fn floats_become_numbers_except_the_special_values() {
    assert_eq!(to_json(FLOAT8, "1.5"), json!(1.5));
    assert_eq!(to_json(FLOAT8, "1e+20"), json!(1e20));
    assert_eq!(
        to_json(FLOAT8, "-1.2345678901234567e-300"),
        json!(-1.2345678901234567e-300)
    );
    // float4's shortest decimal form survives: no widening artefacts.
    assert_eq!(to_json(FLOAT4, "0.1").to_string(), "0.1");
    assert_eq!(to_json(FLOAT4, "3.4028235e+38"), json!(3.4028235e38));
    for special in ["NaN", "Infinity", "-Infinity"] {
        assert_eq!(to_json(FLOAT4, special), string(special));
        assert_eq!(to_json(FLOAT8, special), string(special));
    }
}

#[test]
fn numeric_stays_a_string() {
    for text in [
        "99.90",
        "12345678901234567890.123456789",
        "-0.000001",
        "NaN",
        "Infinity",
        "-Infinity",
    ] {
        assert_eq!(to_json(NUMERIC, text), string(text));
    }
}

#[test]
fn booleans() {
    assert_eq!(to_json(BOOL, "t"), json!(true));
    assert_eq!(to_json(BOOL, "f"), json!(false));
    assert_eq!(to_json(BOOL, "maybe"), string("maybe"));
}

#[test]
fn text_like_and_unknown_types_stay_text() {
    for oid in [
        TEXT, VARCHAR, BPCHAR, NAME, CHAR, UUID, DATE, TIME, INTERVAL, BYTEA, 790, 869, 16_385,
    ] {
        assert_eq!(to_json(oid, "a  b "), string("a  b "), "type {oid}");
    }
    assert_eq!(
        to_json(UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        string("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    );
    assert_eq!(to_json(DATE, "2026-11-22"), string("2026-11-22"));
    assert_eq!(to_json(DATE, "0044-03-15 BC"), string("0044-03-15 BC"));
    assert_eq!(to_json(DATE, "-infinity"), string("-infinity"));
    assert_eq!(to_json(TIME, "24:00:00"), string("24:00:00"));
    assert_eq!(
        to_json(INTERVAL, "P1Y2M3DT4H5M6.5S"),
        string("P1Y2M3DT4H5M6.5S")
    );
    assert_eq!(to_json(BYTEA, "\\x00ff"), string("\\x00ff"));
}

#[test]
fn json_is_embedded_in_its_own_key_order() {
    let value = to_json(JSONB, r#"{"b": 1, "a": [1, 2.5, "x"], "c": {"d": null}}"#);
    assert_eq!(
        value.to_string(),
        r#"{"b":1,"a":[1,2.5,"x"],"c":{"d":null}}"#
    );
    assert_eq!(to_json(JSON, " [true] "), json!([true]));
    assert_eq!(to_json(JSON, "\"text\""), json!("text"));
    assert_eq!(to_json(JSON, "{not json"), string("{not json"));
}

#[test]
fn timestamps_with_time_zone_become_rfc3339() {
    let cases = [
        (
            "2026-11-22 10:00:00.123456+00",
            "2026-11-22T10:00:00.123456Z",
        ),
        ("2026-11-22 10:00:00+00", "2026-11-22T10:00:00Z"),
        ("2026-11-22 10:00:00.5+05:30", "2026-11-22T10:00:00.5+05:30"),
        ("2026-11-22 10:00:00+02", "2026-11-22T10:00:00+02:00"),
        ("2026-11-22 10:00:00-08", "2026-11-22T10:00:00-08:00"),
        ("2026-11-22 10:00:00-00:30", "2026-11-22T10:00:00-00:30"),
    ];
    for (text, expected) in cases {
        assert_eq!(to_json(TIMESTAMPTZ, text), string(expected), "{text}");
    }
    // No RFC 3339 form: kept as text.
    for text in [
        "infinity",
        "-infinity",
        "0044-03-15 10:00:00+00 BC",
        "12026-11-22 10:00:00+00",
        "1890-01-01 00:00:00+00:53:28",
        "2026-11-22 10:00:00",
        "2026-11-22 10:00:00.+00",
        "2026-11-22T10:00:00+00",
        "2026-11-22 10:00:00+0",
    ] {
        assert_eq!(to_json(TIMESTAMPTZ, text), string(text), "{text}");
    }
}

#[test]
fn timestamps_without_time_zone_get_no_offset() {
    assert_eq!(
        to_json(TIMESTAMP, "2026-11-22 10:00:00.5"),
        string("2026-11-22T10:00:00.5")
    );
    assert_eq!(
        to_json(TIMESTAMP, "2026-11-22 10:00:00"),
        string("2026-11-22T10:00:00")
    );
    for text in [
        "infinity",
        "0044-03-15 10:00:00 BC",
        "2026-11-22 10:00:00+00",
        "2026-11-22",
    ] {
        assert_eq!(to_json(TIMESTAMP, text), string(text), "{text}");
    }
}

#[test]
fn times_with_time_zone_get_full_offsets() {
    assert_eq!(to_json(TIMETZ, "10:00:00+02"), string("10:00:00+02:00"));
    assert_eq!(
        to_json(TIMETZ, "10:00:00.25-03:30"),
        string("10:00:00.25-03:30")
    );
    assert_eq!(to_json(TIMETZ, "10:00:00+00"), string("10:00:00Z"));
    assert_eq!(to_json(TIMETZ, "10:00:00"), string("10:00:00"));
}

#[test]
fn arrays_become_arrays_of_converted_elements() {
    assert_eq!(to_json(INT4_ARRAY, "{1,2,NULL}"), json!([1, 2, null]));
    assert_eq!(to_json(INT8_ARRAY, "{}"), json!([]));
    assert_eq!(to_json(INT2_ARRAY, "{ 1 , 2 }"), json!([1, 2]));
    assert_eq!(to_json(OID_ARRAY, "{26}"), json!([26]));
    assert_eq!(
        to_json(BOOL_ARRAY, "{t,f,null}"),
        json!([true, false, null])
    );
    assert_eq!(
        to_json(
            TEXT_ARRAY,
            r#"{a,"b,c",NULL,"NULL","with \"quote\" and \\ backslash",""}"#
        ),
        json!([
            "a",
            "b,c",
            null,
            "NULL",
            "with \"quote\" and \\ backslash",
            ""
        ])
    );
    assert_eq!(
        to_json(VARCHAR_ARRAY, r#"{grüße,"ü\"x",\NULL}"#),
        json!(["grüße", "ü\"x", "NULL"])
    );
    assert_eq!(to_json(BPCHAR_ARRAY, r#"{"a  ",b}"#), json!(["a  ", "b"]));
    assert_eq!(to_json(NAME_ARRAY, "{pg_catalog}"), json!(["pg_catalog"]));
    assert_eq!(to_json(CHAR_ARRAY, r#"{a,"\""}"#), json!(["a", "\""]));
    assert_eq!(
        to_json(FLOAT8_ARRAY, "{1.5,NaN,-Infinity}"),
        json!([1.5, "NaN", "-Infinity"])
    );
    assert_eq!(to_json(FLOAT4_ARRAY, "{0.1}").to_string(), "[0.1]");
    assert_eq!(to_json(NUMERIC_ARRAY, "{1.50,NaN}"), json!(["1.50", "NaN"]));
    assert_eq!(
        to_json(JSONB_ARRAY, r#"{"{\"a\": 1}","[1, 2]",NULL}"#),
        json!([{"a": 1}, [1, 2], null])
    );
    assert_eq!(to_json(JSON_ARRAY, r#"{"\"s\"",5}"#), json!(["s", 5]));
    assert_eq!(
        to_json(UUID_ARRAY, "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}"),
        json!(["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"])
    );
    assert_eq!(
        to_json(DATE_ARRAY, "{2026-11-22,infinity}"),
        json!(["2026-11-22", "infinity"])
    );
    assert_eq!(
        to_json(
            TIMESTAMPTZ_ARRAY,
            r#"{"2026-11-22 10:00:00+00","2026-11-22 12:00:00.5+02",infinity}"#
        ),
        json!([
            "2026-11-22T10:00:00Z",
            "2026-11-22T12:00:00.5+02:00",
            "infinity"
        ])
    );
    assert_eq!(
        to_json(TIMESTAMP_ARRAY, r#"{"2026-11-22 10:00:00"}"#),
        json!(["2026-11-22T10:00:00"])
    );
    assert_eq!(to_json(TIME_ARRAY, "{10:00:00}"), json!(["10:00:00"]));
    assert_eq!(
        to_json(TIMETZ_ARRAY, "{10:00:00+02}"),
        json!(["10:00:00+02:00"])
    );
    assert_eq!(
        to_json(INTERVAL_ARRAY, "{P1D,PT1H}"),
        json!(["P1D", "PT1H"])
    );
    assert_eq!(
        to_json(BYTEA_ARRAY, r#"{"\\x01ff","\\x"}"#),
        json!(["\\x01ff", "\\x"])
    );
}

#[test]
fn array_bounds_and_dimensions() {
    assert_eq!(to_json(INT4_ARRAY, "[0:2]={1,2,3}"), json!([1, 2, 3]));
    assert_eq!(to_json(INT4_ARRAY, "[-1:0]={1,2}"), json!([1, 2]));
    assert_eq!(
        to_json(INT4_ARRAY, "{{1,2},{3,4}}"),
        json!([[1, 2], [3, 4]])
    );
    assert_eq!(
        to_json(TEXT_ARRAY, "[1:2][0:0]={{a},{\"b}\"}}"),
        json!([["a"], ["b}"]])
    );
    assert_eq!(
        to_json(INT4_ARRAY, "{{{1}},{{NULL}}}"),
        json!([[[1]], [[null]]])
    );
}

// Found by the `notify_record` fuzz target: 8,193 nested braces in an outbox row's column
// list overflowed the stack of the recursive array parser.
#[test]
fn arrays_nested_deeper_than_postgresql_allows_keep_their_text() {
    let six = "{{{{{{1}}}}}}";
    assert_eq!(to_json(INT4_ARRAY, six), json!([[[[[[1]]]]]]));
    for depth in [7, 100_000] {
        let text = format!("{}1{}", "{".repeat(depth), "}".repeat(depth));
        assert_eq!(
            to_json(INT4_ARRAY, &text),
            string(&text),
            "{depth} dimensions"
        );
    }
}

#[test]
fn malformed_and_unknown_arrays_keep_their_text() {
    for text in [
        "{1,2",
        "{1,{2}}",
        "{{1},2}",
        "{1}x",
        "{,}",
        "{1,}",
        "{\"a}",
        "{a\"b\"}",
        "{\"a\"b}",
        "1,2",
        "",
        "[1:2]{1,2}",
        "[x]={1}",
        "{\\",
    ] {
        assert_eq!(to_json(INT4_ARRAY, text), string(text), "{text:?}");
    }
    // An unknown array type (inet[] here) is unknown: its text is kept whole.
    assert_eq!(to_json(1041, "{10.0.0.1,::1}"), string("{10.0.0.1,::1}"));
}

#[test]
fn bytes_are_read_as_utf8_with_replacement() {
    let catalog = TypeCatalog::default();
    let bytes_to_json = |type_oid, bytes| catalog.bytes_to_json(type_oid, bytes);
    assert_eq!(bytes_to_json(INT4, b"7"), json!(7));
    assert_eq!(bytes_to_json(TEXT, "grüße".as_bytes()), string("grüße"));
    assert_eq!(bytes_to_json(TEXT, b"a\xFFb"), string("a\u{FFFD}b"));
}

#[test]
fn array_element_types_match_pg_type() {
    let pairs = [
        (1000, 16),
        (1001, 17),
        (1002, 18),
        (1003, 19),
        (1005, 21),
        (1007, 23),
        (1009, 25),
        (1014, 1042),
        (1015, 1043),
        (1016, 20),
        (1021, 700),
        (1022, 701),
        (1028, 26),
        (1115, 1114),
        (1182, 1082),
        (1183, 1083),
        (1185, 1184),
        (1187, 1186),
        (1231, 1700),
        (1270, 1266),
        (199, 114),
        (3807, 3802),
        (2951, 2950),
    ];
    for (array, element) in pairs {
        assert_eq!(
            array_element_type(array),
            Some(element),
            "array type {array}"
        );
    }
    assert_eq!(array_element_type(INT4), None);
    assert_eq!(array_element_type(1041), None);
}

#[test]
fn odd_text_never_panics() {
    // Pieces that steer the parsers into their corners, multi-byte characters included.
    let pieces = [
        "{",
        "}",
        "\"",
        "\\",
        ",",
        "NULL",
        " ",
        "1",
        "-",
        ":",
        ".",
        "+",
        "é",
        "€",
        "[",
        "]",
        "=",
        "2026-11-22",
        " 10:00:00",
        "+02",
        ":30",
        "t",
        "",
    ];
    let oids: Vec<u32> = [
        INT4,
        FLOAT8,
        BOOL,
        JSONB,
        TIMESTAMPTZ,
        TIMESTAMP,
        TIMETZ,
        TEXT,
    ]
    .into_iter()
    .chain((0..2000).filter(|&oid| array_element_type(oid).is_some()))
    .chain([3807, 2951])
    .collect();
    let mut state: u64 = 0x0DD_7E57;
    let mut next = |bound: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize % bound
    };
    for _ in 0..50_000 {
        let text: String = (0..next(12)).map(|_| pieces[next(pieces.len())]).collect();
        let _ = to_json(oids[next(oids.len())], &text);
    }
    assert_eq!(
        to_json(TIMESTAMPTZ, "2026-11-22 10:00:00+é"),
        string("2026-11-22 10:00:00+é")
    );
    assert_eq!(to_json(TIMETZ, "10:00:00+€"), string("10:00:00+€"));
}
