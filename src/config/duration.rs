//! Durations written as `<number><unit>`: `200ms`, `5s`, `4m`, `1h`, `7d`.

use std::time::Duration;

use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DurationError {
    #[error("invalid duration {0:?}: expected a number followed by ms, s, m, h or d")]
    Malformed(String),
    #[error("invalid duration {0:?}: too large")]
    TooLarge(String),
}

/// Milliseconds per unit. `ms` comes before `m` and `s` so that suffix matching sees it
/// first.
const UNITS: [(&str, u64); 5] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// Parses a duration; the number is a non-negative integer in decimal digits, with no
/// sign, space or fraction.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let malformed = || DurationError::Malformed(text.to_string());
    let (number, milliseconds_per_unit) = UNITS
        .iter()
        .find_map(|(unit, milliseconds)| {
            text.strip_suffix(unit)
                .map(|number| (number, *milliseconds))
        })
        .ok_or_else(malformed)?;
    if number.is_empty() || !number.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(malformed());
    }
    let too_large = || DurationError::TooLarge(text.to_string());
    let count: u64 = number.parse().map_err(|_| too_large())?;
    let milliseconds = count
        .checked_mul(milliseconds_per_unit)
        .ok_or_else(too_large)?;
    Ok(Duration::from_millis(milliseconds))
}

/// Writes a duration in the largest unit that represents it exactly, so that
/// `format_duration(parse_duration(text)?)` gives back a canonical form of `text`.
pub fn format_duration(duration: Duration) -> String {
    let milliseconds = duration.as_millis();
    if milliseconds == 0 {
        return "0s".to_string();
    }
    UNITS
        .iter()
        .rev()
        .find(|(_, per_unit)| milliseconds.is_multiple_of(u128::from(*per_unit)))
        .map(|(unit, per_unit)| format!("{}{unit}", milliseconds / u128::from(*per_unit)))
        .unwrap_or_else(|| format!("{milliseconds}ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("4m"), Ok(Duration::from_secs(240)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7_200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("0007s"), Ok(Duration::from_secs(7)));
    }

    #[test]
    fn rejects_malformed_text() {
        for text in [
            "", "5", "s", "ms", "5 sec", "5 s", " 5s", "5s ", "-5s", "+5s", "1.5s", "5S", "5sec",
            "5w", "1e3ms", "٣s",
        ] {
            assert_eq!(
                parse_duration(text),
                Err(DurationError::Malformed(text.to_string())),
                "{text:?}"
            );
        }
        assert_eq!(
            parse_duration("5 sec").unwrap_err().to_string(),
            "invalid duration \"5 sec\": expected a number followed by ms, s, m, h or d"
        );
    }

    #[test]
    fn rejects_overflow() {
        assert_eq!(
            parse_duration("99999999999999999999s"),
            Err(DurationError::TooLarge("99999999999999999999s".to_string()))
        );
        assert!(matches!(
            parse_duration("999999999999999d"),
            Err(DurationError::TooLarge(_))
        ));
    }

    #[test]
    fn formats_in_the_largest_exact_unit() {
        for (text, canonical) in [
            ("0ms", "0s"),
            ("200ms", "200ms"),
            ("1500ms", "1500ms"),
            ("5000ms", "5s"),
            ("240s", "4m"),
            ("90s", "90s"),
            ("168h", "7d"),
        ] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), canonical);
        }
        assert_eq!(format_duration(Duration::from_micros(1_500)), "1ms");
    }
}
