//! timestamptz text as `row_to_json` prints it <-> microseconds since the
//! Unix epoch. Hand-rolled (no chrono): the format is narrow and fixed.
//!
//! Postgres prints `YYYY-MM-DDTHH:MM:SS[.f{1,6}]±HH[:MM[:SS]]`: trailing zeros
//! of the fraction are trimmed (the dot too when it is all zero), the offset is
//! the session TimeZone's, and years past 9999 get more digits.

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// days_from_civil). Valid for any year an i64 day count can hold.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Cursor over ASCII text with the few primitives the format needs.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8, what: &str) -> Result<(), String> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(format!("expected {what} at position {}", self.pos + 1))
        }
    }

    /// Between `min` and `max` ASCII digits; returns (value, digit count).
    fn digits(&mut self, min: usize, max: usize, what: &str) -> Result<(i64, usize), String> {
        let start = self.pos;
        let mut value: i64 = 0;
        while self.pos - start < max {
            match self.peek() {
                Some(b @ b'0'..=b'9') => {
                    value = value * 10 + i64::from(b - b'0');
                    self.pos += 1;
                }
                _ => break,
            }
        }
        let n = self.pos - start;
        if n < min {
            return Err(format!("expected {what} at position {}", start + 1));
        }
        Ok((value, n))
    }
}

