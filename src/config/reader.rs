//! Typed reading of a parsed TOML document that collects every problem with its key path
//! instead of stopping at the first, and expands `${NAME}` in every string it hands out.

use std::fmt::Display;
use std::path::Path;
use std::time::Duration;

use toml::{Table, Value};

use super::ConfigError;
use super::duration::parse_duration;
use super::environment::{Expanded, expand};
use super::size::parse_size;

/// The key path of `key` inside the table at `parent`: `webhooks[0].headers.Authorization`.
/// Keys that TOML could not write bare are quoted, so the path stays unambiguous.
pub(super) fn key_path(parent: &str, key: &str) -> String {
    let is_bare = !key.is_empty()
        && key
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
    let key = if is_bare {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

pub(super) fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

pub(super) struct Reader<'a> {
    file: &'a Path,
    environment: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<ConfigError>,
    /// Every value substituted for a `${VAR}` so far.
    substituted: Vec<String>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(file: &'a Path, environment: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Reader {
            file,
            environment,
            errors: Vec::new(),
            substituted: Vec::new(),
        }
    }

    pub(crate) fn error(&mut self, key: impl Into<String>, reason: impl Display) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            key: key.into(),
            reason: reason.to_string(),
        });
    }

    /// The values substituted for `${VAR}` references, taken out.
    pub(crate) fn take_substituted(&mut self) -> Vec<String> {
        std::mem::take(&mut self.substituted)
    }

    pub(crate) fn into_errors(self) -> Vec<ConfigError> {
        self.errors
    }

    /// Reports every key of `table` that is not in `known`.
    pub(crate) fn reject_unknown_keys(&mut self, path: &str, table: &Table, known: &[&str]) {
        for key in table.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let reason = match closest(key, known) {
                Some(suggestion) => format!("unknown key (did you mean {suggestion:?}?)"),
                None => format!("unknown key (expected one of: {})", known.join(", ")),
            };
            self.error(key_path(path, key), reason);
        }
    }

    /// A sub-table; `None` when absent or not a table (the latter is reported).
    pub(crate) fn table<'t>(
        &mut self,
        table: &'t Table,
        path: &str,
        key: &str,
    ) -> Option<&'t Table> {
        match table.get(key)? {
            Value::Table(inner) => Some(inner),
            other => {
                self.mismatch(&key_path(path, key), "a table", other);
                None
            }
        }
    }

    /// `[[key]]`: an array of tables, each with its index.
    pub(crate) fn array_of_tables<'t>(
        &mut self,
        table: &'t Table,
        path: &str,
        key: &str,
    ) -> Vec<(usize, &'t Table)> {
        let path = key_path(path, key);
        let Some(elements) = self.array(table, &path, key, "an array of tables") else {
            return Vec::new();
        };
        let mut tables = Vec::with_capacity(elements.len());
        for (index, element) in elements.iter().enumerate() {
            match element {
                Value::Table(inner) => tables.push((index, inner)),
                other => self.mismatch(&index_path(&path, index), "a table", other),
            }
        }
        tables
    }

    /// A string with `${NAME}` expanded; `None` when absent or invalid (the latter is
    /// reported).
    pub(crate) fn string(&mut self, table: &Table, path: &str, key: &str) -> Option<Expanded> {
        let value = table.get(key)?;
        self.expand_value(&key_path(path, key), value)
    }

    /// Like [`Reader::string`], and reports the key as missing when it is absent.
    pub(crate) fn required_string(
        &mut self,
        table: &Table,
        path: &str,
        key: &str,
    ) -> Option<Expanded> {
        if !table.contains_key(key) {
            self.error(key_path(path, key), "missing required key");
            return None;
        }
        self.string(table, path, key)
    }

    pub(crate) fn boolean(&mut self, table: &Table, path: &str, key: &str) -> Option<bool> {
        match table.get(key)? {
            Value::Boolean(value) => Some(*value),
            other => {
                self.mismatch(&key_path(path, key), "a boolean", other);
                None
            }
        }
    }

    pub(crate) fn integer(&mut self, table: &Table, path: &str, key: &str) -> Option<i64> {
        match table.get(key)? {
            Value::Integer(value) => Some(*value),
            other => {
                self.mismatch(&key_path(path, key), "an integer", other);
                None
            }
        }
    }

    /// An array of strings, each with its own key path (`webhooks[0].on[2]`) so that the
    /// caller can report a bad element precisely. Elements that are not valid strings are
    /// reported and left out.
    pub(crate) fn string_array(
        &mut self,
        table: &Table,
        path: &str,
        key: &str,
    ) -> Option<Vec<(String, Expanded)>> {
        let path = key_path(path, key);
        let elements = self.array(table, &path, key, "an array of strings")?;
        let mut strings = Vec::with_capacity(elements.len());
        for (index, element) in elements.iter().enumerate() {
            let element_path = index_path(&path, index);
            if let Some(expanded) = self.expand_value(&element_path, element) {
                strings.push((element_path, expanded));
            }
        }
        Some(strings)
    }

    /// A table of strings in file order, such as `headers` or `fields`.
    pub(crate) fn string_table(
        &mut self,
        table: &Table,
        path: &str,
        key: &str,
    ) -> Option<Vec<(String, Expanded)>> {
        let inner = self.table(table, path, key)?;
        let path = key_path(path, key);
        let mut entries = Vec::with_capacity(inner.len());
        for (name, value) in inner {
            if let Some(expanded) = self.expand_value(&key_path(&path, name), value) {
                entries.push((name.clone(), expanded));
            }
        }
        Some(entries)
    }

    pub(crate) fn duration(&mut self, table: &Table, path: &str, key: &str) -> Option<Duration> {
        let value = table.get(key)?;
        self.duration_value(&key_path(path, key), value)
    }

    /// A size such as `"10MB"`; `None` when absent or invalid (the mistake recorded).
    pub(crate) fn size(&mut self, table: &Table, path: &str, key: &str) -> Option<usize> {
        let size = self.string(table, path, key)?;
        parse_size(&size.text)
            .map_err(|reason| self.error(key_path(path, key), reason))
            .ok()
    }

    /// An array of durations; `None` when absent or when any element is invalid.
    pub(crate) fn duration_array(
        &mut self,
        table: &Table,
        path: &str,
        key: &str,
    ) -> Option<Vec<Duration>> {
        let path = key_path(path, key);
        let elements = self.array(table, &path, key, "an array of durations")?;
        let mut durations = Vec::with_capacity(elements.len());
        for (index, element) in elements.iter().enumerate() {
            durations.push(self.duration_value(&index_path(&path, index), element));
        }
        durations.into_iter().collect()
    }

    fn duration_value(&mut self, path: &str, value: &Value) -> Option<Duration> {
        let Value::String(_) = value else {
            self.mismatch(path, "a duration such as \"5s\"", value);
            return None;
        };
        let text = self.expand_value(path, value)?.text;
        match parse_duration(&text) {
            Ok(duration) => Some(duration),
            Err(error) => {
                self.error(path, error);
                None
            }
        }
    }

    fn array<'t>(
        &mut self,
        table: &'t Table,
        path: &str,
        key: &str,
        expected: &str,
    ) -> Option<&'t Vec<Value>> {
        match table.get(key)? {
            Value::Array(elements) => Some(elements),
            other => {
                self.mismatch(path, expected, other);
                None
            }
        }
    }

    fn expand_value(&mut self, path: &str, value: &Value) -> Option<Expanded> {
        let Value::String(text) = value else {
            self.mismatch(path, "a string", value);
            return None;
        };
        match expand(text, self.environment) {
            Ok(expanded) => {
                self.substituted.extend(expanded.values.iter().cloned());
                Some(expanded)
            }
            Err(errors) => {
                for error in errors {
                    self.error(path, error);
                }
                None
            }
        }
    }

    pub(crate) fn mismatch(&mut self, path: &str, expected: &str, found: &Value) {
        let found = match found {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a date-time",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        };
        self.error(path, format!("expected {expected}, found {found}"));
    }
}

