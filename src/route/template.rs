//! Liquid templates: the parser (standard library plus `json`), compiled once at load,
//! and text that is either constant or a template.

use std::borrow::Cow;
use std::fmt;

use liquid::{ObjectView, Parser, ParserBuilder, Template};
use liquid_core::{
    Display_filter, Filter, FilterReflection, ParseFilter, Result as LiquidResult, Runtime, Value,
    ValueView,
};
use serde_json::Value as Json;

use super::date_filter::DateFilterParser;
use super::diagnostic::{self, Wrapper};

/// Whether `text` holds Liquid markup. Text without it is sent as written, with no parse
/// and no render.
pub(crate) fn has_markup(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// The parser every template is compiled with: Liquid's standard library plus `json`,
/// and a `date` that also reads RFC 3339 (replacing the standard one).
pub(super) fn parser() -> Result<Parser, liquid::Error> {
    ParserBuilder::with_stdlib()
        .filter(JsonFilterParser)
        .filter(DateFilterParser)
        .build()
}

/// Compiles `source`; the error is one line, with the position in `source` when known.
pub(super) fn compile(parser: &Parser, source: &str) -> Result<Template, String> {
    parser
        .parse(source)
        .map_err(|error| diagnostic::describe_compile_error(&error, source, Wrapper::None))
}

/// Compiles a `when` condition as the tag that evaluates it; see [`Condition`].
pub(super) fn compile_condition(parser: &Parser, condition: &str) -> Result<Condition, String> {
    let wrapper = Wrapper::Condition;
    let source = wrapper.wrap(condition);
    parser
        .parse(&source)
        .map(|template| Condition {
            source: condition.to_string(),
            template,
        })
        .map_err(|error| diagnostic::describe_compile_error(&error, condition, wrapper))
}

/// A `when` expression such as `item.status == 'paid'`, compiled as
/// `{% if <when> %}true{% endif %}`: Liquid's own truthiness and comparisons. A missing key
/// of an object is false; a key of nil (`old.status` on a create) or `contains` on nil
/// (`changed` when unknown) is a render error, which `old and …` or `changed and …` guard
/// against.
pub(super) struct Condition {
    source: String,
    template: Template,
}

impl fmt::Debug for Condition {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_tuple("Condition")
            .field(&self.source)
            .finish()
    }
}

impl Condition {
    /// `globals` is present whenever the webhook has a condition.
    pub(super) fn holds(&self, globals: Option<&dyn ObjectView>) -> Result<bool, liquid::Error> {
        let rendered = match globals {
            Some(globals) => self.template.render(globals)?,
            None => self.template.render(&liquid::Object::new())?,
        };
        Ok(rendered == "true")
    }
}

/// A url, header value, `fields` template or body.
pub(super) enum Text {
    Constant(String),
    Template { source: String, template: Template },
}

impl fmt::Debug for Text {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Text::Constant(text) => formatter.debug_tuple("Constant").field(text).finish(),
            Text::Template { source, .. } => {
                formatter.debug_tuple("Template").field(source).finish()
            }
        }
    }
}

impl Text {
    pub(super) fn compile(parser: &Parser, source: &str) -> Result<Text, String> {
        if has_markup(source) {
            compile(parser, source).map(|template| Text::Template {
                source: source.to_string(),
                template,
            })
        } else {
            Ok(Text::Constant(source.to_string()))
        }
    }

    pub(super) fn is_template(&self) -> bool {
        matches!(self, Text::Template { .. })
    }

    /// The text for this event, given up as soon as it grows past `limit` bytes (a
    /// template looping over a large row must not fill memory first).
    pub(super) fn render_within(
        &self,
        globals: Option<&dyn ObjectView>,
        limit: usize,
    ) -> Result<Cow<'_, str>, RenderFailure> {
        let template = match self {
            Text::Constant(text) if text.len() > limit => return Err(RenderFailure::TooLarge),
            Text::Constant(text) => return Ok(Cow::Borrowed(text)),
            Text::Template { template, .. } => template,
        };
        let empty = liquid::Object::new();
        let globals = globals.unwrap_or(&empty);
        let mut output = BoundedText::new(limit);
        match template.render_to(&mut output, globals) {
            Ok(()) => String::from_utf8(output.bytes)
                .map(Cow::Owned)
                .map_err(|_| {
                    RenderFailure::Liquid(liquid::Error::with_msg("rendered text is not UTF-8"))
                }),
            Err(_) if output.exceeded => Err(RenderFailure::TooLarge),
            Err(error) => Err(RenderFailure::Liquid(error)),
        }
    }
}