/// Parses timestamptz text into microseconds since 1970-01-01 00:00:00 UTC.
pub fn parse_timestamptz(text: &str) -> Result<i64, String> {
    if text.eq_ignore_ascii_case("infinity") || text.eq_ignore_ascii_case("-infinity") {
        return Err(format!("timestamp {text:?} is not a point in time"));
    }
    if text.ends_with(" BC") {
        return Err(format!("timestamp {text:?}: BC dates are not supported"));
    }
    let mut c = Cursor { bytes: text.as_bytes(), pos: 0 };
    let fail = |msg: String| format!("timestamp {text:?}: {msg}");

    // Postgres's upper limit is year 294276: 6 digits suffice.
    let (year, _) = c.digits(4, 6, "a 4-digit year").map_err(fail)?;
    c.expect(b'-', "'-'").map_err(fail)?;
    let (month, _) = c.digits(2, 2, "a 2-digit month").map_err(fail)?;
    c.expect(b'-', "'-'").map_err(fail)?;
    let (day, _) = c.digits(2, 2, "a 2-digit day").map_err(fail)?;
    // row_to_json uses 'T'; accept the ' ' of plain ::text output as well.
    if !(c.eat(b'T') || c.eat(b' ')) {
        return Err(fail(format!("expected 'T' at position {}", c.pos + 1)));
    }
    let (hour, _) = c.digits(2, 2, "a 2-digit hour").map_err(fail)?;
    c.expect(b':', "':'").map_err(fail)?;
    let (minute, _) = c.digits(2, 2, "2-digit minutes").map_err(fail)?;
    c.expect(b':', "':'").map_err(fail)?;
    let (second, _) = c.digits(2, 2, "2-digit seconds").map_err(fail)?;
    let mut micros_frac = 0;
    if c.eat(b'.') {
        let (frac, n) = c.digits(1, 6, "1 to 6 fraction digits").map_err(fail)?;
        micros_frac = frac * 10_i64.pow(6 - n as u32);
        if matches!(c.peek(), Some(b'0'..=b'9')) {
            return Err(fail("more than 6 fraction digits".into()));
        }
    }
    let offset_secs = if c.eat(b'Z') {
        0
    } else {
        let sign = if c.eat(b'+') {
            1
        } else if c.eat(b'-') {
            -1
        } else {
            return Err(fail(format!("expected a UTC offset (+HH or -HH) at position {}", c.pos + 1)));
        };
        let (oh, _) = c.digits(2, 2, "a 2-digit offset hour").map_err(fail)?;
        let mut om = 0;
        let mut os = 0;
        if c.eat(b':') {
            om = c.digits(2, 2, "2-digit offset minutes").map_err(fail)?.0;
            if c.eat(b':') {
                os = c.digits(2, 2, "2-digit offset seconds").map_err(fail)?.0;
            }
        }
        if oh > 23 || om > 59 || os > 59 {
            return Err(fail("UTC offset out of range".into()));
        }
        sign * (oh * 3600 + om * 60 + os)
    };
    if c.pos != text.len() {
        return Err(fail(format!("unexpected text at position {}", c.pos + 1)));
    }

    // Values came from at most 2 digits, so these casts cannot truncate.
    let (month, day) = (month as u32, day as u32);
    if !(1..=12).contains(&month) {
        return Err(fail(format!("month {month} out of range")));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(fail(format!("day {day} out of range for {year:04}-{month:02}")));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(fail("time of day out of range".into()));
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    // |secs| < 2^43 for 6-digit years, so this cannot overflow.
    Ok(secs * 1_000_000 + micros_frac)
}

/// Formats like Postgres's JSON output of timestamptz in a session whose UTC
/// offset is `offset_secs` (used by the synthetic export generator).
pub fn format_timestamptz(micros: i64, offset_secs: i32) -> String {
    let local = micros + i64::from(offset_secs) * 1_000_000;
    let secs = local.div_euclid(1_000_000);
    let frac = local.rem_euclid(1_000_000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let mut out = format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    if frac != 0 {
        let f = format!(".{frac:06}");
        out.push_str(f.trim_end_matches('0'));
    }
    let sign = if offset_secs < 0 { '-' } else { '+' };
    let o = offset_secs.unsigned_abs();
    out.push_str(&format!("{sign}{:02}:{:02}", o / 3600, o / 60 % 60));
    if !o.is_multiple_of(60) {
        out.push_str(&format!(":{:02}", o % 60));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_known_values() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 1, 1), 10_957);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017); // 2000 is a leap year
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(days_from_civil(1900, 3, 1) - days_from_civil(1900, 2, 28), 1); // 1900 is not
        assert_eq!(days_from_civil(1600, 1, 1), -135_140);
        assert_eq!(days_from_civil(1, 1, 1), -719_162);
    }

    #[test]
    fn civil_days_round_trip() {
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn parses_postgres_json_forms() {
        assert_eq!(parse_timestamptz("1970-01-01T00:00:00+00:00"), Ok(0));
        assert_eq!(parse_timestamptz("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_timestamptz("1970-01-01T00:00:00.000001+00:00"), Ok(1));
        assert_eq!(parse_timestamptz("1970-01-01T00:00:00.1+00:00"), Ok(100_000));
        assert_eq!(parse_timestamptz("1969-12-31T23:59:59.999999+00:00"), Ok(-1));
        assert_eq!(parse_timestamptz("2026-11-30T17:13:42.123456+00:00"), Ok(1_796_058_822_123_456));
        // Same instant in other session time zones and offset spellings.
        assert_eq!(parse_timestamptz("2026-11-30T22:43:42.123456+05:30"), Ok(1_796_058_822_123_456));
        assert_eq!(parse_timestamptz("2026-11-30T09:13:42.123456-08"), Ok(1_796_058_822_123_456));
        assert_eq!(parse_timestamptz("2026-11-30T09:13:42.123456-08:00"), Ok(1_796_058_822_123_456));
        assert_eq!(parse_timestamptz("1970-01-01T00:19:32+00:19:32"), Ok(0)); // LMT-style offset
        assert_eq!(parse_timestamptz("2024-02-29T12:00:00+00:00"), Ok(1_709_208_000_000_000));
        assert_eq!(parse_timestamptz("1900-01-01T00:00:00+00:00"), Ok(-2_208_988_800_000_000));
        assert_eq!(parse_timestamptz("2000-01-01 00:00:00+00"), Ok(946_684_800_000_000));
        assert_eq!(parse_timestamptz("10000-01-01T00:00:00+00:00"), Ok(253_402_300_800_000_000));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2026-11-30",
            "2026-11-30T17:13:42",         // no offset
            "2026-11-30T17:13:42.1234567+00:00",
            "2026-13-01T00:00:00+00:00",
            "2026-02-29T00:00:00+00:00",   // not a leap year
            "1900-02-29T00:00:00+00:00",
            "2026-04-31T00:00:00+00:00",
            "2026-01-01T24:00:00+00:00",
            "2026-01-01T00:60:00+00:00",
            "2026-01-01T00:00:00+0",
            "2026-01-01T00:00:00+00:00 ",
            "2026-01-01T00:00:00.+00:00",
            "infinity",
            "0044-03-15T12:00:00+00:00 BC",
            "26-01-01T00:00:00+00:00",
        ] {
            assert!(parse_timestamptz(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn format_matches_postgres_and_round_trips() {
        assert_eq!(format_timestamptz(0, 0), "1970-01-01T00:00:00+00:00");
        assert_eq!(format_timestamptz(-1, 0), "1969-12-31T23:59:59.999999+00:00");
        assert_eq!(format_timestamptz(1_500_000, 0), "1970-01-01T00:00:01.5+00:00");
        assert_eq!(format_timestamptz(1_796_058_822_123_456, 19_800), "2026-11-30T22:43:42.123456+05:30");
        assert_eq!(format_timestamptz(0, -28_800), "1969-12-31T16:00:00-08:00");
        for micros in [-2_208_988_800_000_001, -1, 0, 7, 1_709_208_000_000_000, 1_796_058_822_123_400] {
            for off in [0, 19_800, -28_800, 1172] {
                assert_eq!(parse_timestamptz(&format_timestamptz(micros, off)), Ok(micros));
            }
        }
    }
}