/// The known key closest to a misspelt one, if it is close enough to be a likely typo.
fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|candidate| (edit_distance(key, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= 2 && *distance < candidate.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over characters.
fn edit_distance(left: &str, right: &str) -> usize {
    let right: Vec<char> = right.chars().collect();
    let mut previous: Vec<usize> = (0..=right.len()).collect();
    for (row, left_character) in left.chars().enumerate() {
        let mut current = vec![row + 1];
        for (column, right_character) in right.iter().enumerate() {
            let substitution = previous[column] + usize::from(left_character != *right_character);
            current.push(
                substitution
                    .min(previous[column + 1] + 1)
                    .min(current[column] + 1),
            );
        }
        previous = current;
    }
    previous[right.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_quote_keys_that_are_not_bare() {
        assert_eq!(key_path("", "source"), "source");
        assert_eq!(key_path("source", "url"), "source.url");
        assert_eq!(
            key_path("webhooks[0].headers", "X-Api-Key"),
            "webhooks[0].headers.X-Api-Key"
        );
        assert_eq!(key_path("models", "a.b"), "models.\"a.b\"");
        assert_eq!(key_path("models", ""), "models.\"\"");
    }

    #[test]
    fn suggests_close_keys_only() {
        let known = ["timeout", "retry", "event_id_header"];
        assert_eq!(closest("timout", &known), Some("timeout"));
        assert_eq!(closest("event-id-header", &known), Some("event_id_header"));
        assert_eq!(closest("colour", &known), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
