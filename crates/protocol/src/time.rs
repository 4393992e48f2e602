//! Civil time without a calendar library: Go-style texts for logs and errors, and
//! RFC 3339 timestamps (reminder target times, spec §2.5) parsed and formatted like
//! Go's `time.RFC3339Nano`.

use thiserror::Error;

/// Formats Unix milliseconds like Go's `time.Time.String()` in UTC:
/// `2026-11-27 12:25:11.123 +0000 UTC`.
pub fn format_go_time(unix_millis: u64) -> String {
    let millis = unix_millis % 1000;
    let t = Civil::from_unix_secs((unix_millis / 1000) as i64);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{millis:03} +0000 UTC",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// A date and time of day of the proleptic Gregorian calendar, for formatting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
}

impl Civil {
    /// The date and time `secs` seconds after 1970-01-01T00:00:00 (in whatever zone
    /// `secs` was shifted to).
    pub fn from_unix_secs(secs: i64) -> Civil {
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400);
        Civil {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: (rem / 60) % 60,
            second: rem % 60,
        }
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) of the proleptic Gregorian calendar to days since 1970-01-01
/// (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// An instant written in RFC 3339, with the UTC offset it was written in (Go keeps
/// it, and so do we when echoing a reminder's target time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    /// Seconds since the Unix epoch (negative before 1970).
    pub unix_secs: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
    /// Offset from UTC in seconds (east positive).
    pub offset_secs: i32,
}

/// Why a timestamp does not parse; the text reads like Go's `time.Parse` errors.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("parsing time {input:?} as \"2006-01-02T15:04:05Z07:00\": {reason}")]
pub struct TimeError {
    pub input: String,
    pub reason: String,
}

/// Go's zero `time.Time` (`0001-01-01T00:00:00Z`): a reminder without a target time.
pub const ZERO_TIME: Timestamp = Timestamp {
    unix_secs: -62_135_596_800,
    nanos: 0,
    offset_secs: 0,
};

