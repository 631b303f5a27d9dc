//! Rows read with ordinary queries, converted exactly as captured rows are: each column
//! selected as its text (`col::text`) and typed by the catalog's column type.

use serde_json::Value;

use super::table::TableShape;
use crate::capture::TypeCatalog;
use crate::change::Row;

pub(crate) struct RowReader<'a> {
    shape: &'a TableShape,
    types: &'a TypeCatalog,
}

impl<'a> RowReader<'a> {
    pub(crate) fn new(shape: &'a TableShape, types: &'a TypeCatalog) -> Self {
        RowReader { shape, types }
    }

    /// The row whose columns (selected by [`TableShape::text_columns`]) start at
    /// `first` in `result`.
    pub(crate) fn read(&self, result: &tokio_postgres::Row, first: usize) -> Row {
        let mut row = Row::with_capacity(self.shape.columns.len());
        for (offset, column) in self.shape.columns.iter().enumerate() {
            let text: Option<&str> = result.get(first + offset);
            let value = match text {
                None => Value::Null,
                Some(text) => self.types.to_json(column.type_oid, text),
            };
            row.insert(column.name.clone(), value);
        }
        row
    }
}

/// A key value as the text PostgreSQL reads back into the column's type; `None` for
/// NULL (which matches nothing).
pub(crate) fn key_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(number) => Some(number.to_string()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_are_the_text_postgres_reads_back() {
        assert_eq!(key_text(&json!(42)), Some("42".to_string()));
        assert_eq!(key_text(&json!("9.90")), Some("9.90".to_string()));
        assert_eq!(key_text(&json!(true)), Some("true".to_string()));
        assert_eq!(key_text(&json!({"a": 1})), Some(r#"{"a":1}"#.to_string()));
        assert_eq!(key_text(&Value::Null), None);
    }
}
