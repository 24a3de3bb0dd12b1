//! Value-level checks and normalizations: decimals, timestamps, JSON objects,
//! COPY text escaping. No allocation except into caller-provided buffers.

/// Why a decimal was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecimalError {
    Syntax,
    NonFinite,
    OutOfRange,
}

/// PostgreSQL `numeric` limits (PG 15 `numeric.c`): the exponent of the
/// scientific notation must stay within ±1000, at most 131072 digits before
/// the decimal point and 16383 after it.
const PG_MAX_EXPONENT: i64 = 1000;
const PG_MAX_INT_DIGITS: i64 = 131_072;
const PG_MAX_DSCALE: i64 = 16_383;

/// Checks that `s` (already trimmed) is a finite decimal PostgreSQL `numeric`
/// accepts: `[+-]digits[.digits][(e|E)[+-]digits]`, `.5` and `5.` allowed.
pub(crate) fn check_decimal(s: &str) -> Result<(), DecimalError> {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+') | Some(b'-')) {
        i = 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = &b[int_start..i];
    let mut frac_len = 0usize;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let f = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_len = i - f;
    }
    if int_digits.is_empty() && frac_len == 0 {
        let rest = s.get(int_start..).unwrap_or("");
        if ["nan", "inf", "infinity"]
            .iter()
            .any(|w| rest.eq_ignore_ascii_case(w))
        {
            return Err(DecimalError::NonFinite);
        }
        return Err(DecimalError::Syntax);
    }
    let mut exp: i64 = 0;
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let mut neg = false;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            neg = b[i] == b'-';
            i += 1;
        }
        let e0 = i;
        while i < b.len() && b[i].is_ascii_digit() {
            exp = (exp * 10 + i64::from(b[i] - b'0')).min(1_000_000_000);
            i += 1;
        }
        if i == e0 {
            return Err(DecimalError::Syntax);
        }
        if neg {
            exp = -exp;
        }
    }
    if i != b.len() {
        return Err(DecimalError::Syntax);
    }
    if exp.abs() > PG_MAX_EXPONENT {
        return Err(DecimalError::OutOfRange);
    }
    let significant_int = int_digits.iter().skip_while(|d| **d == b'0').count() as i64;
    if significant_int + exp > PG_MAX_INT_DIGITS || (frac_len as i64 - exp) > PG_MAX_DSCALE {
        return Err(DecimalError::OutOfRange);
    }
    Ok(())
}

// ---------------------------------------------------------------- timestamps

pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Smallest/largest accepted instant: 0001-01-01 00:00:00 UTC …
/// 9999-12-31 23:59:59.999999 UTC.
pub(crate) const MIN_MICROS: i64 = -62_135_596_800 * MICROS_PER_SECOND;
pub(crate) const MAX_MICROS: i64 = 253_402_300_800 * MICROS_PER_SECOND - 1;

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let s = self.b.get(self.i..self.i + n)?;
        let mut v = 0u32;
        for c in s {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        self.i += n;
        Some(v)
    }
}

