//! A small zero-copy CSV record splitter over `&str` (RFC 4180 with lenient
//! line endings). Fields are reported as byte spans into the input; a quoted
//! field's span excludes its quotes and `escaped` says it contains doubled
//! quotes that must be unescaped. Tracks physical line numbers.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FieldSpan {
    pub start: usize,
    pub end: usize,
    /// Quoted field containing `""` pairs.
    pub escaped: bool,
    pub quoted: bool,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordInfo {
    /// Byte offset of the record's first byte.
    pub start: usize,
    /// Byte offset just past the record's terminator.
    pub end: usize,
    /// 1-based physical line on which the record starts.
    pub line: u64,
    /// Malformed quoting: the record must be rejected.
    pub error: Option<&'static str>,
}

pub(crate) struct Splitter<'a> {
    b: &'a [u8],
    pos: usize,
    line: u64,
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// SWAR: high bit set in each byte of `v` equal to `c`; exact for the lowest
/// set byte (bytes above a match may be false positives), which is all the
/// callers use.
#[inline(always)]
pub(crate) fn bytes_eq(v: u64, c: u8) -> u64 {
    let x = v ^ (LO * u64::from(c));
    x.wrapping_sub(LO) & !x & HI
}

/// SWAR: high bit set for bytes `< n` (n ≤ 128); exact for the lowest set byte.
#[inline(always)]
pub(crate) fn bytes_lt(v: u64, n: u8) -> u64 {
    v.wrapping_sub(LO * u64::from(n)) & !v & HI
}

#[inline(always)]
pub(crate) fn load8(b: &[u8], p: usize) -> Option<u64> {
    let chunk: [u8; 8] = b.get(p..p + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// First index `>= p` of `b` whose byte is flagged by the SWAR mask function
/// `f` (exact for the lowest flagged byte, see [`bytes_eq`]), or `b.len()`.
/// The last bytes (fewer than 8) are assembled into one padded word.
#[inline(always)]
pub(crate) fn swar_find(b: &[u8], mut p: usize, f: impl Fn(u64) -> u64) -> usize {
    let len = b.len();
    while let Some(v) = load8(b, p) {
        let m = f(v);
        if m != 0 {
            return p + (m.trailing_zeros() / 8) as usize;
        }
        p += 8;
    }
    if p >= len {
        return len;
    }
    // Fewer than 8 bytes left: assemble them, padded above with `a`. (Not an
    // overlapping load of the last 8 bytes with the bytes before `p` masked
    // off afterwards: a match among those bytes borrows into the next byte
    // and flags a false match there — the flag is exact only for the lowest
    // match, and that one may lie before `p`.)
    let mut v = LO * u64::from(b'a');
    for (k, &c) in b.get(p..).unwrap_or_default().iter().enumerate() {
        let sh = 8 * k as u32;
        v = (v & !(0xFF << sh)) | (u64::from(c) << sh);
    }
    let m = f(v);
    if m != 0 {
        return (p + (m.trailing_zeros() / 8) as usize).min(len);
    }
    len
}

/// Position of the first `,` `\n` `\r` at or after `p` (or `b.len()`).
#[inline]
fn find_stop(b: &[u8], p: usize) -> usize {
    swar_find(b, p, |v| {
        bytes_eq(v, b',') | bytes_eq(v, b'\n') | bytes_eq(v, b'\r')
    })
}

/// Position of the first `"` or `\n` at or after `p` (or `b.len()`).
#[inline]
fn find_quote_or_newline(b: &[u8], p: usize) -> usize {
    swar_find(b, p, |v| bytes_eq(v, b'"') | bytes_eq(v, b'\n'))
}

/// Position of the first `"` at or after `p` (or `b.len()`).
#[inline]
fn find_quote(b: &[u8], p: usize) -> usize {
    swar_find(b, p, |v| bytes_eq(v, b'"'))
}

impl<'a> Splitter<'a> {
    pub fn new(input: &'a str, start: usize) -> Self {
        Splitter {
            b: input.as_bytes(),
            pos: start,
            line: 1,
        }
    }

    /// Ends the record at `p` (which holds `\n`, `\r` or is the end).
    fn end_of_line(&mut self, p: usize) -> usize {
        match self.b.get(p) {
            Some(b'\n') => {
                self.line += 1;
                p + 1
            }
            Some(b'\r') => {
                self.line += 1;
                if self.b.get(p + 1) == Some(&b'\n') {
                    p + 2
                } else {
                    p + 1
                }
            }
            _ => p,
        }
    }

    /// Splits the next record into `fields`; `None` at end of input.
    pub fn next_record(&mut self, fields: &mut Vec<FieldSpan>) -> Option<RecordInfo> {
        let b = self.b;
        let len = b.len();
        if self.pos >= len {
            return None;
        }
        fields.clear();
        let start = self.pos;
        let line = self.line;
        let mut error = None;
        let mut p = self.pos;
        loop {
            if b.get(p) == Some(&b'"') {
                let fstart = p + 1;
                let mut q = fstart;
                let mut escaped = false;
                loop {
                    loop {
                        q = find_quote_or_newline(b, q);
                        if b.get(q) == Some(&b'\n') {
                            self.line += 1;
                            q += 1;
                        } else {
                            break;
                        }
                    }
                    if q >= len {
                        fields.push(FieldSpan {
                            start: fstart,
                            end: len,
                            escaped,
                            quoted: true,
                        });
                        error = Some("unterminated quoted field");
                        p = len;
                        break;
                    }
                    if b.get(q + 1) == Some(&b'"') {
                        escaped = true;
                        q += 2;
                        continue;
                    }
                    fields.push(FieldSpan {
                        start: fstart,
                        end: q,
                        escaped,
                        quoted: true,
                    });
                    p = q + 1;
                    break;
                }
                if error.is_some() {
                    break;
                }
                match b.get(p) {
                    Some(b',') => {
                        p += 1;
                        continue;
                    }
                    None | Some(b'\n') | Some(b'\r') => {
                        p = self.end_of_line(p);
                        break;
                    }
                    Some(_) => {
                        error = Some("unexpected character after a closing quote");
                        while let Some(&c) = b.get(p) {
                            if c == b'\n' {
                                break;
                            }
                            p += 1;
                        }
                        p = self.end_of_line(p);
                        break;
                    }
                }
            } else {
                let fstart = p;
                p = find_stop(b, p);
                fields.push(FieldSpan {
                    start: fstart,
                    end: p,
                    escaped: false,
                    quoted: false,
                });
                if b.get(p) == Some(&b',') {
                    p += 1;
                    continue;
                }
                p = self.end_of_line(p);
                break;
            }
        }
        self.pos = p;
        Some(RecordInfo {
            start,
            end: p,
            line,
            error,
        })
    }
}

/// The text of a field: borrowed when possible, unescaped into `buf` when it
/// holds doubled quotes. `None` only on an internal span error.
#[inline]
pub(crate) fn field_text<'s>(input: &'s str, f: FieldSpan, buf: &'s mut String) -> Option<&'s str> {
    let raw = input.get(f.start..f.end)?;
    if !f.escaped {
        return Some(raw);
    }
    buf.clear();
    // The splitter guarantees every quote inside the span is doubled.
    let b = raw.as_bytes();
    let mut from = 0;
    loop {
        let q = find_quote(b, from);
        if q >= b.len() {
            buf.push_str(raw.get(from..)?);
            break;
        }
        buf.push_str(raw.get(from..=q)?);
        from = q + 2;
    }
    Some(buf.as_str())
}
