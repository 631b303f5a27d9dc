//! liquid's errors, rewritten as one line each: `unknown filter "jsn" (line 1, column 18)`.
//!
//! liquid 0.26 offers its errors only as display text: the message (for syntax errors a
//! pest report with `--> line:column`, the source line and `= reason`), then `from:`
//! traces and `key=value` context lines. The text is taken apart here; where liquid gives
//! no position (unknown filters, unclosed blocks) the offending text is located in the
//! template instead.

/// How the text liquid parsed differs from the text the user wrote.
#[derive(Clone, Copy, Debug)]
pub(super) enum Wrapper {
    None,
    /// `when`: the user's condition inside `{% if … %}true{% endif %}`.
    Condition,
}

const CONDITION_PREFIX: &str = "{% if ";
const CONDITION_SUFFIX: &str = " %}true{% endif %}";

impl Wrapper {
    pub(super) fn wrap(self, source: &str) -> String {
        match self {
            Wrapper::None => source.to_string(),
            Wrapper::Condition => format!("{CONDITION_PREFIX}{source}{CONDITION_SUFFIX}"),
        }
    }

    /// A position in the parsed text as a position in `source`, when it falls inside it.
    fn unwrap_position(self, source: &str, (line, column): (usize, usize)) -> Option<Position> {
        let column = match self {
            Wrapper::None => column,
            Wrapper::Condition if line == 1 => column.checked_sub(CONDITION_PREFIX.len())?,
            Wrapper::Condition => column,
        };
        let line_text = source.split('\n').nth(line.checked_sub(1)?)?;
        let fits = column >= 1 && column <= line_text.chars().count() + 1;
        fits.then_some(Position { line, column })
    }
}

/// One-based line and column (in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Position {
    line: usize,
    column: usize,
}

impl Position {
    fn at_offset(text: &str, offset: usize) -> Position {
        let before = text.get(..offset).unwrap_or(text);
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// The parts of liquid's error text.
#[derive(Debug, Default)]
struct ErrorText<'a> {
    /// From a pest report's `--> line:column`.
    position: Option<(usize, usize)>,
    reason: String,
    /// `key=value` lines of every trace, in order.
    context: Vec<(&'a str, &'a str)>,
    /// `from:` lines.
    traces: Vec<&'a str>,
}

impl<'a> ErrorText<'a> {
    fn parse(text: &'a str) -> ErrorText<'a> {
        let text = text.strip_prefix("liquid: ").unwrap_or(text);
        let mut parsed = ErrorText::default();
        let mut message = Vec::new();
        let mut pest_reason = Vec::new();
        let mut in_message = true;
        for line in text.lines() {
            if line == "  with:" {
                in_message = false;
            } else if let Some(trace) = line.strip_prefix("from: ") {
                in_message = false;
                parsed.traces.push(trace.trim());
            } else if !in_message {
                if let Some((key, value)) = line.trim_start().split_once('=') {
                    parsed.context.push((key, value.trim()));
                }
            } else if let Some(location) = line.trim_start().strip_prefix("--> ") {
                parsed.position = parse_line_column(location);
            } else if let Some(reason) = line.strip_prefix("  = ") {
                pest_reason.push(reason.trim());
            } else if !is_pest_excerpt(line) {
                message.push(line.trim());
            }
        }
        let reason = if pest_reason.is_empty() {
            message
        } else {
            pest_reason
        };
        parsed.reason = reason
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        parsed
    }

    fn context(&self, key: &str) -> Option<&'a str> {
        self.context
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| *value)
    }
}

/// `L:C` from a pest report.
fn parse_line_column(text: &str) -> Option<(usize, usize)> {
    let (line, column) = text.trim().split_once(':')?;
    Some((line.parse().ok()?, column.parse().ok()?))
}

