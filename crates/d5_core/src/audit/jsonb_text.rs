//! Postgres' `jsonb_out` text of a jsonb value, written from its binary
//! form (PostgreSQL 12–17 on-disk layout) without Postgres.
//!
//! The audit hash covers the `jsonb_out` text of each jsonb column. Turning
//! the binary into that text is most of the cost of verifying a chain inside
//! the database; here it is plain Rust on bytes, so the verifier can do it on
//! another thread. It is strict: anything this module does not know exactly
//! (a NaN or infinite numeric, an unknown entry type, a malformed offset)
//! gives `None`, and the caller falls back to Postgres' own `jsonb_out`.
//! A wrong text can only make a good record look bad, and every chain that
//! does not verify is verified again from Postgres' text, so a bug here
//! costs time, never a wrong verdict.

const JB_CMASK: u32 = 0x0FFF_FFFF;
const JB_FSCALAR: u32 = 0x1000_0000;
const JB_FOBJECT: u32 = 0x2000_0000;
const JB_FARRAY: u32 = 0x4000_0000;

const JENTRY_OFFLENMASK: u32 = 0x0FFF_FFFF;
const JENTRY_TYPEMASK: u32 = 0x7000_0000;
const JENTRY_HAS_OFF: u32 = 0x8000_0000;
const JENTRY_ISSTRING: u32 = 0x0000_0000;
const JENTRY_ISNUMERIC: u32 = 0x1000_0000;
const JENTRY_ISBOOL_FALSE: u32 = 0x2000_0000;
const JENTRY_ISBOOL_TRUE: u32 = 0x3000_0000;
const JENTRY_ISNULL: u32 = 0x4000_0000;
const JENTRY_ISCONTAINER: u32 = 0x5000_0000;

/// Nesting beyond this is left to Postgres (this module recurses).
const MAX_DEPTH: usize = 256;

/// Appends the `jsonb_out` text of `container` (a jsonb value without its
/// varlena header) to `out`. On `None`, `out` is left as it was.
pub fn append_jsonb_text(container: &[u8], out: &mut String) -> Option<()> {
    let before = out.len();
    // SAFETY: only UTF-8 is appended: ASCII punctuation, digits and keywords,
    // and string bytes that escape_string checked; on failure the partial
    // text is cut off again at the old length, a char boundary.
    let bytes = unsafe { out.as_mut_vec() };
    let done = container_text(container, bytes, 0);
    if done.is_none() {
        bytes.truncate(before);
    }
    done
}

/// The `jsonb_out` text of a varlena jsonb datum's bytes (1- or 4-byte
/// header, neither compressed nor external).
pub fn jsonb_text(varlena: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(varlena.len() + varlena.len() / 4);
    append_varlena_text(varlena, &mut out)?;
    Some(out)
}

/// [`jsonb_text`] into a buffer the caller reuses.
pub fn append_varlena_text(varlena: &[u8], out: &mut String) -> Option<()> {
    append_jsonb_text(varlena_body(varlena)?, out)
}

