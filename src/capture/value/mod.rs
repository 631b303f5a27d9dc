//! A column's text value, as PostgreSQL's output function wrote it, to JSON by type OID.
//!
//! The text follows the sending session's settings, which rowhook pins for the walsender:
//! `DateStyle=ISO`, `TimeZone=UTC`, `IntervalStyle=iso_8601`, `extra_float_digits=3`,
//! `bytea_output=hex`. Under other settings values still convert, but dates and times
//! that do not have the ISO shape are kept as their text.
//!
//! Conversions never fail: whatever does not have the expected shape is kept as a JSON
//! string of the original text, so no value is lost or invented.
//!
//! | type | JSON |
//! |---|---|
//! | int2, int4, int8, oid | integer |
//! | float4, float8 | number; `NaN`, `Infinity`, `-Infinity` as strings |
//! | numeric | string (never a float, so no precision is lost) |
//! | bool | `true` / `false` |
//! | json, jsonb | the embedded value (the string when it does not parse) |
//! | timestamptz | RFC 3339: `2026-11-22T10:00:00.123456Z`, `…+05:30` |
//! | timestamp | `2026-11-22T10:00:00.5` (no offset invented) |
//! | timetz | `10:00:00+02:00`, `10:00:00Z` |
//! | arrays of the above (see [`array_element_type`]) | arrays, nested when multi-dimensional |
//! | domains ([`TypeCatalog`]) | as their base type |
//! | composite types ([`TypeCatalog`]) | objects of their fields, each converted by its type |
//! | arrays of domains or composites ([`TypeCatalog`]) | arrays of those |
//! | everything else: text, date, time, interval, bytea (`\x…`), uuid, enums, … | its text |
//!
//! Infinite and BC dates and timestamps keep their text, as RFC 3339 cannot express them.

use std::borrow::Cow;

use serde_json::{Number, Value};

mod array;
mod catalog;
mod record;

pub use catalog::TypeCatalog;
pub(crate) use record::{RecordError, parse_record};

/// Built-in type OIDs, from PostgreSQL's `pg_type.dat`.
pub(crate) mod type_oid {
    pub(crate) const BOOL: u32 = 16;
    pub(crate) const BYTEA: u32 = 17;
    pub(crate) const CHAR: u32 = 18;
    pub(crate) const NAME: u32 = 19;
    pub(crate) const INT8: u32 = 20;
    pub(crate) const INT2: u32 = 21;
    pub(crate) const INT4: u32 = 23;
    pub(crate) const TEXT: u32 = 25;
    pub(crate) const OID: u32 = 26;
    pub(crate) const JSON: u32 = 114;
    pub(crate) const FLOAT4: u32 = 700;
    pub(crate) const FLOAT8: u32 = 701;
    pub(crate) const BPCHAR: u32 = 1042;
    pub(crate) const VARCHAR: u32 = 1043;
    pub(crate) const DATE: u32 = 1082;
    pub(crate) const TIME: u32 = 1083;
    pub(crate) const TIMESTAMP: u32 = 1114;
    pub(crate) const TIMESTAMPTZ: u32 = 1184;
    pub(crate) const INTERVAL: u32 = 1186;
    pub(crate) const TIMETZ: u32 = 1266;
    pub(crate) const NUMERIC: u32 = 1700;
    pub(crate) const UUID: u32 = 2950;
    pub(crate) const JSONB: u32 = 3802;

    pub(crate) const JSON_ARRAY: u32 = 199;
    pub(crate) const BOOL_ARRAY: u32 = 1000;
    pub(crate) const BYTEA_ARRAY: u32 = 1001;
    pub(crate) const CHAR_ARRAY: u32 = 1002;
    pub(crate) const NAME_ARRAY: u32 = 1003;
    pub(crate) const INT2_ARRAY: u32 = 1005;
    pub(crate) const INT4_ARRAY: u32 = 1007;
    pub(crate) const TEXT_ARRAY: u32 = 1009;
    pub(crate) const BPCHAR_ARRAY: u32 = 1014;
    pub(crate) const VARCHAR_ARRAY: u32 = 1015;
    pub(crate) const INT8_ARRAY: u32 = 1016;
    pub(crate) const FLOAT4_ARRAY: u32 = 1021;
    pub(crate) const FLOAT8_ARRAY: u32 = 1022;
    pub(crate) const OID_ARRAY: u32 = 1028;
    pub(crate) const TIMESTAMP_ARRAY: u32 = 1115;
    pub(crate) const DATE_ARRAY: u32 = 1182;
    pub(crate) const TIME_ARRAY: u32 = 1183;
    pub(crate) const TIMESTAMPTZ_ARRAY: u32 = 1185;
    pub(crate) const INTERVAL_ARRAY: u32 = 1187;
    pub(crate) const NUMERIC_ARRAY: u32 = 1231;
    pub(crate) const TIMETZ_ARRAY: u32 = 1270;
    pub(crate) const UUID_ARRAY: u32 = 2951;
    pub(crate) const JSONB_ARRAY: u32 = 3807;
}

/// Converts a built-in type's text form to JSON (see the module table); user-defined
/// types need a [`TypeCatalog`].
pub fn to_json(type_oid: u32, text: &str) -> Value {
    TypeCatalog::default().to_json(type_oid, text)
}

