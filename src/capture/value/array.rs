//! Arrays' text form, `[1:2]={a,"b,c",NULL}`, to nested JSON arrays, each element
//! converted by its type's rule.

use std::borrow::Cow;

use serde_json::Value;

use super::TypeCatalog;

/// PostgreSQL's `MAXDIM`: the most dimensions an array can have.
const MAX_DIMENSIONS: usize = 6;

/// Parses an array's text form, `[1:2]={a,"b,c",NULL}`, converting each element with its
/// type's rule. `None` when malformed, so the caller keeps the text.
pub(super) fn array_to_json(
    catalog: &TypeCatalog,
    element_type: u32,
    text: &str,
    depth: usize,
) -> Option<Value> {
    // A `[lower:upper]` prefix per dimension appears when a lower bound is not 1. JSON
    // arrays have no bounds, so it is skipped.
    let body = if text.starts_with('[') {
        let (dimensions, body) = text.split_once('=')?;
        let plausible = dimensions
            .bytes()
            .all(|byte| byte.is_ascii_digit() || matches!(byte, b'[' | b']' | b':' | b'-'));
        if !plausible {
            return None;
        }
        body
    } else {
        text
    };
    let mut parser = ArrayParser {
        text: body,
        position: 0,
        catalog,
        element_type,
        depth,
    };
    let value = parser.array(1)?;
    parser.skip_whitespace();
    (parser.position == body.len()).then_some(value)
}

/// A recursive-descent parser of `array_out`'s format. Every delimiter is ASCII, so byte
/// positions found by scanning are always character boundaries.
struct ArrayParser<'a> {
    text: &'a str,
    position: usize,
    catalog: &'a TypeCatalog,
    element_type: u32,
    /// How deeply conversions are nested here (arrays of composites of arrays …).
    depth: usize,
}

/// `array_isspace`: the whitespace PostgreSQL skips around unquoted elements.
fn is_array_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b'\x0B' | b'\x0C')
}

impl<'a> ArrayParser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.position).copied()
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(is_array_space) {
            self.position += 1;
        }
    }

    /// `{…}` holding either only sub-arrays (one more dimension) or only elements;
    /// `dimension` counts from 1 for the outermost.
    fn array(&mut self, dimension: usize) -> Option<Value> {
        // PostgreSQL never prints more dimensions than it allows, and a text nested
        // deeper would take this recursion past the end of the stack.
        if self.peek()? != b'{' || dimension > MAX_DIMENSIONS {
            return None;
        }
        self.position += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek()? == b'}' {
            self.position += 1;
            return Some(Value::Array(items));
        }
        let nested = self.peek()? == b'{';
        loop {
            self.skip_whitespace();
            if (self.peek()? == b'{') != nested {
                return None;
            }
            items.push(if nested {
                self.array(dimension + 1)?
            } else {
                self.element()?
            });
            self.skip_whitespace();
            match self.peek()? {
                b',' => self.position += 1,
                b'}' => {
                    self.position += 1;
                    return Some(Value::Array(items));
                }
                _ => return None,
            }
        }
    }

    fn element(&mut self) -> Option<Value> {
        if self.peek()? == b'"' {
            self.position += 1;
            let text = self.scan(|byte| byte == b'"')?;
            self.position += 1;
            // Quoted text is always a value, even when it reads NULL.
            return Some(self.catalog.convert(self.element_type, text, self.depth));
        }
        let text = self.scan(|byte| matches!(byte, b',' | b'}' | b'{' | b'"'))?;
        if matches!(self.peek(), Some(b'{' | b'"')) {
            return None;
        }
        let escaped = matches!(text, Cow::Owned(_));
        let text = match text {
            Cow::Borrowed(text) => Cow::Borrowed(
                text.trim_end_matches(|c: char| c.is_ascii() && is_array_space(c as u8)),
            ),
            Cow::Owned(text) => Cow::Owned(
                text.trim_end_matches(|c: char| c.is_ascii() && is_array_space(c as u8))
                    .to_owned(),
            ),
        };
        if text.is_empty() {
            return None;
        }
        if !escaped && text.eq_ignore_ascii_case("NULL") {
            return Some(Value::Null);
        }
        Some(self.catalog.convert(self.element_type, text, self.depth))
    }

    /// Reads up to (not including) the first unescaped byte for which `stop` holds,
    /// resolving backslash escapes; borrows when there were none. `None` at end of text.
    fn scan(&mut self, stop: impl Fn(u8) -> bool) -> Option<Cow<'a, str>> {
        let text = self.text;
        let mut unescaped: Option<String> = None;
        let mut segment_start = self.position;
        loop {
            let byte = self.peek()?;
            if stop(byte) {
                let segment = &text[segment_start..self.position];
                return Some(match unescaped {
                    None => Cow::Borrowed(segment),
                    Some(mut buffer) => {
                        buffer.push_str(segment);
                        Cow::Owned(buffer)
                    }
                });
            }
            if byte == b'\\' {
                let buffer = unescaped.get_or_insert_with(String::new);
                buffer.push_str(&text[segment_start..self.position]);
                let escaped = text[self.position + 1..].chars().next()?;
                buffer.push(escaped);
                self.position += 1 + escaped.len_utf8();
                segment_start = self.position;
            } else {
                self.position += 1;
            }
        }
    }
}
