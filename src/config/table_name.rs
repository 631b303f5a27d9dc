//! Table names as written in `models.<name>.table`, read the way PostgreSQL reads them.

use thiserror::Error;

use crate::change::TableName;

/// PostgreSQL truncates longer identifiers (NAMEDATALEN - 1), after which the name in the
/// WAL would no longer match the configured one.
pub(super) const MAX_IDENTIFIER_BYTES: usize = 63;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TableNameError {
    #[error("invalid table name {0:?}: expected table or schema.table")]
    Parts(String),
    #[error("invalid table name {0:?}: empty identifier")]
    Empty(String),
    #[error("invalid table name {0:?}: unterminated quoted identifier")]
    Unterminated(String),
    #[error(
        "invalid table name {0:?}: an unquoted identifier holds letters, digits, _ and $ and \
         does not start with a digit (quote it with double quotes otherwise)"
    )]
    Unquoted(String),
    #[error("invalid table name {0:?}: an identifier is longer than 63 bytes")]
    TooLong(String),
}

/// Parses `orders` (schema `public`), `sales.orders`, or quoted parts such as
/// `"Sales"."Order.Items"`. Unquoted identifiers are folded to lower case as PostgreSQL
/// does; quoted ones keep their case and may hold any character (`""` is a quote).
pub fn parse_table_name(text: &str) -> Result<TableName, TableNameError> {
    let mut parts = Vec::with_capacity(2);
    let mut rest = text;
    loop {
        let (identifier, after) = identifier(text, rest)?;
        parts.push(identifier);
        match after.strip_prefix('.') {
            Some(next) => rest = next,
            None if after.is_empty() => break,
            None => return Err(TableNameError::Unquoted(text.to_string())),
        }
    }
    let mut parts = parts.into_iter();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(name), None, None) => Ok(TableName::new("public", name)),
        (Some(schema), Some(name), None) => Ok(TableName::new(schema, name)),
        _ => Err(TableNameError::Parts(text.to_string())),
    }
}

/// Reads one identifier from the start of `rest`; returns it and what follows.
fn identifier<'a>(text: &str, rest: &'a str) -> Result<(String, &'a str), TableNameError> {
    let (identifier, after) = match rest.strip_prefix('"') {
        Some(quoted) => quoted_identifier(text, quoted)?,
        None => {
            let end = rest.find(['.', '"']).unwrap_or(rest.len());
            let word = &rest[..end];
            if word.is_empty() {
                return Err(TableNameError::Empty(text.to_string()));
            }
            if !is_unquoted_identifier(word) {
                return Err(TableNameError::Unquoted(text.to_string()));
            }
            (word.to_ascii_lowercase(), &rest[end..])
        }
    };
    if identifier.is_empty() {
        return Err(TableNameError::Empty(text.to_string()));
    }
    if identifier.len() > MAX_IDENTIFIER_BYTES {
        return Err(TableNameError::TooLong(text.to_string()));
    }
    Ok((identifier, after))
}

fn quoted_identifier<'a>(text: &str, quoted: &'a str) -> Result<(String, &'a str), TableNameError> {
    let mut identifier = String::new();
    let mut rest = quoted;
    loop {
        let end = rest
            .find('"')
            .ok_or_else(|| TableNameError::Unterminated(text.to_string()))?;
        identifier.push_str(&rest[..end]);
        rest = &rest[end + 1..];
        match rest.strip_prefix('"') {
            Some(after_doubled) => {
                identifier.push('"');
                rest = after_doubled;
            }
            None => return Ok((identifier, rest)),
        }
    }
}

/// PostgreSQL's rule for identifiers that need no quotes; non-ASCII letters are allowed.
fn is_unquoted_identifier(word: &str) -> bool {
    let mut characters = word.chars();
    characters
        .next()
        .is_some_and(|first| first.is_alphabetic() || first == '_')
        && characters.all(|character| character.is_alphanumeric() || "_$".contains(character))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> TableName {
        parse_table_name(text).unwrap()
    }

    #[test]
    fn unqualified_names_are_in_public() {
        assert_eq!(parsed("orders"), TableName::new("public", "orders"));
    }

    #[test]
    fn reads_schema_and_folds_case() {
        assert_eq!(parsed("sales.orders"), TableName::new("sales", "orders"));
        assert_eq!(parsed("Sales.Orders"), TableName::new("sales", "orders"));
        assert_eq!(parsed("_t$1"), TableName::new("public", "_t$1"));
        assert_eq!(parsed("Straße"), TableName::new("public", "straße"));
    }

    #[test]
    fn quoted_identifiers_keep_case_and_dots() {
        assert_eq!(
            parsed("\"Sales\".\"Order.Items\""),
            TableName::new("Sales", "Order.Items")
        );
        assert_eq!(
            parsed("sales.\"My \"\"Table\"\"\""),
            TableName::new("sales", "My \"Table\"")
        );
        assert_eq!(parsed("\"Orders\""), TableName::new("public", "Orders"));
    }

    #[test]
    fn rejects_malformed_names() {
        let cases = [
            ("", TableNameError::Empty(String::new())),
            ("a.b.c", TableNameError::Parts("a.b.c".to_string())),
            ("sales.", TableNameError::Empty("sales.".to_string())),
            (".orders", TableNameError::Empty(".orders".to_string())),
            ("\"\"", TableNameError::Empty("\"\"".to_string())),
            ("\"open", TableNameError::Unterminated("\"open".to_string())),
            ("my table", TableNameError::Unquoted("my table".to_string())),
            ("1orders", TableNameError::Unquoted("1orders".to_string())),
            ("a\"b\"", TableNameError::Unquoted("a\"b\"".to_string())),
            ("\"a\"b", TableNameError::Unquoted("\"a\"b".to_string())),
        ];
        for (text, error) in cases {
            assert_eq!(parse_table_name(text), Err(error), "{text:?}");
        }
        let long = "x".repeat(64);
        assert_eq!(
            parse_table_name(&long),
            Err(TableNameError::TooLong(long.clone()))
        );
        assert!(parse_table_name(&"x".repeat(63)).is_ok());
    }
}