/// Parses an ISO-8601-ish instant and returns microseconds since the Unix
/// epoch (UTC). Accepted (after trimming):
/// `YYYY-MM-DD`, `YYYY-MM-DD[T| ]HH:MM[:SS[.f…]]` followed by nothing (UTC),
/// `Z`, `UTC`, `±HH`, `±HHMM` or `±HH:MM` (optionally after one space).
/// Fractions beyond microseconds are rounded half-to-even like PostgreSQL;
/// `24:00:00` and leap second `:60` roll over as in PostgreSQL.
pub(crate) fn parse_timestamp(s: &str) -> Result<i64, &'static str> {
    let mut c = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    let y = c.digits(4).ok_or("expected YYYY-MM-DD")?;
    if !c.eat(b'-') {
        return Err("expected YYYY-MM-DD");
    }
    let mo = c.digits(2).ok_or("expected YYYY-MM-DD")?;
    if !c.eat(b'-') {
        return Err("expected YYYY-MM-DD");
    }
    let d = c.digits(2).ok_or("expected YYYY-MM-DD")?;
    let y = i64::from(y);
    if y == 0 {
        return Err("year 0000 out of range");
    }
    if !(1..=12).contains(&mo) {
        return Err("month out of range");
    }
    if d == 0 || d > days_in_month(y, mo) {
        return Err("day out of range for month");
    }
    let mut micros = days_from_civil(y, mo, d) * MICROS_PER_DAY;
    if c.peek().is_none() {
        return check_range(micros);
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return Err("expected 'T' or ' ' between date and time");
    }
    let h = c.digits(2).ok_or("expected HH:MM[:SS]")?;
    if !c.eat(b':') {
        return Err("expected HH:MM[:SS]");
    }
    let mi = c.digits(2).ok_or("expected HH:MM[:SS]")?;
    let mut sec = 0u32;
    let mut frac: i64 = 0;
    if c.eat(b':') {
        sec = c.digits(2).ok_or("expected two-digit seconds")?;
        if c.eat(b'.') || c.eat(b',') {
            let start = c.i;
            let mut n = 0;
            let mut round_digit = 0u8;
            let mut sticky = false;
            while let Some(ch) = c.peek().filter(u8::is_ascii_digit) {
                let v = ch - b'0';
                if n < 6 {
                    frac = frac * 10 + i64::from(v);
                } else if n == 6 {
                    round_digit = v;
                } else if v != 0 {
                    sticky = true;
                }
                n += 1;
                c.i += 1;
            }
            if c.i == start {
                return Err("expected digits after the decimal point");
            }
            for _ in n..6 {
                frac *= 10;
            }
            if round_digit > 5 || (round_digit == 5 && (sticky || frac % 2 == 1)) {
                frac += 1;
            }
        }
    }
    if mi > 59 {
        return Err("minute out of range");
    }
    if sec > 60 {
        return Err("second out of range");
    }
    if h > 24 || (h == 24 && (mi != 0 || sec != 0 || frac != 0)) {
        return Err("hour out of range");
    }
    micros +=
        (i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(sec)) * MICROS_PER_SECOND + frac;
    // Offset.
    let _ = c.eat(b' ');
    match c.peek() {
        None => {}
        Some(b'Z') | Some(b'z') => c.i += 1,
        Some(b'U') | Some(b'u') => {
            let rest = s.get(c.i..).unwrap_or("");
            if rest.len() < 3 || !rest.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("utc")) {
                return Err("unexpected text after the time");
            }
            c.i += 3;
        }
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let oh = c.digits(2).ok_or("expected offset ±HH[:MM]")?;
            let mut om = 0;
            if c.peek().is_some() {
                let _ = c.eat(b':');
                om = c.digits(2).ok_or("expected offset ±HH[:MM]")?;
            }
            if oh > 15 || om > 59 {
                return Err("UTC offset out of range");
            }
            let off = (i64::from(oh) * 3600 + i64::from(om) * 60) * MICROS_PER_SECOND;
            // local = utc + offset  =>  utc = local - offset
            if sign == b'+' {
                micros -= off;
            } else {
                micros += off;
            }
        }
        Some(_) => return Err("unexpected text after the time"),
    }
    if c.peek().is_some() {
        return Err("unexpected text after the UTC offset");
    }
    check_range(micros)
}

fn check_range(micros: i64) -> Result<i64, &'static str> {
    if (MIN_MICROS..=MAX_MICROS).contains(&micros) {
        Ok(micros)
    } else {
        Err("out of range (years 0001-9999 UTC)")
    }
}

fn push_2(out: &mut String, v: u32) {
    out.push(char::from(b'0' + (v / 10 % 10) as u8));
    out.push(char::from(b'0' + (v % 10) as u8));
}

