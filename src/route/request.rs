//! The request an event sends (CONTRACT §3): method, URL, headers and body by `format`.

use std::borrow::Cow;

use liquid::ObjectView;
use serde_json::Value as Json;
use thiserror::Error;

use super::diagnostic::describe_render_error;
use super::path::FieldPath;
use super::template::{RenderFailure, Text};
use crate::config::{Format, Method};
use crate::event::Request;
use crate::secret::mask_url_password;

/// Why an event's request could not be rendered. The event is still created, and
/// recorded as failed with this one-line message, which names the webhook key at fault.
#[derive(Debug, Error)]
pub enum RenderError {
    /// A template (`url`, `headers.…`, `fields.…`, `body`, `when`) failed at render time.
    #[error("{key}: {reason}")]
    Template {
        key: String,
        /// liquid's error as one line.
        reason: String,
        #[source]
        source: liquid::Error,
    },
    /// A `fields` path names a column the row does not have.
    #[error("{key}: {reason}")]
    Path { key: String, reason: String },
    #[error("url: {reason}")]
    Url { reason: String },
    #[error("{key}: the rendered value contains a line break or NUL, which a header cannot carry")]
    HeaderValue { key: String },
    #[error("body: the rendered body is not valid JSON: {source}")]
    JsonBody {
        #[source]
        source: serde_json::Error,
    },
    /// The relations to include could not be looked up.
    #[error("include: {reason}")]
    Lookup { reason: String },
    /// The row was larger than `source.max_row`, and was not read.
    #[error(
        "the row is {bytes} bytes, larger than source.max_row ({limit} bytes); it was not read"
    )]
    RowTooLarge { bytes: u64, limit: u64 },
    /// The request would be larger than `delivery.max_body` (a template stops being
    /// rendered once it passes the limit, so memory stays bounded).
    #[error("the rendered request is larger than delivery.max_body ({limit} bytes){}", measured(*.bytes))]
    TooLarge {
        /// How large it was, when it was rendered whole.
        bytes: Option<usize>,
        limit: usize,
    },
}

fn measured(bytes: Option<usize>) -> String {
    bytes.map_or_else(String::new, |bytes| format!(": {bytes} bytes"))
}

impl RenderError {
    pub(super) fn template(key: &str, source: liquid::Error) -> RenderError {
        RenderError::Template {
            key: key.to_string(),
            reason: describe_render_error(&source),
            source,
        }
    }
}

/// A `fields` entry: a path keeps the JSON type of what it names, a template yields a
/// string.
#[derive(Debug)]
pub(super) enum FieldValue {
    Path(FieldPath),
    Template(Text),
}

#[derive(Debug)]
pub(super) struct Field {
    pub(super) name: String,
    /// `fields.<name>`, for messages.
    pub(super) key: String,
    pub(super) value: FieldValue,
}

/// What carries the event's data, decided at load from method, format, fields and body.
#[derive(Debug)]
pub(super) enum Payload {
    /// `json` without fields or body: the envelope.
    Envelope,
    JsonFields(Vec<Field>),
    FormFields(Vec<Field>),
    /// The rendered body as is; for `json` it must parse.
    Body {
        text: Text,
        format: Format,
    },
    /// `GET`/`DELETE`: the fields become the query string.
    Query(Vec<Field>),
    /// `GET`/`DELETE` without fields.
    Nothing,
}

#[derive(Debug)]
pub(super) struct RequestTemplate {
    pub(super) method: Method,
    pub(super) url: Text,
    /// Name as written, key for messages (`headers.Authorization`), value.
    pub(super) headers: Vec<(String, String, Text)>,
    pub(super) payload: Payload,
    /// `delivery.max_body`: the most bytes of URL, headers and body together.
    pub(super) max_body: usize,
}

/// What one event's request is rendered from.
pub(super) struct RenderInput<'a> {
    /// The envelope of CONTRACT §4, with the event id.
    pub(super) envelope: &'a Json,
    pub(super) webhook: &'a str,
    /// The Liquid context; present whenever the webhook has a template.
    pub(super) globals: Option<&'a dyn ObjectView>,
}

impl RequestTemplate {
    /// Whether the body sent is the event envelope itself.
    pub(super) fn sends_envelope(&self) -> bool {
        matches!(self.payload, Payload::Envelope)
    }