/// The source excerpt of a pest report: `  |`, `  |    ^---` and `12 | text`.
fn is_pest_excerpt(line: &str) -> bool {
    let trimmed = line.trim_start();
    if trimmed.starts_with('|') {
        return true;
    }
    trimmed
        .split_once(" |")
        .is_some_and(|(number, _)| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
}

/// The one-line reason for a template that does not compile. `source` is the text as
/// the user wrote it.
pub(super) fn describe_compile_error(
    error: &liquid::Error,
    source: &str,
    wrapper: Wrapper,
) -> String {
    let text = error.to_string();
    let parsed = ErrorText::parse(&text);
    let pest_position = parsed
        .position
        .and_then(|position| wrapper.unwrap_position(source, position));

    if parsed.position.is_some()
        && let Some((offset, opening)) = unclosed_delimiter(source)
    {
        let closing = if opening == "{{" { "}}" } else { "%}" };
        return with_position(
            format!("unclosed \"{opening}\": no matching \"{closing}\""),
            Some(Position::at_offset(source, offset)),
        );
    }
    // `{% if %}` accepts no filters; pest words this as "unexpected FilterChain".
    if matches!(wrapper, Wrapper::Condition) && parsed.reason.contains("FilterChain") {
        let position = source
            .find('|')
            .map(|offset| Position::at_offset(source, offset));
        return with_position("a condition takes no filters".to_string(), position);
    }
    if let Some(filter) = parsed.context("requested filter") {
        let position = locate_filter(source, filter);
        return with_position(format!("unknown filter \"{filter}\""), position);
    }
    if parsed.reason.starts_with("Unknown tag")
        && let Some(tag) = parsed.context("requested")
    {
        return with_position(format!("unknown tag \"{tag}\""), pest_position);
    }
    if parsed.reason.starts_with("Unclosed block")
        && let Some(block) = closing_tag_name(&parsed.reason)
    {
        let position = locate_unclosed_block(source, block).or(pest_position);
        return with_position(
            format!("unclosed \"{block}\" block: no {{% end{block} %}}"),
            position,
        );
    }
    let position = pest_position.or_else(|| {
        let filter = parsed.context("filter")?.split_whitespace().next()?;
        locate_filter(source, filter)
    });
    with_position(generic(&parsed), position)
}

/// The one-line reason for a template that failed while rendering an event.
pub(super) fn describe_render_error(error: &liquid::Error) -> String {
    let text = error.to_string();
    let parsed = ErrorText::parse(&text);
    match (
        parsed.reason.as_str(),
        parsed.context("requested variable"),
        parsed.context("requested index"),
    ) {
        ("Unknown variable", Some(variable), _) => format!("unknown variable \"{variable}\""),
        ("Unknown index", _, Some(index)) => match parsed.context("variable") {
            Some(variable) => format!("unknown index \"{index}\" in {variable}"),
            None => format!("unknown index \"{index}\""),
        },
        _ => generic(&parsed),
    }
}

/// The reason in lower case, its `cause`, then the rest of the context; liquid's long
/// lists of what is available are left out.
fn generic(parsed: &ErrorText<'_>) -> String {
    let mut reason = lower_first(parsed.reason.trim_end_matches('.'));
    if reason.is_empty() {
        reason = "invalid template".to_string();
    }
    if let Some(cause) = parsed.context("cause") {
        reason = format!("{reason}: {cause}");
    }
    let details: Vec<String> = parsed
        .traces
        .iter()
        .map(|trace| lower_first(trace))
        .chain(
            parsed
                .context
                .iter()
                .filter(|(key, _)| *key != "cause" && !key.starts_with("available"))
                .map(|(key, value)| format!("{key} {}", shortened(value))),
        )
        .collect();
    if details.is_empty() {
        reason
    } else {
        format!("{reason} ({})", details.join(", "))
    }
}

fn with_position(reason: String, position: Option<Position>) -> String {
    match position {
        Some(Position { line, column }) => format!("{reason} (line {line}, column {column})"),
        None => reason,
    }
}

fn lower_first(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_lowercase().chain(characters).collect(),
        None => String::new(),
    }
}

