//! Rate limits (CONTRACT §9): `rate = "50/s"` parsed, and the token bucket that spaces a
//! webhook's attempts. Pure: time comes in as microseconds, so the schedule is tested
//! without a clock.

use std::fmt;
use std::time::Duration;

/// At most `count` attempts started per `per`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl fmt::Display for Rate {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "m",
            _ => "h",
        };
        write!(formatter, "{}/{unit}", self.count)
    }
}

/// `"50/s"`, `"300/m"`, `"1000/h"`: a whole number from 1 and a unit.
pub fn parse_rate(text: &str) -> Result<Rate, String> {
    let invalid =
        || format!("{text:?}: expected a number of attempts per s, m or h, such as \"50/s\"");
    let (count, unit) = text.trim().split_once('/').ok_or_else(invalid)?;
    let count: u32 = count.trim().parse().map_err(|_| invalid())?;
    if count == 0 {
        return Err(format!("{text:?}: at least 1 attempt per period"));
    }
    let per = match unit.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3_600),
        _ => return Err(invalid()),
    };
    Ok(Rate { count, per })
}

/// Attempts evenly spaced at the rate, with no burst beyond one: a backlog reaches the
/// endpoint at the rate, not at the webhook's concurrency.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    /// Microseconds between two attempts.
    interval_micros: u64,
    /// When the next attempt may start.
    next_micros: u64,
}

impl TokenBucket {
    pub fn new(rate: Rate) -> TokenBucket {
        let interval_micros = (rate.per.as_micros() as u64 / u64::from(rate.count)).max(1);
        TokenBucket {
            interval_micros,
            next_micros: 0,
        }
    }

    /// A bucket whose next attempt may start at `next_micros`, as kept by a store that
    /// several instances share.
    pub fn resume(rate: Rate, next_micros: u64) -> TokenBucket {
        TokenBucket {
            next_micros,
            ..TokenBucket::new(rate)
        }
    }

    /// When the next attempt may start, to be kept.
    pub fn next_micros(&self) -> u64 {
        self.next_micros
    }

    /// Where the next attempt's slot starts: time not used does not pile up into a
    /// burst — after idleness one attempt is owed besides the one due now.
    fn from(&self, now_micros: u64) -> u64 {
        self.next_micros
            .max(now_micros.saturating_sub(self.interval_micros))
    }

    /// How many attempts may start at `now`, at most `wanted`; nothing is taken.
    pub fn available(&self, now_micros: u64, wanted: usize) -> usize {
        let from = self.from(now_micros);
        if wanted == 0 || from > now_micros {
            return 0;
        }
        (((now_micros - from) / self.interval_micros + 1) as usize).min(wanted)
    }

    /// Records `started` attempts at `now` (no more than [`Self::available`] said).
    pub fn spend(&mut self, now_micros: u64, started: usize) {
        if started > 0 {
            self.next_micros = self.from(now_micros) + started as u64 * self.interval_micros;
        }
    }

    /// [`Self::available`] and [`Self::spend`] at once.
    pub fn take(&mut self, now_micros: u64, wanted: usize) -> usize {
        let taken = self.available(now_micros, wanted);
        self.spend(now_micros, taken);
        taken
    }

    /// How long until the next attempt may start.
    pub fn wait(&self, now_micros: u64) -> Duration {
        Duration::from_micros(self.next_micros.saturating_sub(now_micros))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print() {
        let rate = parse_rate("50/s").unwrap();
        assert_eq!(
            rate,
            Rate {
                count: 50,
                per: Duration::from_secs(1)
            }
        );
        assert_eq!(rate.to_string(), "50/s");
        assert_eq!(parse_rate("300/m").unwrap().to_string(), "300/m");
        assert_eq!(
            parse_rate("1000/h").unwrap().per,
            Duration::from_secs(3_600)
        );
        for bad in ["fast", "50", "50/d", "/s", "0/s", "-1/s", "1.5/s"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn attempts_are_spaced_at_the_rate() {
        // 100/s: one every 10 ms.
        let mut bucket = TokenBucket::new(parse_rate("100/s").unwrap());
        let start = 1_000_000;
        // Idle time leaves at most one attempt owed: two may start now, no burst.
        assert_eq!(bucket.take(start, 50), 2);
        assert_eq!(bucket.take(start, 50), 0);
        assert_eq!(bucket.wait(start), Duration::from_millis(10));
        assert_eq!(bucket.take(start + 10_000, 50), 1);
        // A worker that looks late starts one owed attempt and the due one...
        assert_eq!(bucket.take(start + 50_000, 50), 2);
        // ...and an idle second gives no more.
        assert_eq!(bucket.take(start + 2_000_000, 50), 2);
        assert_eq!(bucket.take(start + 2_000_000, 50), 0);
        // Nothing wanted, nothing taken.
        assert_eq!(bucket.available(start + 3_000_000, 0), 0);
    }

    #[test]
    fn three_hundred_attempts_at_a_hundred_a_second_take_three_seconds() {
        let mut bucket = TokenBucket::new(parse_rate("100/s").unwrap());
        let mut now = 0;
        let mut started = 0;
        while started < 300 {
            started += bucket.take(now, 300 - started);
            now += bucket.wait(now).as_micros().max(1) as u64;
        }
        assert!((2_980_000..=3_000_000).contains(&now), "{now}");
    }
}
