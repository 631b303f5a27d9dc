//! Compiling a webhook's templates once, at load, reporting every mistake by key path.

use std::path::Path;

use liquid::Parser;

use super::path::FieldPath;
use super::request::{Field, FieldValue, Payload, RenderError, RequestTemplate, check_url};
use super::template::{Condition, Text, compile_condition, has_markup};
use crate::change::Action;
use crate::config::{ConfigError, Format, Includes, WebhookConfig};

/// A webhook ready to route: its matching rules and its compiled request.
#[derive(Debug)]
pub(super) struct CompiledWebhook {
    pub(super) name: String,
    pub(super) model: String,
    pub(super) active: bool,
    pub(super) on: Vec<Action>,
    pub(super) columns: Option<Vec<String>>,
    /// The relations its `item` carries, looked up before it is rendered.
    pub(super) include: Includes,
    pub(super) when: Option<Condition>,
    pub(super) request: RequestTemplate,
    /// Whether any template needs the Liquid context; without one, no context is built.
    pub(super) needs_context: bool,
}

/// Collects the problems of one webhook under `webhooks[index]`.
struct Problems<'a> {
    file: &'a Path,
    prefix: String,
    errors: &'a mut Vec<ConfigError>,
}

impl Problems<'_> {
    fn report(&mut self, relative_key: &str, reason: String) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            key: format!("{}.{relative_key}", self.prefix),
            reason,
        });
    }

    fn text(&mut self, parser: &Parser, relative_key: &str, source: &str) -> Option<Text> {
        Text::compile(parser, source)
            .map_err(|reason| self.report(relative_key, reason))
            .ok()
    }
}

/// `None` when the webhook has problems, each added to `errors`.
pub(super) fn compile_webhook(
    parser: &Parser,
    file: &Path,
    index: usize,
    webhook: &WebhookConfig,
    errors: &mut Vec<ConfigError>,
) -> Option<CompiledWebhook> {
    let errors_before = errors.len();
    let mut problems = Problems {
        file,
        prefix: format!("webhooks[{index}]"),
        errors,
    };

    let url = problems.text(parser, "url", &webhook.url);
    if let Some(Text::Constant(constant)) = &url
        && let Err(RenderError::Url { reason }) = check_url(constant)
    {
        problems.report("url", reason);
    }

    let mut headers = Vec::with_capacity(webhook.headers.len());
    for (name, value) in &webhook.headers {
        let key = key_path("headers", name);
        if let Some(text) = problems.text(parser, &key, value) {
            headers.push((name.clone(), key, text));
        }
    }

    let fields = webhook.fields.as_ref().map(|fields| {
        fields
            .iter()
            .filter_map(|(name, source)| compile_field(parser, &mut problems, name, source))
            .collect::<Vec<_>>()
    });
    let body = webhook.body.as_ref().and_then(|source| {
        let text = problems.text(parser, "body", source)?;
        if webhook.format == Format::Json
            && let Text::Constant(constant) = &text
            && let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(constant)
        {
            problems.report("body", format!("not valid JSON: {error}"));
        }
        Some(text)
    });
    let payload = payload(webhook, fields, body, &mut problems);

    let when = webhook.when.as_ref().and_then(|condition| {
        compile_condition(parser, condition)
            .map_err(|reason| problems.report("when", reason))
            .ok()
    });

    if problems.errors.len() > errors_before {
        return None;
    }
    let request = RequestTemplate {
        method: webhook.method,
        url: url?,
        headers,
        payload: payload?,
        max_body: webhook.delivery.max_body,
    };
    Some(CompiledWebhook {
        name: webhook.name.clone(),
        model: webhook.model.clone(),
        active: webhook.active,
        on: webhook.on.clone(),
        columns: webhook.columns.clone(),
        include: webhook.include.clone(),
        needs_context: when.is_some() || request.has_templates(),
        when,
        request,
    })
}

/// A value with Liquid markup is a template; any other value is a path. `{%` counts as
/// markup too, since no path can contain it.
fn compile_field(
    parser: &Parser,
    problems: &mut Problems<'_>,
    name: &str,
    source: &str,
) -> Option<Field> {
    let key = key_path("fields", name);
    let value = if has_markup(source) {
        FieldValue::Template(problems.text(parser, &key, source)?)
    } else {
        match FieldPath::parse(source) {
            Ok(path) => FieldValue::Path(path),
            Err(reason) => {
                problems.report(&key, reason);
                return None;
            }
        }
    };
    Some(Field {
        name: name.to_string(),
        key,
        value,
    })
}

/// What carries the data; `None` when `fields` or `body` did not compile (already
/// reported). Configuration loading already rejects the combinations that make no sense
/// (fields with body, text with fields, form without either, a body on GET or DELETE);
/// they are reported again here rather than assumed away.
fn payload(
    webhook: &WebhookConfig,
    fields: Option<Vec<Field>>,
    body: Option<Text>,
    problems: &mut Problems<'_>,
) -> Option<Payload> {
    let fields_failed = webhook.fields.as_ref().map(Vec::len) != fields.as_ref().map(Vec::len);
    if fields_failed || (webhook.body.is_some() && body.is_none()) {
        return None;
    }
    if !webhook.method.sends_body() {
        if body.is_some() {
            problems.report(
                "body",
                format!("method {} sends no body", webhook.method.as_str()),
            );
            return None;
        }
        return Some(fields.map_or(Payload::Nothing, Payload::Query));
    }
    match (webhook.format, fields, body) {
        (_, Some(_), Some(_)) => {
            problems.report("body", "fields and body cannot both be set".to_string());
            None
        }
        (Format::Json, Some(fields), None) => Some(Payload::JsonFields(fields)),
        (Format::Form, Some(fields), None) => Some(Payload::FormFields(fields)),
        (format, None, Some(text)) => Some(Payload::Body { text, format }),
        (Format::Json, None, None) => Some(Payload::Envelope),
        (format, _, None) => {
            let needed = match format {
                Format::Form => "fields or body",
                _ => "a body (not fields)",
            };
            problems.report(
                "format",
                format!("format {:?} needs {needed}", format.as_str()),
            );
            None
        }
    }
}

/// `headers.Authorization`; a key that TOML cannot write bare is quoted, as configuration
/// messages do.
fn key_path(parent: &str, key: &str) -> String {
    let is_bare = !key.is_empty()
        && key
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
    if is_bare {
        format!("{parent}.{key}")
    } else {
        format!("{parent}.{key:?}")
    }
}