    /// Whether rendering needs the Liquid context at all.
    pub(super) fn has_templates(&self) -> bool {
        let field_is_template = |field: &Field| matches!(&field.value, FieldValue::Template(text) if text.is_template());
        self.url.is_template()
            || self.headers.iter().any(|(_, _, value)| value.is_template())
            || match &self.payload {
                Payload::Envelope | Payload::Nothing => false,
                Payload::JsonFields(fields)
                | Payload::FormFields(fields)
                | Payload::Query(fields) => fields.iter().any(field_is_template),
                Payload::Body { text, .. } => text.is_template(),
            }
    }

    pub(super) fn render(&self, input: &RenderInput<'_>) -> Result<Request, RenderError> {
        let mut url = render_text(&self.url, "url", input, self.max_body)?.into_owned();
        check_url(&url)?;

        let mut headers = Vec::with_capacity(self.headers.len() + 1);
        let mut has_content_type = false;
        for (name, key, value) in &self.headers {
            let value = render_text(value, key, input, self.max_body)?;
            if value.contains(['\r', '\n', '\0']) {
                return Err(RenderError::HeaderValue { key: key.clone() });
            }
            has_content_type |= name.eq_ignore_ascii_case("content-type");
            headers.push((name.clone(), value.into_owned()));
        }

        let body = match &self.payload {
            Payload::Envelope => Some(input.envelope.to_string()),
            Payload::JsonFields(fields) => {
                let mut object = serde_json::Map::with_capacity(fields.len());
                for field in fields {
                    object.insert(
                        field.name.clone(),
                        field_value(field, input, self.max_body)?,
                    );
                }
                Some(Json::Object(object).to_string())
            }
            Payload::FormFields(fields) => Some(form_encode(fields, input, self.max_body)?),
            Payload::Body { text, format } => {
                let body = render_text(text, "body", input, self.max_body)?.into_owned();
                if *format == Format::Json {
                    serde_json::from_str::<serde::de::IgnoredAny>(&body)
                        .map_err(|source| RenderError::JsonBody { source })?;
                }
                Some(body)
            }
            Payload::Query(fields) => {
                append_query(&mut url, &form_encode(fields, input, self.max_body)?);
                None
            }
            Payload::Nothing => None,
        };

        let bytes = url.len()
            + body.as_ref().map_or(0, String::len)
            + headers
                .iter()
                .map(|(name, value)| name.len() + value.len())
                .sum::<usize>();
        if bytes > self.max_body {
            return Err(RenderError::TooLarge {
                bytes: Some(bytes),
                limit: self.max_body,
            });
        }
        if body.is_some() && !has_content_type {
            let format = match &self.payload {
                Payload::Body { format, .. } => *format,
                Payload::FormFields(_) => Format::Form,
                _ => Format::Json,
            };
            headers.push(("content-type".to_string(), content_type(format).to_string()));
        }
        Ok(Request {
            method: self.method.as_str().to_string(),
            url,
            headers,
            body,
        })
    }
}

fn content_type(format: Format) -> &'static str {
    match format {
        Format::Json => "application/json",
        Format::Form => "application/x-www-form-urlencoded",
        Format::Text => "text/plain; charset=utf-8",
    }
}

fn render_text<'t>(
    text: &'t Text,
    key: &str,
    input: &RenderInput<'_>,
    limit: usize,
) -> Result<Cow<'t, str>, RenderError> {
    text.render_within(input.globals, limit)
        .map_err(|failure| match failure {
            RenderFailure::TooLarge => RenderError::TooLarge { bytes: None, limit },
            RenderFailure::Liquid(source) => RenderError::template(key, source),
        })
}

fn field_value(field: &Field, input: &RenderInput<'_>, limit: usize) -> Result<Json, RenderError> {
    match &field.value {
        FieldValue::Path(path) => path
            .lookup(input.envelope, input.webhook)
            .map_err(|reason| RenderError::Path {
                key: field.key.clone(),
                reason,
            }),
        FieldValue::Template(text) => {
            render_text(text, &field.key, input, limit).map(|text| Json::String(text.into_owned()))
        }
    }
}