/// The bytes after a plain (uncompressed, inline) varlena header.
fn varlena_body(v: &[u8]) -> Option<&[u8]> {
    let first = *v.first()?;
    if first & 0x01 == 0x01 {
        // 1-byte header (little-endian layout); 0x01 alone is an external pointer.
        let len = (first >> 1) as usize;
        if first == 0x01 || len < 1 || len > v.len() {
            return None;
        }
        return Some(&v[1..len]);
    }
    if first & 0x02 != 0 {
        return None; // compressed
    }
    let len = (u32::from_le_bytes(v.get(..4)?.try_into().ok()?) >> 2) as usize;
    if len < 4 || len > v.len() {
        return None;
    }
    Some(&v[4..len])
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn container_text(c: &[u8], out: &mut Vec<u8>, depth: usize) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    let header = read_u32(c, 0)?;
    let count = (header & JB_CMASK) as usize;
    let object = header & JB_FOBJECT != 0;
    let array = header & JB_FARRAY != 0;
    if object == array {
        return None;
    }
    let entries = if object { count.checked_mul(2)? } else { count };
    let base = 4usize.checked_add(entries.checked_mul(4)?)?;
    if base > c.len() {
        return None;
    }
    let entry = |i: usize| read_u32(c, 4 + 4 * i);
    // Where child i ends, given where child i - 1 ended (getJsonbOffset).
    let end_of = |i: usize, prev_end: usize| -> Option<usize> {
        let e = entry(i)?;
        let field = (e & JENTRY_OFFLENMASK) as usize;
        Some(if e & JENTRY_HAS_OFF != 0 { field } else { prev_end.checked_add(field)? })
    };
    // Child i: its type and bytes, from where it starts (the previous end).
    let child = |i: usize, start: usize| -> Option<(u32, &[u8], usize)> {
        let end = end_of(i, start)?;
        if start > end {
            return None;
        }
        Some((entry(i)? & JENTRY_TYPEMASK, c.get(base + start..base + end)?, end))
    };
    // Numerics and containers start INTALIGN'd from `base` (itself 4-aligned);
    // the padding is counted in the child's length.
    let aligned = |start: usize, data: &'_ [u8]| -> Option<usize> {
        let pad = start.next_multiple_of(4) - start;
        (pad <= data.len()).then_some(pad)
    };
    // Writes child i (starting at `start`) and returns where it ends.
    let value = |i: usize, start: usize, out: &mut Vec<u8>| -> Option<usize> {
        let (kind, data, end) = child(i, start)?;
        match kind {
            JENTRY_ISSTRING => escape_string(data, out)?,
            JENTRY_ISNUMERIC => numeric_text(&data[aligned(start, data)?..], out)?,
            JENTRY_ISBOOL_FALSE => out.extend_from_slice(b"false"),
            JENTRY_ISBOOL_TRUE => out.extend_from_slice(b"true"),
            JENTRY_ISNULL => out.extend_from_slice(b"null"),
            JENTRY_ISCONTAINER => container_text(&data[aligned(start, data)?..], out, depth + 1)?,
            _ => return None,
        }
        Some(end)
    };
    if header & JB_FSCALAR != 0 {
        // A bare scalar is stored as a one-element array and printed alone.
        if !array || count != 1 || child(0, 0)?.0 == JENTRY_ISCONTAINER {
            return None;
        }
        return value(0, 0, out).map(|_| ());
    }
    if object {
        // Keys come first, then the values in the same order.
        let mut values_start = 0;
        for i in 0..count {
            values_start = end_of(i, values_start)?;
        }
        let (mut key_at, mut value_at) = (0, values_start);
        out.push(b'{');
        for i in 0..count {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            let (kind, key, key_end) = child(i, key_at)?;
            if kind != JENTRY_ISSTRING {
                return None;
            }
            escape_string(key, out)?;
            out.extend_from_slice(b": ");
            value_at = value(count + i, value_at, out)?;
            key_at = key_end;
        }
        out.push(b'}');
    } else {
        let mut at = 0;
        out.push(b'[');
        for i in 0..count {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            at = value(i, at, out)?;
        }
        out.push(b']');
    }
    Some(())
}

/// Bytes escape_json does not copy as they are: `"`, `\` and controls.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// escape_json: a quoted string with `"`, `\` and control characters
/// escaped. `None` if the bytes are not UTF-8.
fn escape_string(s: &[u8], out: &mut Vec<u8>) -> Option<()> {
    if !s.is_ascii() {
        std::str::from_utf8(s).ok()?;
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut plain = 0;
    for (i, &b) in s.iter().enumerate() {
        if !NEEDS_ESCAPE[b as usize] {
            continue;
        }
        out.extend_from_slice(&s[plain..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]);
            }
        }
        plain = i + 1;
    }
    out.extend_from_slice(&s[plain..]);
    out.push(b'"');
    Some(())
}

const NUMERIC_SIGN_MASK: u16 = 0xC000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_SHORT: u16 = 0x8000;
const NUMERIC_SPECIAL: u16 = 0xC000;
const NUMERIC_SHORT_SIGN_MASK: u16 = 0x2000;
const NUMERIC_SHORT_DSCALE_MASK: u16 = 0x1F80;
const NUMERIC_SHORT_DSCALE_SHIFT: u16 = 7;
const NUMERIC_SHORT_WEIGHT_SIGN_MASK: u16 = 0x0040;
const NUMERIC_SHORT_WEIGHT_MASK: u16 = 0x003F;
const NUMERIC_DSCALE_MASK: u16 = 0x3FFF;