/// The element type of the built-in array types converted element by element. Other
/// array types (and all user-defined ones) are unknown here and keep their text.
pub(crate) fn array_element_type(array_type_oid: u32) -> Option<u32> {
    use type_oid::*;
    Some(match array_type_oid {
        BOOL_ARRAY => BOOL,
        BYTEA_ARRAY => BYTEA,
        CHAR_ARRAY => CHAR,
        NAME_ARRAY => NAME,
        INT2_ARRAY => INT2,
        INT4_ARRAY => INT4,
        TEXT_ARRAY => TEXT,
        BPCHAR_ARRAY => BPCHAR,
        VARCHAR_ARRAY => VARCHAR,
        INT8_ARRAY => INT8,
        FLOAT4_ARRAY => FLOAT4,
        FLOAT8_ARRAY => FLOAT8,
        OID_ARRAY => OID,
        TIMESTAMP_ARRAY => TIMESTAMP,
        DATE_ARRAY => DATE,
        TIME_ARRAY => TIME,
        TIMESTAMPTZ_ARRAY => TIMESTAMPTZ,
        INTERVAL_ARRAY => INTERVAL,
        NUMERIC_ARRAY => NUMERIC,
        TIMETZ_ARRAY => TIMETZ,
        JSON_ARRAY => JSON,
        JSONB_ARRAY => JSONB,
        UUID_ARRAY => UUID,
        _ => return None,
    })
}

/// Takes the text by `Cow` so unescaped array elements move into the JSON string.
pub(super) fn scalar_to_json(type_oid: u32, text: Cow<'_, str>) -> Value {
    use type_oid::*;
    let converted = match type_oid {
        INT2 | INT4 | INT8 => text.parse::<i64>().ok().map(Value::from),
        OID => text.parse::<u32>().ok().map(Value::from),
        // Non-finite values (NaN, Infinity, -Infinity) have no JSON number: Number::from_f64
        // refuses them and they stay strings. Parsing as f64 keeps float4's shortest
        // decimal form ("0.1", not 0.10000000149011612).
        FLOAT4 | FLOAT8 => text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number),
        BOOL => match &*text {
            "t" => Some(Value::Bool(true)),
            "f" => Some(Value::Bool(false)),
            _ => None,
        },
        JSON | JSONB => serde_json::from_str(&text).ok(),
        TIMESTAMPTZ => timestamp(&text, true).map(Value::String),
        TIMESTAMP => timestamp(&text, false).map(Value::String),
        TIMETZ => time_with_zone(&text).map(Value::String),
        _ => None,
    };
    converted.unwrap_or_else(|| Value::String(text.into_owned()))
}

fn all_digits(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_digit)
}

/// `2026-11-22 10:00:00.5[+02[:30]]` to RFC 3339; `None` for any other shape (infinity,
/// BC, years beyond 9999, offsets with seconds), which then keeps its text.
fn timestamp(text: &str, with_zone: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let date_shaped = bytes.len() >= 19
        && all_digits(&bytes[0..4])
        && bytes[4] == b'-'
        && all_digits(&bytes[5..7])
        && bytes[7] == b'-'
        && all_digits(&bytes[8..10])
        && bytes[10] == b' ';
    if !date_shaped {
        return None;
    }
    let time_end = 11 + time_length(&bytes[11..])?;
    let mut result = String::with_capacity(text.len() + 4);
    result.push_str(&text[..10]);
    result.push('T');
    result.push_str(&text[11..time_end]);
    let rest = &text[time_end..];
    if with_zone {
        push_offset(&mut result, rest)?;
    } else if !rest.is_empty() {
        return None;
    }
    Some(result)
}

/// `10:00:00.5+02` to `10:00:00.5+02:00`.
fn time_with_zone(text: &str) -> Option<String> {
    let time_end = time_length(text.as_bytes())?;
    let mut result = String::with_capacity(text.len() + 3);
    result.push_str(&text[..time_end]);
    push_offset(&mut result, &text[time_end..])?;
    Some(result)
}

/// The length of a leading `HH:MM:SS[.fraction]`.
fn time_length(bytes: &[u8]) -> Option<usize> {
    let shaped = bytes.len() >= 8
        && all_digits(&bytes[0..2])
        && bytes[2] == b':'
        && all_digits(&bytes[3..5])
        && bytes[5] == b':'
        && all_digits(&bytes[6..8]);
    if !shaped {
        return None;
    }
    if bytes.get(8) != Some(&b'.') {
        return Some(8);
    }
    let fraction = bytes[9..]
        .iter()
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    (fraction > 0).then_some(9 + fraction)
}

/// Appends an offset `+HH` or `+HH:MM` as RFC 3339 wants it: `Z` for zero, else `+HH:MM`.
/// Offsets with seconds (historical local mean times) have no RFC 3339 form: `None`.
fn push_offset(result: &mut String, offset: &str) -> Option<()> {
    let (sign, digits) = match *offset.as_bytes() {
        [sign @ (b'+' | b'-'), hour_tens, hour_units] => {
            (sign, [hour_tens, hour_units, b'0', b'0'])
        }
        [
            sign @ (b'+' | b'-'),
            hour_tens,
            hour_units,
            b':',
            minute_tens,
            minute_units,
        ] => (sign, [hour_tens, hour_units, minute_tens, minute_units]),
        _ => return None,
    };
    if !all_digits(&digits) {
        return None;
    }
    if digits == [b'0'; 4] {
        result.push('Z');
    } else {
        let [hour_tens, hour_units, minute_tens, minute_units] = digits.map(char::from);
        result.extend([
            char::from(sign),
            hour_tens,
            hour_units,
            ':',
            minute_tens,
            minute_units,
        ]);
    }
    Some(())
}

#[cfg(test)]
mod tests;
