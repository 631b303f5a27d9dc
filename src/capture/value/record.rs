//! PostgreSQL's record text form, `(42,"a ""b""",,t)`: what `NEW::text` gives notify
//! mode's capture trigger, and how a composite value is written. Each field is its
//! column's text output, the same text logical replication carries, so one conversion
//! serves both modes.

/// Why a record text cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("a record starts with '(' and ends with ')'")]
    NotParenthesized,
    #[error("an unterminated quoted field")]
    UnterminatedQuote,
    #[error("a backslash at the end of the record")]
    DanglingBackslash,
}

/// The fields of a record: `None` for NULL (an empty unquoted field), the unescaped text
/// otherwise (`""` is the empty string). Inside or outside quotes a backslash takes the
/// next character literally, and inside quotes `""` is one quote, as `record_in` reads.
pub(crate) fn parse_record(text: &str) -> Result<Vec<Option<String>>, RecordError> {
    let inner = text
        .strip_prefix('(')
        .and_then(|rest| rest.strip_suffix(')'))
        .ok_or(RecordError::NotParenthesized)?;
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut in_quotes = false;
    let mut characters = inner.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            ',' if !in_quotes => {
                fields.push(finish_field(&mut field, quoted));
                quoted = false;
            }
            '\\' => field.push(characters.next().ok_or(RecordError::DanglingBackslash)?),
            '"' if in_quotes && characters.peek() == Some(&'"') => {
                characters.next();
                field.push('"');
            }
            '"' => {
                in_quotes = !in_quotes;
                quoted = true;
            }
            other => field.push(other),
        }
    }
    if in_quotes {
        return Err(RecordError::UnterminatedQuote);
    }
    fields.push(finish_field(&mut field, quoted));
    Ok(fields)
}

fn finish_field(field: &mut String, quoted: bool) -> Option<String> {
    let text = std::mem::take(field);
    (quoted || !text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<Option<String>> {
        parse_record(text).unwrap()
    }

    fn some(text: &str) -> Option<String> {
        Some(text.to_string())
    }

    #[test]
    fn plain_fields() {
        assert_eq!(
            fields("(42,paid,t)"),
            vec![some("42"), some("paid"), some("t")]
        );
    }

    #[test]
    fn empty_unquoted_fields_are_null_and_quoted_empty_is_empty() {
        assert_eq!(fields("(1,,\"\")"), vec![some("1"), None, some("")]);
        assert_eq!(fields("(,)"), vec![None, None]);
        assert_eq!(fields("(1,)"), vec![some("1"), None]);
        assert_eq!(fields("(,2)"), vec![None, some("2")]);
    }

    #[test]
    fn a_single_field() {
        assert_eq!(fields("(x)"), vec![some("x")]);
        // One NULL column and no columns print alike; the column list disambiguates.
        assert_eq!(fields("()"), vec![None]);
    }

    #[test]
    fn quotes_commas_parentheses_and_backslashes() {
        assert_eq!(
            fields(r#"(1,"a ""b"", c","(x)","back\\slash","{""x y"",z}")"#),
            vec![
                some("1"),
                some("a \"b\", c"),
                some("(x)"),
                some("back\\slash"),
                some("{\"x y\",z}"),
            ]
        );
    }

    #[test]
    fn a_quoted_field_ending_in_a_comma_is_not_an_extra_field() {
        assert_eq!(fields(r#"(1,"a,")"#), vec![some("1"), some("a,")]);
        assert_eq!(fields(r#"("a,",)"#), vec![some("a,"), None]);
    }

    #[test]
    fn what_postgres_prints_for_timestamps_and_nested_records() {
        assert_eq!(
            fields(r#"(900001,"2026-11-22 17:21:21.490266+00","(1,""x"")")"#),
            vec![
                some("900001"),
                some("2026-11-22 17:21:21.490266+00"),
                some("(1,\"x\")"),
            ]
        );
    }

    #[test]
    fn long_and_multibyte_text() {
        let long = "é".repeat(20_000);
        assert_eq!(
            fields(&format!("(\"{long} x\")")),
            vec![some(&format!("{long} x"))]
        );
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        assert_eq!(parse_record("1,2"), Err(RecordError::NotParenthesized));
        assert_eq!(
            parse_record("(\"open)"),
            Err(RecordError::UnterminatedQuote)
        );
        assert_eq!(parse_record("(a\\)"), Err(RecordError::DanglingBackslash));
        for text in ["", "(", ")", "(\"", "(\\", "(\"\"\")", "(a\"b)", "((()"] {
            let _ = parse_record(text);
        }
    }
}