/// numeric_out of a finite numeric varlena (get_str_from_var, NBASE 10000).
fn numeric_text(v: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let body = varlena_body(v)?;
    let u16_at = |at: usize| -> Option<u16> { Some(u16::from_ne_bytes(body.get(at..at + 2)?.try_into().ok()?)) };
    let head = u16_at(0)?;
    let (negative, dscale, weight, digits_at) = match head & NUMERIC_SIGN_MASK {
        NUMERIC_SPECIAL => return None,
        NUMERIC_SHORT => {
            let weight_bits = (head & NUMERIC_SHORT_WEIGHT_MASK) as i32;
            let weight = if head & NUMERIC_SHORT_WEIGHT_SIGN_MASK != 0 { weight_bits - 64 } else { weight_bits };
            (
                head & NUMERIC_SHORT_SIGN_MASK != 0,
                ((head & NUMERIC_SHORT_DSCALE_MASK) >> NUMERIC_SHORT_DSCALE_SHIFT) as usize,
                weight,
                2,
            )
        }
        sign => (sign == NUMERIC_NEG, (head & NUMERIC_DSCALE_MASK) as usize, u16_at(2)? as i16 as i32, 4),
    };
    let digit_bytes = body.get(digits_at..)?;
    if digit_bytes.len() % 2 != 0 {
        return None;
    }
    let ndigits = (digit_bytes.len() / 2) as i32;
    let digit = |d: i32| -> Option<u16> {
        if d < 0 || d >= ndigits {
            return Some(0);
        }
        let at = d as usize * 2;
        let dig = u16::from_ne_bytes(digit_bytes[at..at + 2].try_into().ok()?);
        (dig < 10_000).then_some(dig)
    };
    if negative {
        out.push(b'-');
    }
    let mut d: i32;
    if weight < 0 {
        d = weight + 1;
        out.push(b'0');
    } else {
        d = 0;
        while d <= weight {
            let dig = digit(d)?;
            let chars = [dig / 1000, dig / 100 % 10, dig / 10 % 10, dig % 10].map(|c| b'0' + c as u8);
            // The first group is printed without its leading zeroes.
            let skip = if d == 0 { chars.iter().take(3).take_while(|&&c| c == b'0').count() } else { 0 };
            out.extend_from_slice(&chars[skip..]);
            d += 1;
        }
    }
    if dscale > 0 {
        out.push(b'.');
        let mut written = 0;
        while written < dscale {
            let dig = digit(d)?;
            let chars = [dig / 1000, dig / 100 % 10, dig / 10 % 10, dig % 10].map(|c| b'0' + c as u8);
            let take = (dscale - written).min(4);
            out.extend_from_slice(&chars[..take]);
            written += take;
            d += 1;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4-byte-header varlena around `body`.
    fn varlena(body: &[u8]) -> Vec<u8> {
        let mut v = (((body.len() + 4) as u32) << 2).to_le_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    fn numeric_long(negative: bool, dscale: u16, weight: i16, digits: &[u16]) -> Vec<u8> {
        let mut b = (if negative { NUMERIC_NEG } else { 0 } | dscale).to_ne_bytes().to_vec();
        b.extend_from_slice(&weight.to_ne_bytes());
        for d in digits {
            b.extend_from_slice(&d.to_ne_bytes());
        }
        varlena(&b)
    }

    fn numeric_short(negative: bool, dscale: u16, weight: i16, digits: &[u16]) -> Vec<u8> {
        let w = if weight < 0 { NUMERIC_SHORT_WEIGHT_SIGN_MASK | ((weight + 64) as u16) } else { weight as u16 };
        let head = NUMERIC_SHORT | if negative { NUMERIC_SHORT_SIGN_MASK } else { 0 } | (dscale << 7) | w;
        let mut b = head.to_ne_bytes().to_vec();
        for d in digits {
            b.extend_from_slice(&d.to_ne_bytes());
        }
        varlena(&b)
    }

    fn num(v: &[u8]) -> String {
        let mut out = Vec::new();
        numeric_text(v, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numerics_print_as_numeric_out() {
        assert_eq!(num(&numeric_short(false, 0, 0, &[])), "0"); // zero: no digits
        assert_eq!(num(&numeric_short(false, 2, 0, &[])), "0.00");
        assert_eq!(num(&numeric_short(false, 0, 0, &[42])), "42");
        assert_eq!(num(&numeric_short(false, 0, 1, &[12, 3456])), "123456");
        assert_eq!(num(&numeric_short(false, 0, 1, &[12])), "120000"); // trailing zero digit stripped
        assert_eq!(num(&numeric_short(true, 3, 0, &[1, 5000])), "-1.500");
        assert_eq!(num(&numeric_short(false, 11, -1, &[12, 3456, 7890])), "0.00123456789");
        assert_eq!(num(&numeric_short(false, 6, -2, &[5000])), "0.000050");
        assert_eq!(num(&numeric_short(false, 6, -2, &[50])), "0.000000"); // digits past dscale are cut, not rounded
        assert_eq!(num(&numeric_long(false, 20, 0, &[7, 1234])), "7.12340000000000000000");
        assert_eq!(num(&numeric_long(true, 0, 3, &[9999, 0, 0, 1])), "-9999000000000001");
    }

    #[test]
    fn special_numerics_are_left_to_postgres() {
        let mut out = Vec::new();
        assert!(numeric_text(&varlena(&NUMERIC_SPECIAL.to_ne_bytes()), &mut out).is_none());
    }

    /// Builds a container from (type, bytes) children, as Postgres lays it
    /// out: numerics and containers 4-aligned with the padding counted in
    /// their length, and every fourth entry holding its end offset instead.
    fn container(flags: u32, count: u32, children: &[(u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = (flags | count).to_ne_bytes().to_vec();
        let mut data: Vec<u8> = Vec::new();
        for (i, (kind, bytes)) in children.iter().enumerate() {
            let start = data.len();
            if *kind == JENTRY_ISNUMERIC || *kind == JENTRY_ISCONTAINER {
                data.resize(start.next_multiple_of(4), 0);
            }
            data.extend_from_slice(bytes);
            let field = if i % 4 == 3 { JENTRY_HAS_OFF | data.len() as u32 } else { (data.len() - start) as u32 };
            out.extend_from_slice(&(field | kind).to_ne_bytes());
        }
        out.extend_from_slice(&data);
        out
    }

    fn text(c: &[u8]) -> Option<String> {
        let mut s = String::new();
        append_jsonb_text(c, &mut s).map(|()| s)
    }

    #[test]
    fn containers_print_as_jsonb_out() {
        let s = |t: &str| (JENTRY_ISSTRING, t.as_bytes().to_vec());
        let inner = container(JB_FARRAY, 2, &[(JENTRY_ISNUMERIC, numeric_short(false, 0, 0, &[1])), (JENTRY_ISNULL, vec![])]);
        let obj = container(
            JB_FOBJECT,
            5,
            &[
                s("a"),
                s("b"),
                s("cc"),
                s("dd"),
                s("q\"\\\n\u{1}é"),
                (JENTRY_ISBOOL_TRUE, vec![]),
                (JENTRY_ISCONTAINER, inner),
                (JENTRY_ISNUMERIC, numeric_short(true, 2, 0, &[3, 1400])),
                (JENTRY_ISCONTAINER, container(JB_FOBJECT, 0, &[])),
                (JENTRY_ISBOOL_FALSE, vec![]),
            ],
        );
        assert_eq!(
            text(&obj).as_deref(),
            Some(r#"{"a": true, "b": [1, null], "cc": -3.14, "dd": {}, "q\"\\\n\u0001é": false}"#)
        );
        assert_eq!(text(&container(JB_FARRAY, 0, &[])).as_deref(), Some("[]"));
        let scalar = container(JB_FARRAY | JB_FSCALAR, 1, &[s("x")]);
        assert_eq!(text(&scalar).as_deref(), Some(r#""x""#));
        assert_eq!(jsonb_text(&varlena(&scalar)).as_deref(), Some(r#""x""#));
    }

    #[test]
    fn malformed_bytes_give_none_not_a_panic() {
        let good = container(JB_FOBJECT, 1, &[(JENTRY_ISSTRING, b"k".to_vec()), (JENTRY_ISSTRING, b"v".to_vec())]);
        for cut in 0..good.len() {
            let _ = text(&good[..cut]);
        }
        let mut bad = good.clone();
        bad[4] = 0xff; // a key entry with an impossible length
        assert!(text(&bad).is_none());
        assert!(text(&container(JB_FOBJECT | JB_FARRAY, 0, &[])).is_none());
        assert!(jsonb_text(&[0x03]).is_none()); // compressed
        assert!(jsonb_text(&[0x01]).is_none()); // external pointer
    }
}