/// The URL must be absolute http(s) with a host; a constant URL is checked at load, a
/// rendered one here.
pub(super) fn check_url(url: &str) -> Result<(), RenderError> {
    let problem = match reqwest::Url::parse(url) {
        Ok(parsed) if !matches!(parsed.scheme(), "http" | "https") => {
            format!("scheme {:?} is not http or https", parsed.scheme())
        }
        Ok(parsed) if parsed.host_str().is_none_or(str::is_empty) => "no host".to_string(),
        Ok(_) => return Ok(()),
        Err(error) => error.to_string(),
    };
    let shown: String = mask_url_password(url).chars().take(120).collect();
    Err(RenderError::Url {
        reason: format!("{shown:?} is not an absolute http:// or https:// URL: {problem}"),
    })
}

/// `application/x-www-form-urlencoded` text of the fields, in order. Strings are sent as
/// they are; null as the empty string; numbers, booleans, arrays and objects as JSON text.
fn form_encode(
    fields: &[Field],
    input: &RenderInput<'_>,
    limit: usize,
) -> Result<String, RenderError> {
    let mut encoded = String::new();
    for field in fields {
        let value = field_value(field, input, limit)?;
        if !encoded.is_empty() {
            encoded.push('&');
        }
        form_escape_into(&mut encoded, &field.name);
        encoded.push('=');
        match &value {
            Json::String(text) => form_escape_into(&mut encoded, text),
            Json::Null => {}
            other => form_escape_into(&mut encoded, &other.to_string()),
        }
    }
    Ok(encoded)
}

/// Form encoding (WHATWG `application/x-www-form-urlencoded`): unreserved characters
/// kept, space as `+`, every other byte of the UTF-8 text as `%XX`.
pub(super) fn form_escape_into(encoded: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                encoded.push(char::from(byte));
            }
            b' ' => encoded.push('+'),
            _ => {
                encoded.push('%');
                encoded.push(char::from(HEX[usize::from(byte >> 4)]));
                encoded.push(char::from(HEX[usize::from(byte & 0x0F)]));
            }
        }
    }
}

/// Adds `query` to `url` with `?` or `&`, before any `#fragment`.
fn append_query(url: &mut String, query: &str) {
    if query.is_empty() {
        return;
    }
    let fragment = url.find('#').map(|start| url.split_off(start));
    let separator = match url.find('?') {
        None => "?",
        Some(start) if start + 1 == url.len() || url.ends_with('&') => "",
        Some(_) => "&",
    };
    url.push_str(separator);
    url.push_str(query);
    if let Some(fragment) = fragment {
        url.push_str(&fragment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str) -> String {
        let mut encoded = String::new();
        form_escape_into(&mut encoded, text);
        encoded
    }

    #[test]
    fn form_escaping() {
        assert_eq!(escaped("a b&c=d"), "a+b%26c%3Dd");
        assert_eq!(escaped("Az09-._~"), "Az09-._~");
        assert_eq!(escaped("+1 (555)"), "%2B1+%28555%29");
        assert_eq!(escaped("é/ü"), "%C3%A9%2F%C3%BC");
    }

    #[test]
    fn query_strings_are_appended_before_the_fragment() {
        let appended = |url: &str| {
            let mut url = url.to_string();
            append_query(&mut url, "a=1");
            url
        };
        assert_eq!(appended("https://x.test/p"), "https://x.test/p?a=1");
        assert_eq!(appended("https://x.test/p?k=v"), "https://x.test/p?k=v&a=1");
        assert_eq!(appended("https://x.test/p?"), "https://x.test/p?a=1");
        assert_eq!(appended("https://x.test/p#top"), "https://x.test/p?a=1#top");
    }

    #[test]
    fn urls_must_be_absolute_http() {
        assert!(check_url("https://example.com/a").is_ok());
        assert!(check_url("http://127.0.0.1:8080").is_ok());
        let message = check_url("ftp://example.com").unwrap_err().to_string();
        assert_eq!(
            message,
            "url: \"ftp://example.com\" is not an absolute http:// or https:// URL: \
             scheme \"ftp\" is not http or https"
        );
        assert!(check_url("/orders/1").is_err());
        assert!(
            check_url("https://user:pa55@")
                .unwrap_err()
                .to_string()
                .contains("••••")
        );
    }
}
