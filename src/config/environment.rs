//! `${NAME}` references to environment variables inside configuration strings.
//!
//! Rules:
//! - `${NAME}` is replaced by the value of variable `NAME`; `NAME` is a letter or `_`
//!   followed by letters, digits and `_`. A variable that is not set is an error.
//! - `$${` is a literal `${`: write `$${{ item.price }}` for a dollar sign in front of a
//!   Liquid output.
//! - Any other `$` is kept as it is.
//! - A substituted value is not expanded again, so a password holding `${` stays intact.

use thiserror::Error;

/// A string after substitution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Expanded {
    pub text: String,
    /// Whether any part of the text came from the environment: such values are secrets
    /// as far as logs and admin pages are concerned.
    pub from_environment: bool,
    /// The values substituted, each a secret wherever it appears (CONTRACT §12).
    pub values: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub(super) enum EnvironmentError {
    #[error("environment variable {0} is not set")]
    Missing(String),
    #[error("unterminated \"${{\": write \"$${{\" for a literal \"${{\"")]
    Unterminated,
    #[error(
        "invalid environment variable name {0:?} in \"${{…}}\": write \"$${{\" for a literal \"${{\""
    )]
    InvalidName(String),
}

/// Replaces every `${NAME}` in `text`; reports every problem in the string, not only
/// the first.
pub(super) fn expand(
    text: &str,
    environment: &dyn Fn(&str) -> Option<String>,
) -> Result<Expanded, Vec<EnvironmentError>> {
    let mut output = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut from_environment = false;
    let mut values = Vec::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        output.push_str(&rest[..dollar]);
        let after = &rest[dollar..];
        if let Some(tail) = after.strip_prefix("$${") {
            output.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(end) = tail.find('}') else {
                errors.push(EnvironmentError::Unterminated);
                rest = "";
                break;
            };
            let name = &tail[..end];
            if !is_variable_name(name) {
                errors.push(EnvironmentError::InvalidName(name.to_string()));
            } else if let Some(value) = environment(name) {
                output.push_str(&value);
                from_environment = true;
                values.push(value);
            } else {
                errors.push(EnvironmentError::Missing(name.to_string()));
            }
            rest = &tail[end + 1..];
        } else {
            output.push('$');
            rest = &after[1..];
        }
    }
    output.push_str(rest);
    if errors.is_empty() {
        Ok(Expanded {
            text: output,
            from_environment,
            values,
        })
    } else {
        Err(errors)
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && characters.all(|character| character.is_ascii_alphanumeric() || character == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".to_string()),
            "TRICKY" => Some("a${B}c".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn expanded(text: &str) -> Expanded {
        expand(text, &environment).unwrap()
    }

    #[test]
    fn replaces_variables_anywhere_in_the_text() {
        let result = expanded("Bearer ${TOKEN} and ${TOKEN}!");
        assert_eq!(result.text, "Bearer s3cret and s3cret!");
        assert!(result.from_environment);
        assert_eq!(expanded("${EMPTY}").text, "");
    }

    #[test]
    fn text_without_references_is_unchanged() {
        let result = expanded("https://example.com/{{ item.id }}?price=$5");
        assert_eq!(result.text, "https://example.com/{{ item.id }}?price=$5");
        assert!(!result.from_environment);
        assert_eq!(expanded("ends with $").text, "ends with $");
    }

    #[test]
    fn double_dollar_escapes_a_reference() {
        let result = expanded("price: $${{ item.price }} $${TOKEN}");
        assert_eq!(result.text, "price: ${{ item.price }} ${TOKEN}");
        assert!(!result.from_environment);
    }

    #[test]
    fn substituted_values_are_not_expanded_again() {
        assert_eq!(expanded("${TRICKY}").text, "a${B}c");
    }

    #[test]
    fn reports_every_problem() {
        let errors = expand("${A} ${TOKEN} ${B}", &environment).unwrap_err();
        assert_eq!(
            errors,
            vec![
                EnvironmentError::Missing("A".to_string()),
                EnvironmentError::Missing("B".to_string()),
            ]
        );
        assert_eq!(errors[0].to_string(), "environment variable A is not set");
    }

    #[test]
    fn rejects_malformed_references() {
        assert_eq!(
            expand("x ${TOKEN", &environment).unwrap_err(),
            vec![EnvironmentError::Unterminated]
        );
        let errors = expand("${{ item.price }}", &environment).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "invalid environment variable name \"{ item.price \" in \"${…}\": \
             write \"$${\" for a literal \"${\""
        );
        assert!(expand("${}", &environment).is_err());
        assert!(expand("${1A}", &environment).is_err());
    }
}
