//! A row's identity within its model, as text: its primary key. Events carry it so that
//! a row's history can be listed (CONTRACT §9) and its events kept in order.
//!
//! A single-column key is its value's text (`42`, `A-17`); a composite key is
//! `column=value` pairs sorted by column name and joined with commas
//! (`line=2,order_id=7`), with `%`, `,` and `=` in values percent-encoded. Sorting
//! makes the text independent of the order a user types the pairs in.

use crate::change::Row;

use super::rows::key_text;

/// The key text of `row` under primary key `columns`; `None` without a primary key or
/// when a key column is NULL or missing (such a row has no identity to order by).
pub fn row_key(columns: &[String], row: &Row) -> Option<String> {
    match columns {
        [] => None,
        [column] => row.get(column).and_then(key_text),
        columns => {
            let mut pairs = Vec::with_capacity(columns.len());
            for column in columns {
                let value = row.get(column).and_then(key_text)?;
                pairs.push((column.as_str(), value));
            }
            Some(join_pairs(pairs))
        }
    }
}

/// The key text a user typed (`42`, or `order_id=7,line=2` in any order), in the form
/// [`row_key`] gives, when it differs from the text as typed: pairs sorted, values
/// re-encoded. A single `id=42` also reads as `42`: both are offered, the text as typed
/// first.
pub fn key_query_forms(text: &str) -> Vec<String> {
    let mut forms = vec![text.to_string()];
    let pairs: Option<Vec<(&str, String)>> = text
        .split(',')
        .map(|pair| {
            let (column, value) = pair.split_once('=')?;
            let value = percent_decode(value)?;
            (!column.is_empty()).then_some((column, value))
        })
        .collect();
    if let Some(pairs) = pairs {
        if let [(_, value)] = pairs.as_slice() {
            forms.push(value.clone());
        }
        forms.push(join_pairs(pairs));
    }
    let mut unique = Vec::with_capacity(forms.len());
    for form in forms {
        if !unique.contains(&form) {
            unique.push(form);
        }
    }
    unique
}

fn join_pairs(mut pairs: Vec<(&str, String)>) -> String {
    pairs.sort_by(|left, right| left.0.cmp(right.0));
    pairs
        .iter()
        .map(|(column, value)| format!("{column}={}", percent_encode(value)))
        .collect::<Vec<_>>()
        .join(",")
}

fn percent_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '%' => encoded.push_str("%25"),
            ',' => encoded.push_str("%2C"),
            '=' => encoded.push_str("%3D"),
            other => encoded.push(other),
        }
    }
    encoded
}

fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = value.get(index + 1..index + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row(value: serde_json::Value) -> Row {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn single_keys_are_their_value() {
        let columns = ["id".to_string()];
        assert_eq!(
            row_key(&columns, &row(json!({"id": 42, "a": 1}))),
            Some("42".into())
        );
        assert_eq!(
            row_key(&columns, &row(json!({"id": "A-17"}))),
            Some("A-17".into())
        );
        assert_eq!(row_key(&columns, &row(json!({"id": null}))), None);
        assert_eq!(row_key(&[], &row(json!({"id": 1}))), None);
    }

    #[test]
    fn composite_keys_are_sorted_pairs_with_separators_encoded() {
        let columns = ["order_id".to_string(), "line".to_string()];
        let key = row_key(&columns, &row(json!({"order_id": 7, "line": "a,b=%"})));
        assert_eq!(key.as_deref(), Some("line=a%2Cb%3D%25,order_id=7"));
        assert_eq!(row_key(&columns, &row(json!({"order_id": 7}))), None);
    }

    #[test]
    fn typed_keys_offer_the_stored_form() {
        assert_eq!(key_query_forms("42"), vec!["42".to_string()]);
        assert_eq!(
            key_query_forms("id=42"),
            vec!["id=42".to_string(), "42".to_string()]
        );
        assert_eq!(
            key_query_forms("order_id=7,line=a%2Cb"),
            vec![
                "order_id=7,line=a%2Cb".to_string(),
                "line=a%2Cb,order_id=7".to_string()
            ]
        );
        let columns = ["order_id".to_string(), "line".to_string()];
        let stored = row_key(&columns, &row(json!({"order_id": 7, "line": "a,b"}))).unwrap();
        assert!(key_query_forms("order_id=7,line=a%2Cb").contains(&stored));
        // Not pairs: only as typed.
        assert_eq!(key_query_forms("a=1,b"), vec!["a=1,b".to_string()]);
    }
}