/// Why a text could not be rendered.
pub(super) enum RenderFailure {
    TooLarge,
    Liquid(liquid::Error),
}

/// Where a template renders to: refuses bytes past its limit.
struct BoundedText {
    bytes: Vec<u8>,
    limit: usize,
    exceeded: bool,
}

impl BoundedText {
    fn new(limit: usize) -> BoundedText {
        BoundedText {
            bytes: Vec::new(),
            limit,
            exceeded: false,
        }
    }
}

impl std::io::Write for BoundedText {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buffer.len() > self.limit {
            self.exceeded = true;
            return Err(std::io::Error::other("the rendered text is too large"));
        }
        self.bytes.extend_from_slice(buffer);
        Ok(buffer.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `{{ value | json }}`: the value as JSON text. Strings come out quoted and escaped, nil
/// as `null`, arrays and objects as JSON. liquid 0.26 holds objects in hash maps, whose
/// order changes from run to run, so object keys are written sorted.
#[derive(Clone, ParseFilter, FilterReflection)]
#[filter(
    name = "json",
    description = "Outputs the value as JSON text: strings quoted and escaped, nil as null.",
    parsed(JsonFilter)
)]
pub(super) struct JsonFilterParser;

#[derive(Debug, Default, Display_filter)]
#[name = "json"]
struct JsonFilter;

impl Filter for JsonFilter {
    fn evaluate(&self, input: &dyn ValueView, _runtime: &dyn Runtime) -> LiquidResult<Value> {
        let json = to_json(input)?;
        Ok(Value::scalar(json.to_string()))
    }
}

fn to_json(value: &dyn ValueView) -> LiquidResult<Json> {
    if let Some(scalar) = value.as_scalar() {
        // Integers, floats (NaN and infinities become null), booleans and strings map to
        // their JSON kinds; dates become their text.
        return serde_json::to_value(&scalar)
            .map_err(|error| liquid::Error::with_msg(format!("cannot write as JSON: {error}")));
    }
    if let Some(array) = value.as_array() {
        return array
            .values()
            .map(to_json)
            .collect::<LiquidResult<_>>()
            .map(Json::Array);
    }
    if let Some(object) = value.as_object() {
        let mut entries: Vec<_> = object.iter().collect();
        entries.sort_by(|(left, _), (right, _)| left.as_str().cmp(right.as_str()));
        let mut json = serde_json::Map::with_capacity(entries.len());
        for (key, value) in entries {
            json.insert(key.into_owned().into_string(), to_json(value)?);
        }
        return Ok(Json::Object(json));
    }
    // nil, and liquid's `empty`/`blank` literals.
    Ok(Json::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str, globals: &liquid::Object) -> String {
        let parser = parser().unwrap();
        parser.parse(source).unwrap().render(globals).unwrap()
    }

    #[test]
    fn json_filter_writes_json_text() {
        let globals = liquid::object!({
            "text": "say \"hi\"\nbye",
            "number": 42,
            "float": 1.5,
            "flag": true,
            "nothing": nil,
            "list": [1, "two", nil],
        });
        assert_eq!(
            render("{{ text | json }}", &globals),
            r#""say \"hi\"\nbye""#
        );
        assert_eq!(render("{{ number | json }}", &globals), "42");
        assert_eq!(render("{{ float | json }}", &globals), "1.5");
        assert_eq!(render("{{ flag | json }}", &globals), "true");
        assert_eq!(render("{{ nothing | json }}", &globals), "null");
        assert_eq!(render("{{ list | json }}", &globals), r#"[1,"two",null]"#);
        assert_eq!(render("{{ 'a<b' | json }}", &globals), r#""a<b""#);
    }

    #[test]
    fn markup_is_recognised() {
        assert!(has_markup("https://x/{{ item.id }}"));
        assert!(has_markup("{% if item.id %}x{% endif %}"));
        assert!(!has_markup("https://example.com/hook?a={b}"));
    }
}