/// Appends `YYYY-MM-DD HH:MM:SS[.ffffff]+00` (fraction without trailing
/// zeros) — unambiguous input for PostgreSQL `timestamptz` under any DateStyle.
pub fn format_timestamp_micros(micros: i64, out: &mut String) {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let rem = micros.rem_euclid(MICROS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let y = y.clamp(0, 9999) as u32;
    push_2(out, y / 100);
    push_2(out, y % 100);
    out.push('-');
    push_2(out, m);
    out.push('-');
    push_2(out, d);
    out.push(' ');
    let secs = (rem / MICROS_PER_SECOND) as u32;
    push_2(out, secs / 3600);
    out.push(':');
    push_2(out, secs / 60 % 60);
    out.push(':');
    push_2(out, secs % 60);
    let mut frac = (rem % MICROS_PER_SECOND) as u32;
    if frac != 0 {
        out.push('.');
        let mut digits = 6;
        while frac.is_multiple_of(10) {
            frac /= 10;
            digits -= 1;
        }
        let mut buf = [b'0'; 6];
        let mut f = frac;
        for k in (0..digits).rev() {
            buf[k] = b'0' + (f % 10) as u8;
            f /= 10;
        }
        for &ch in &buf[..digits] {
            out.push(char::from(ch));
        }
    }
    out.push_str("+00");
}

/// Convenience: [`format_timestamp_micros`] into a new `String`.
pub fn timestamp_micros_to_string(micros: i64) -> String {
    let mut s = String::with_capacity(26);
    format_timestamp_micros(micros, &mut s);
    s
}

// ---------------------------------------------------------------------- JSON

/// Maximum nesting accepted in a JSON column.
pub(crate) const JSON_MAX_DEPTH: u32 = 64;

struct Json<'a, 'o> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    out: &'o mut String,
}

type JResult = Result<(), String>;

impl Json<'_, '_> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }
    fn err(&self, what: &str) -> String {
        format!("{what} at byte {}", self.i)
    }
    fn copy(&mut self, from: usize, to: usize) {
        self.out.push_str(self.s.get(from..to).unwrap_or(""));
    }
    fn value(&mut self, depth: u32) -> JResult {
        if depth > JSON_MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        match self.b.get(self.i) {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(_) => Err(self.err("unexpected character")),
            None => Err(self.err("unexpected end of input")),
        }
    }
    fn literal(&mut self, word: &str) -> JResult {
        if self.b.get(self.i..self.i + word.len()) == Some(word.as_bytes()) {
            self.i += word.len();
            self.out.push_str(word);
            Ok(())
        } else {
            Err(self.err("invalid literal"))
        }
    }
    fn object(&mut self, depth: u32) -> JResult {
        self.i += 1;
        self.out.push('{');
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            self.out.push('}');
            return Ok(());
        }
        loop {
            self.ws();
            if self.b.get(self.i) != Some(&b'"') {
                return Err(self.err("expected a string key"));
            }
            self.string()?;
            self.ws();
            if self.b.get(self.i) != Some(&b':') {
                return Err(self.err("expected ':'"));
            }
            self.i += 1;
            self.out.push(':');
            self.ws();
            self.value(depth + 1)?;
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => {
                    self.i += 1;
                    self.out.push(',');
                }
                Some(b'}') => {
                    self.i += 1;
                    self.out.push('}');
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }
    fn array(&mut self, depth: u32) -> JResult {
        self.i += 1;
        self.out.push('[');
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            self.out.push(']');
            return Ok(());
        }
        loop {
            self.ws();
            self.value(depth + 1)?;
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => {
                    self.i += 1;
                    self.out.push(',');
                }
                Some(b']') => {
                    self.i += 1;
                    self.out.push(']');
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }
    fn hex4(&mut self) -> Result<u32, String> {
        let mut v = 0u32;
        for _ in 0..4 {
            let c = self
                .b
                .get(self.i)
                .copied()
                .ok_or_else(|| self.err("truncated \\u escape"))?;
            let d = (c as char)
                .to_digit(16)
                .ok_or_else(|| self.err("invalid \\u escape"))?;
            v = v * 16 + d;
            self.i += 1;
        }
        Ok(v)
    }
    fn string(&mut self) -> JResult {
        let start = self.i;
        self.i += 1;
        loop {
            match self.b.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    self.copy(start, self.i);
                    return Ok(());
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.b.get(self.i) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            self.i += 1;
                            let cp = self.hex4()?;
                            if cp == 0 {
                                return Err(self
                                    .err("\\u0000 is not allowed (PostgreSQL jsonb rejects it)"));
                            }
                            if (0xDC00..0xE000).contains(&cp) {
                                return Err(self.err("lone low surrogate in \\u escape"));
                            }
                            if (0xD800..0xDC00).contains(&cp) {
                                if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                                    return Err(
                                        self.err("high surrogate not followed by a low surrogate")
                                    );
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(
                                        self.err("high surrogate not followed by a low surrogate")
                                    );
                                }
                            }
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                Some(c) if *c < 0x20 => return Err(self.err("control character in string")),
                Some(_) => self.i += 1,
            }
        }
    }
    fn number(&mut self) -> JResult {
        let start = self.i;
        let b = self.b;
        let mut i = self.i;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => {
                self.i = i;
                return Err(self.err("invalid number"));
            }
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            let f = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == f {
                self.i = i;
                return Err(self.err("invalid number"));
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let e = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == e {
                self.i = i;
                return Err(self.err("invalid number"));
            }
        }
        self.i = i;
        let tok = self.s.get(start..i).unwrap_or("");
        if check_decimal(tok).is_err() {
            return Err(self.err("number out of range for PostgreSQL numeric"));
        }
        self.copy(start, i);
        Ok(())
    }
}