/// Context values can quote row data: keep the line short.
fn shortened(text: &str) -> String {
    const LIMIT: usize = 60;
    if text.chars().count() <= LIMIT {
        text.to_string()
    } else {
        let kept: String = text.chars().take(LIMIT).collect();
        format!("{kept}…")
    }
}

/// The first `{{` or `{%` that no `}}` or `%}` closes, with its byte offset.
fn unclosed_delimiter(source: &str) -> Option<(usize, &'static str)> {
    let mut offset = 0;
    while let Some(found) = source[offset..].find('{') {
        let start = offset + found;
        let rest = &source[start..];
        let (opening, closing) = if rest.starts_with("{{") {
            ("{{", "}}")
        } else if rest.starts_with("{%") {
            ("{%", "%}")
        } else {
            offset = start + 1;
            continue;
        };
        match rest[2..].find(closing) {
            Some(end) => offset = start + 2 + end + 2,
            None => return Some((start, opening)),
        }
    }
    None
}

/// `if` from `Unclosed block. {% endif %} tag expected.`
fn closing_tag_name(reason: &str) -> Option<&str> {
    let after = &reason[reason.find("{% end")? + "{% end".len()..];
    let name = &after[..after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?];
    (!name.is_empty()).then_some(name)
}

/// The filter's name after a `|`.
fn locate_filter(source: &str, filter: &str) -> Option<Position> {
    let mut offset = 0;
    while let Some(found) = source[offset..].find('|') {
        let after_bar = offset + found + 1;
        let rest = &source[after_bar..];
        let name_start = after_bar + (rest.len() - rest.trim_start().len());
        if let Some(after_name) = source[name_start..].strip_prefix(filter)
            && after_name
                .chars()
                .next()
                .is_none_or(|next| !(next.is_alphanumeric() || next == '_'))
        {
            return Some(Position::at_offset(source, name_start));
        }
        offset = after_bar;
    }
    None
}

/// The opening tag of the innermost `block` left open, found by pairing `{% block` with
/// `{% endblock` in order.
fn locate_unclosed_block(source: &str, block: &str) -> Option<Position> {
    let mut open = Vec::new();
    let mut offset = 0;
    while let Some(found) = source[offset..].find("{%") {
        let start = offset + found;
        let inside = source[start + 2..].trim_start_matches('-').trim_start();
        let word: &str = inside
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .next()
            .unwrap_or_default();
        if word == block {
            open.push(start);
        } else if word.strip_prefix("end") == Some(block) {
            open.pop();
        }
        offset = start + 2;
    }
    open.last().map(|&start| Position::at_offset(source, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_found_by_whole_name_in_characters() {
        let source = "é {{ x | jsonish | é | json }}\n{{ y | json }}";
        assert_eq!(
            locate_filter(source, "json"),
            Some(Position {
                line: 1,
                column: 24
            })
        );
        assert_eq!(locate_filter(source, "nope"), None);
    }

    #[test]
    fn unclosed_delimiters_and_blocks_are_found() {
        assert_eq!(unclosed_delimiter("{{ a }} {% b %} {{ c"), Some((16, "{{")));
        assert_eq!(unclosed_delimiter("{{ a }} {%- b"), Some((8, "{%")));
        assert_eq!(unclosed_delimiter("{ {{ a }} }"), None);
        let source = "{% if a %}{% if b %}x{% endif %}";
        assert_eq!(
            locate_unclosed_block(source, "if"),
            Some(Position { line: 1, column: 1 })
        );
        assert_eq!(
            closing_tag_name("Unclosed block. {% endfor %} tag expected."),
            Some("for")
        );
    }

    #[test]
    fn condition_positions_are_shifted_into_the_condition() {
        let wrapper = Wrapper::Condition;
        assert_eq!(
            wrapper.unwrap_position("item.a = 1", (1, 14)),
            Some(Position { line: 1, column: 8 })
        );
        // Inside ` %}true{% endif %}`: not the user's text.
        assert_eq!(wrapper.unwrap_position("item.a", (1, 20)), None);
    }
}
