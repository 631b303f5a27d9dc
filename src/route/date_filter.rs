//! `{{ value | date: "%d.%m.%Y" }}` that also reads the timestamps rowhook itself writes.
//! liquid 0.26's own `date` understands `2026-11-22 10:00:00 +0000` but returns RFC 3339
//! text (`2026-11-22T10:00:00.123456Z`, what `item.created_at` holds) unchanged, silently.

use liquid_core::model::DateTime;
use liquid_core::{
    Display_filter, Error, Expression, Filter, FilterParameters, FilterReflection,
    FromFilterParameters, ParseFilter, Result, Runtime, Value, ValueView,
};

#[derive(Debug, FilterParameters)]
struct DateArguments {
    #[parameter(
        description = "The strftime format to write the date in.",
        arg_type = "str"
    )]
    format: Expression,
}

#[derive(Clone, ParseFilter, FilterReflection)]
#[filter(
    name = "date",
    description = "Formats a date: RFC 3339 text, Liquid's date forms, or \"now\".",
    parameters(DateArguments),
    parsed(DateFilter)
)]
pub(super) struct DateFilterParser;

#[derive(Debug, FromFilterParameters, Display_filter)]
#[name = "date"]
struct DateFilter {
    #[parameters]
    arguments: DateArguments,
}

impl Filter for DateFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        let arguments = self.arguments.evaluate(runtime)?;
        let Some(scalar) = input.as_scalar() else {
            return Ok(input.to_value());
        };
        let date = liquid_date_text(&scalar.to_kstr())
            .and_then(|text| DateTime::from_str(&text))
            .or_else(|| scalar.to_date_time());
        match date {
            Some(date) if !arguments.format.is_empty() => date
                .format(arguments.format.as_str())
                .map(Value::scalar)
                .map_err(|_| {
                    Error::with_msg(format!("invalid date format {:?}", arguments.format))
                }),
            // Like Liquid's own: what is not a date passes through unchanged.
            _ => Ok(input.to_value()),
        }
    }
}

/// RFC 3339 (`2026-11-22T10:00:00.123456Z`, `…+02:00`, a date alone, or a timestamp
/// without offset, taken as UTC) in the form liquid parses: `2026-11-22 10:00:00.123456
/// +0000`. `None` for anything else.
fn liquid_date_text(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let is_date = bytes.len() >= 10
        && bytes[..10]
            .iter()
            .enumerate()
            .all(|(index, byte)| match index {
                4 | 7 => *byte == b'-',
                _ => byte.is_ascii_digit(),
            });
    if !is_date {
        return None;
    }
    let (date, rest) = text.split_at(10);
    if rest.is_empty() {
        return Some(format!("{date} 00:00:00 +0000"));
    }
    let time = rest.strip_prefix(['T', 't', ' '])?;
    let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
        None => (time, "+0000".to_string()),
        Some(at) => {
            let (clock, zone) = time.split_at(at);
            let offset = match zone {
                "Z" | "z" => "+0000".to_string(),
                _ => zone.replace(':', ""),
            };
            (clock, offset)
        }
    };
    let valid_offset = offset.len() == 5 && offset[1..].bytes().all(|byte| byte.is_ascii_digit());
    let valid_clock = clock.len() >= 8
        && clock
            .bytes()
            .all(|byte| byte.is_ascii_digit() || byte == b':' || byte == b'.');
    (valid_offset && valid_clock).then(|| format!("{date} {clock} {offset}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str) -> String {
        let parser = super::super::template::parser().unwrap();
        let globals = liquid::object!({
            "utc": "2026-11-22T10:00:00.123456Z",
            "zoned": "2026-11-22T23:30:00+02:00",
            "local": "2026-11-22T10:00:00.5",
            "day": "2026-11-22",
            "classic": "2026-11-22 10:00:00 +0000",
            "word": "soon",
        });
        parser.parse(source).unwrap().render(&globals).unwrap()
    }

    #[test]
    fn rfc3339_text_is_a_date() {
        assert_eq!(
            render("{{ utc | date: '%d.%m.%Y %H:%M' }}"),
            "22.11.2026 10:00"
        );
        assert_eq!(
            render("{{ zoned | date: '%Y-%m-%d %H:%M %z' }}"),
            "2026-11-22 23:30 +0200"
        );
        assert_eq!(render("{{ local | date: '%H:%M:%S' }}"), "10:00:00");
        assert_eq!(render("{{ day | date: '%A' }}"), "Sunday");
    }

    #[test]
    fn liquid_forms_and_now_still_work_and_other_text_passes_through() {
        assert_eq!(render("{{ classic | date: '%Y' }}"), "2026");
        assert_eq!(render("{{ 'now' | date: '%Y' }}").len(), 4);
        assert_eq!(render("{{ word | date: '%Y' }}"), "soon");
        assert_eq!(render("{{ '2026-13-99' | date: '%Y' }}"), "2026-13-99");
    }

    #[test]
    fn the_conversion() {
        assert_eq!(
            liquid_date_text("2026-11-22T10:00:00.123456Z").as_deref(),
            Some("2026-11-22 10:00:00.123456 +0000")
        );
        assert_eq!(
            liquid_date_text("2026-11-22T10:00:00-05:30").as_deref(),
            Some("2026-11-22 10:00:00 -0530")
        );
        assert_eq!(liquid_date_text("22.11.2026"), None);
        assert_eq!(liquid_date_text("2026-11-22Tnoon"), None);
    }
}
