//! Time as rowhook keeps and shows it: Unix milliseconds in the store, RFC 3339 in UTC
//! wherever a person or a receiver reads it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

/// `time` in milliseconds since the Unix epoch (0 before 1970, saturating far ahead).
pub fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Now, in microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| i64::try_from(since.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// RFC 3339 (UTC, microseconds) of a Unix time in milliseconds.
pub fn rfc3339_from_unix_ms(unix_ms: u64) -> String {
    rfc3339_from_unix_micros(i64::try_from(unix_ms.saturating_mul(1000)).unwrap_or(i64::MAX))
}

/// Formats a Unix time in microseconds as RFC 3339 in UTC with six fractional digits:
/// `2026-11-22T10:00:00.123456Z`. Years outside 0000–9999 (beyond RFC 3339) are
/// written with as many digits as they need.
pub fn rfc3339_from_unix_micros(micros: i64) -> String {
    const MICROS_PER_SECOND: i64 = 1_000_000;
    const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;
    // Euclidean division keeps the time of day positive before 1970.
    let days = micros.div_euclid(MICROS_PER_DAY);
    let micros_of_day = micros.rem_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let seconds = micros_of_day / MICROS_PER_SECOND;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        micros_of_day % MICROS_PER_SECOND
    )
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01.
///
/// Counts in 400-year eras (146 097 days each) of years starting on 1 March, so that
/// the leap day falls at the end of a year and month lengths follow a fixed pattern.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    const DAYS_PER_ERA: i64 = 146_097;
    // 1970-01-01 is day 719 468 counted from 0000-03-01.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(DAYS_PER_ERA);
    let day_of_era = shifted.rem_euclid(DAYS_PER_ERA); // 0 ..= 146 096
    // Every 4th year is a leap year, except every 100th, except every 400th.
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months from March: lengths 31 30 31 30 31 31 30 31 30 31 31 28/29 repeat every 153 days per 5 months.
    let month_from_march = (5 * day_of_year + 2) / 153; // 0 ..= 11
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Reads what [`rfc3339_from_unix_micros`] writes (`2026-11-22T10:00:00.123456Z`, any
/// number of fractional digits up to six, or none) back into Unix microseconds. Offsets
/// other than `Z` are not read: rowhook writes UTC only.
pub fn unix_micros_from_rfc3339(text: &str) -> Option<i64> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let mut date_parts = date.splitn(3, '-').map(str::parse::<i64>);
    let (year, month, day) = (
        date_parts.next()?.ok()?,
        date_parts.next()?.ok()?,
        date_parts.next()?.ok()?,
    );
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut clock_parts = clock.splitn(3, ':').map(str::parse::<i64>);
    let (hour, minute, second) = (
        clock_parts.next()?.ok()?,
        clock_parts.next()?.ok()?,
        clock_parts.next()?.ok()?,
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || fraction.len() > 6 {
        return None;
    }
    if !fraction.bytes().all(|byte| byte.is_ascii_digit())
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let micros: i64 = format!("{fraction:0<6}").parse().ok()?;
    let days = days_from_civil(year, month as u32, day as u32);
    Some(((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000 + micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date: the inverse of `civil_from_days`.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let shifted_year = if month <= 2 { year - 1 } else { year };
    let era = shifted_year.div_euclid(400);
    let year_of_era = shifted_year.rem_euclid(400);
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_micros_format_as_rfc3339() {
        let cases = [
            (0, "1970-01-01T00:00:00.000000Z"),
            (-1, "1969-12-31T23:59:59.999999Z"),
            (1_795_341_600_123_456, "2026-11-22T10:00:00.123456Z"),
            (951_782_400_000_000, "2000-02-29T00:00:00.000000Z"),
            (1_709_210_096_789_012, "2024-02-29T12:34:56.789012Z"),
            (-2_203_891_200_000_000, "1900-03-01T00:00:00.000000Z"),
            (-2_203_891_200_000_001, "1900-02-28T23:59:59.999999Z"),
            (-11_670_998_400_000_000, "1600-02-29T00:00:00.000000Z"),
            (-14_182_940_000_000, "1969-07-20T20:17:40.000000Z"),
            (-62_135_596_800_000_000, "0001-01-01T00:00:00.000000Z"),
            (253_402_300_799_999_999, "9999-12-31T23:59:59.999999Z"),
        ];
        for (micros, expected) in cases {
            assert_eq!(rfc3339_from_unix_micros(micros), expected, "{micros}");
        }
        // The extremes do not panic.
        let _ = rfc3339_from_unix_micros(i64::MIN);
        let _ = rfc3339_from_unix_micros(i64::MAX);
    }

    #[test]
    fn civil_days_walk_the_calendar_without_gaps() {
        let is_leap = |year: i64| (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let month_length = |year: i64, month: u32| match month {
            2 if is_leap(year) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        // From 0001-01-01 to past 2400-03-01, day by day.
        let mut expected = (1, 1, 1);
        for days in -719_162..157_000 {
            assert_eq!(civil_from_days(days), expected, "day {days}");
            let (year, month, day) = expected;
            expected = if day < month_length(year, month) {
                (year, month, day + 1)
            } else if month < 12 {
                (year, month + 1, 1)
            } else {
                (year + 1, 1, 1)
            };
        }
    }

    #[test]
    fn rfc3339_reads_back_what_it_writes() {
        for micros in [
            0,
            -1,
            1_795_341_600_123_456,
            951_782_400_000_000,
            -62_135_596_800_000_000,
        ] {
            let text = rfc3339_from_unix_micros(micros);
            assert_eq!(unix_micros_from_rfc3339(&text), Some(micros), "{text}");
        }
        assert_eq!(
            unix_micros_from_rfc3339("2026-11-22T10:00:00.5Z"),
            Some(1_795_341_600_500_000)
        );
        assert_eq!(
            unix_micros_from_rfc3339("2026-11-22T10:00:00Z"),
            Some(1_795_341_600_000_000)
        );
        for bad in [
            "",
            "2026-11-22",
            "2026-11-22T10:00:00+02:00",
            "2026-13-01T00:00:00Z",
            "x-1-1T0:0:0Z",
        ] {
            assert_eq!(unix_micros_from_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn milliseconds_show_as_rfc3339() {
        assert_eq!(rfc3339_from_unix_ms(1_000), "1970-01-01T00:00:01.000000Z");
        assert!(now_ms() > 1_700_000_000_000);
    }
}