impl Timestamp {
    /// Parses `2020-04-14T14:17:51.073Z`, `2024-02-08T09:36:35.123456-05:00`, ...:
    /// any offset, 0 to 9 fractional digits (more are truncated, as Go does).
    pub fn parse_rfc3339(input: &str) -> Result<Timestamp, TimeError> {
        let fail = |reason: &str| TimeError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let b = input.as_bytes();
        let num = |range: std::ops::Range<usize>, what: &str| -> Result<u32, TimeError> {
            let digits = b
                .get(range)
                .ok_or_else(|| fail(&format!("cannot parse {what}")))?;
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(fail(&format!("cannot parse {what}")));
            }
            Ok(digits
                .iter()
                .fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
        };
        let sep = |i: usize, allowed: &[u8], what: &str| -> Result<(), TimeError> {
            match b.get(i) {
                Some(c) if allowed.contains(c) => Ok(()),
                _ => Err(fail(&format!("expected {what}"))),
            }
        };
        let year = num(0..4, "year")?;
        sep(4, b"-", "'-' after the year")?;
        let month = num(5..7, "month")?;
        sep(7, b"-", "'-' after the month")?;
        let day = num(8..10, "day")?;
        sep(10, b"Tt", "'T' after the date")?;
        let hour = num(11..13, "hour")?;
        sep(13, b":", "':' after the hour")?;
        let minute = num(14..16, "minute")?;
        sep(16, b":", "':' after the minute")?;
        let second = num(17..19, "second")?;
        let mut i = 19;
        let mut nanos = 0u32;
        if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return Err(fail("cannot parse the fractional second"));
            }
            let digits = &b[start..i.min(start + 9)];
            nanos = digits
                .iter()
                .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'))
                * 10u32.pow(9 - digits.len() as u32);
        }
        let offset_secs = match b.get(i) {
            Some(b'Z' | b'z') if i + 1 == b.len() => 0,
            Some(sign @ (b'+' | b'-')) if i + 6 == b.len() => {
                let oh = num(i + 1..i + 3, "the offset hours")?;
                sep(i + 3, b":", "':' in the offset")?;
                let om = num(i + 4..i + 6, "the offset minutes")?;
                if oh > 23 || om > 59 {
                    return Err(fail("time zone offset out of range"));
                }
                let secs = (oh * 3600 + om * 60) as i32;
                if *sign == b'-' {
                    -secs
                } else {
                    secs
                }
            }
            Some(_) => return Err(fail("expected 'Z' or an offset like +01:00 at the end")),
            None => return Err(fail("missing time zone (Z or an offset like +01:00)")),
        };
        if !(1..=12).contains(&month) {
            return Err(fail("month out of range"));
        }
        if day < 1 || day > days_in_month(i64::from(year), month) {
            return Err(fail("day out of range"));
        }
        if hour > 23 {
            return Err(fail("hour out of range"));
        }
        if minute > 59 {
            return Err(fail("minute out of range"));
        }
        if second > 59 {
            return Err(fail("second out of range"));
        }
        let local = days_from_civil(i64::from(year), month, day) * 86_400
            + i64::from(hour * 3600 + minute * 60 + second);
        Ok(Timestamp {
            unix_secs: local - i64::from(offset_secs),
            nanos,
            offset_secs,
        })
    }

    /// The instant of Unix milliseconds `millis`, in UTC.
    pub fn from_unix_millis(millis: i64) -> Timestamp {
        Timestamp {
            unix_secs: millis.div_euclid(1000),
            nanos: (millis.rem_euclid(1000) * 1_000_000) as u32,
            offset_secs: 0,
        }
    }

    /// Milliseconds since the Unix epoch (sub-millisecond digits truncated).
    pub fn unix_millis(&self) -> i64 {
        self.unix_secs
            .saturating_mul(1000)
            .saturating_add(i64::from(self.nanos / 1_000_000))
    }

    /// Go's `time.RFC3339Nano` layout: fractional zeros trimmed, `Z` for UTC, the
    /// offset as written otherwise.
    pub fn format_rfc3339_nano(&self) -> String {
        let t = Civil::from_unix_secs(self.unix_secs + i64::from(self.offset_secs));
        let mut out = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        );
        if self.nanos > 0 {
            let frac = format!("{:09}", self.nanos);
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        if self.offset_secs == 0 {
            out.push('Z');
        } else {
            let sign = if self.offset_secs < 0 { '-' } else { '+' };
            let abs = self.offset_secs.unsigned_abs();
            out.push_str(&format!("{sign}{:02}:{:02}", abs / 3600, (abs / 60) % 60));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_with_offsets_and_fractions() {
        let t = Timestamp::parse_rfc3339("2020-04-14T14:17:51.073Z").unwrap();
        assert_eq!(t.unix_millis(), 1_586_873_871_073);
        assert_eq!(t.format_rfc3339_nano(), "2020-04-14T14:17:51.073Z");
        let t = Timestamp::parse_rfc3339("2024-02-08T09:36:35.123456-05:00").unwrap();
        assert_eq!(t.offset_secs, -5 * 3600);
        assert_eq!(
            t.unix_millis(),
            Timestamp::parse_rfc3339("2024-02-08T14:36:35.123456Z")
                .unwrap()
                .unix_millis()
        );
        assert_eq!(t.format_rfc3339_nano(), "2024-02-08T09:36:35.123456-05:00");
        // Trailing zeros go, as in Go; +00:00 is written Z.
        let t = Timestamp::parse_rfc3339("2024-02-29T23:59:59.500000000+00:00").unwrap();
        assert_eq!(t.format_rfc3339_nano(), "2024-02-29T23:59:59.5Z");
        let t = Timestamp::parse_rfc3339("1969-12-31T23:59:59.999+01:30").unwrap();
        assert_eq!(t.unix_millis(), -5_400_001);
        assert_eq!(t.format_rfc3339_nano(), "1969-12-31T23:59:59.999+01:30");
        assert_eq!(ZERO_TIME.format_rfc3339_nano(), "0001-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::parse_rfc3339("0001-01-01T00:00:00Z").unwrap(),
            ZERO_TIME
        );
        assert_eq!(
            Timestamp::from_unix_millis(1_586_873_871_073).format_rfc3339_nano(),
            "2020-04-14T14:17:51.073Z"
        );
        for day in [0i64, 1, 59, 365, 19_782, -1, -719_162] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn rfc3339_errors_read_like_go() {
        for bad in [
            "",
            "yesterday",
            "2020-04-14",
            "2020-04-14T14:17:51",
            "2020-13-14T14:17:51Z",
            "2021-02-29T00:00:00Z",
            "2020-04-14T24:00:00Z",
            "2020-04-14T14:17:51.Z",
            "2020-04-14T14:17:51+0100",
            "2020-04-14T14:17:51Zjunk",
        ] {
            let e = Timestamp::parse_rfc3339(bad).unwrap_err();
            assert!(
                e.to_string().starts_with(&format!(
                    "parsing time {bad:?} as \"2006-01-02T15:04:05Z07:00\": "
                )),
                "{e}"
            );
        }
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_go_time(0), "1970-01-01 00:00:00.000 +0000 UTC");
        assert_eq!(
            format_go_time(1_586_873_871_073),
            "2020-04-14 14:17:51.073 +0000 UTC"
        );
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }
}