/// Validates `s` as a JSON object and appends it to `out` without
/// insignificant whitespace (members, order and number spellings are kept
/// exactly, so no precision is lost). Returns `Ok(true)` for `{}`.
/// Rejects what PostgreSQL `jsonb` would reject (`\u0000`, broken surrogate
/// pairs, numbers outside `numeric`). On error `out` is left unchanged.
pub(crate) fn minify_json_object(s: &str, out: &mut String) -> Result<bool, String> {
    let mark = out.len();
    let mut j = Json {
        s,
        b: s.as_bytes(),
        i: 0,
        out,
    };
    j.ws();
    let is_object = j.b.get(j.i) == Some(&b'{');
    let res = j.value(0).and_then(|()| {
        j.ws();
        if j.i != j.b.len() {
            Err(j.err("unexpected text after the JSON value"))
        } else {
            Ok(())
        }
    });
    match res {
        Ok(()) if is_object => Ok(out.len() - mark == 2),
        Ok(()) => {
            let kind = match out.as_bytes().get(mark) {
                Some(b'[') => "an array",
                Some(b'"') => "a string",
                Some(b't' | b'f') => "a boolean",
                Some(b'n') => "null",
                _ => "a number",
            };
            out.truncate(mark);
            Err(format!("JSON value must be an object, got {kind}"))
        }
        Err(e) => {
            out.truncate(mark);
            Err(format!("invalid JSON: {e}"))
        }
    }
}

// ----------------------------------------------------------------- COPY text

/// Error of [`escape_copy_text`]: PostgreSQL text cannot hold NUL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("value contains a NUL character, which PostgreSQL text cannot store")]
pub struct ContainsNul;

static COPY_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[0] = true;
    t[b'\\' as usize] = true;
    t[b'\t' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'\r' as usize] = true;
    t
};

/// Appends `value` escaped for PostgreSQL `COPY … FROM STDIN` text format:
/// backslash, tab, newline and carriage return become `\\`, `\t`, `\n`, `\r`.
/// On error `out` may hold a partial value.
#[inline]
pub fn escape_copy_text(value: &str, out: &mut Vec<u8>) -> Result<(), ContainsNul> {
    escape_generic(value, out)
}

/// [`escape_copy_text`] into a `String`.
#[inline]
pub(crate) fn escape_copy_into(value: &str, out: &mut String) -> Result<(), ContainsNul> {
    escape_generic(value, out)
}

trait Sink {
    fn put(&mut self, s: &str);
}
impl Sink for String {
    #[inline(always)]
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
}
impl Sink for Vec<u8> {
    #[inline(always)]
    fn put(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
}

#[inline(always)]
fn escape_generic<S: Sink>(value: &str, out: &mut S) -> Result<(), ContainsNul> {
    use super::split::{bytes_eq, bytes_lt, swar_find};
    let b = value.as_bytes();
    let mut run = 0;
    let mut i = 0;
    loop {
        // Next control character or `\`.
        i = swar_find(b, i, |v| bytes_lt(v, 0x20) | bytes_eq(v, b'\\'));
        let Some(&c) = b.get(i) else { break };
        if COPY_SPECIAL[c as usize] {
            out.put(value.get(run..i).unwrap_or_default());
            out.put(match c {
                b'\\' => "\\\\",
                b'\t' => "\\t",
                b'\n' => "\\n",
                b'\r' => "\\r",
                _ => return Err(ContainsNul),
            });
            run = i + 1;
        }
        i += 1;
    }
    out.put(value.get(run..).unwrap_or_default());
    Ok(())
}
