//! Accepted rows in PostgreSQL's binary COPY format, so the server stores
//! them without parsing text again (decimal, timestamp and uuid input
//! functions were a third of an ingest's CPU).
//!
//! Layout (PostgreSQL docs, "COPY — Binary Format"): a header, then per row
//! an int16 field count and per field an int32 byte length (-1 = NULL)
//! followed by the type's binary representation; an int16 -1 ends the data.

use super::columns::{Col, ColumnKind, RAW_COLUMNS};
use super::NormalizedRow;

/// Signature, flags (no OIDs), header extension length 0.
pub const COPY_BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
pub const COPY_BINARY_TRAILER: &[u8] = &(-1i16).to_be_bytes();

/// Postgres timestamps count microseconds from 2000-01-01.
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// A decimal the binary numeric format cannot carry (weight beyond int16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumericOutOfRange;

/// Appends `prefix` (already encoded fields) and `row` as one binary COPY
/// row of `prefix_fields` + all RAW_COLUMNS fields.
pub fn write_copy_binary_row(
    row: &NormalizedRow<'_>,
    prefix: &[u8],
    prefix_fields: i16,
    out: &mut Vec<u8>,
) -> Result<(), (Col, NumericOutOfRange)> {
    let start = out.len();
    out.extend_from_slice(&(prefix_fields + RAW_COLUMNS.len() as i16).to_be_bytes());
    out.extend_from_slice(prefix);
    for (col, spec) in Col::ALL.iter().zip(RAW_COLUMNS) {
        let Some(value) = row.get(*col) else {
            out.extend_from_slice(&(-1i32).to_be_bytes());
            continue;
        };
        match spec.kind {
            ColumnKind::Timestamp => {
                let micros = match col {
                    Col::ChargePeriodStart => row.charge_period_start_micros(),
                    Col::ChargePeriodEnd => row.charge_period_end_micros(),
                    Col::BillingPeriodStart => row.billing_period_start_micros(),
                    _ => row.billing_period_end_micros(),
                };
                out.extend_from_slice(&8i32.to_be_bytes());
                out.extend_from_slice(&(micros - PG_EPOCH_OFFSET_MICROS).to_be_bytes());
            }
            ColumnKind::Decimal => {
                if let Err(e) = write_numeric_field(value, out) {
                    out.truncate(start);
                    return Err((*col, e));
                }
            }
            ColumnKind::Json => {
                // jsonb binary: a version byte, then the JSON text.
                out.extend_from_slice(&(value.len() as i32 + 1).to_be_bytes());
                out.push(1);
                out.extend_from_slice(value.as_bytes());
            }
            _ => write_bytes_field(value.as_bytes(), out),
        }
    }
    Ok(())
}

/// A field of raw bytes (text, or a uuid's 16 bytes).
pub fn write_bytes_field(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A decimal already checked by the reader (plain or scientific notation,
/// within `numeric`'s limits) as a binary `numeric` field: ndigits, weight,
/// sign, dscale, then base-10000 digits, all int16.
pub fn write_numeric_field(s: &str, out: &mut Vec<u8>) -> Result<(), NumericOutOfRange> {
    let s = s.trim_ascii();
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().map_err(|_| NumericOutOfRange)?),
        None => (rest, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let dscale = (frac_part.len() as i64 - exp).max(0);
    // All digits, and how many of them stand before the decimal point.
    let digits = || int_part.bytes().chain(frac_part.bytes()).map(|b| b.wrapping_sub(b'0'));
    let leading_zeros = digits().take_while(|d| *d == 0).count();
    let total = int_part.len() + frac_part.len();
    let significant = total - leading_zeros;
    let point = int_part.len() as i64 + exp - leading_zeros as i64;
    // Left-pad so the decimal point falls on a base-10000 digit boundary.
    let pad = (4 - point.rem_euclid(4)) % 4;
    let weight = (point + pad) / 4 - 1;
    let ngroups = if significant == 0 { 0 } else { (significant as i64 + pad + 3) / 4 };
    if dscale > 0x3FFF || !(i16::MIN as i64..=i16::MAX as i64).contains(&weight) || ngroups > i16::MAX as i64 {
        return Err(NumericOutOfRange);
    }
    let mut groups: Vec<i16> = Vec::with_capacity(ngroups as usize);
    let mut acc: i16 = 0;
    let mut filled = pad;
    for d in digits().skip(leading_zeros) {
        acc = acc * 10 + d as i16;
        filled += 1;
        if filled == 4 {
            groups.push(acc);
            acc = 0;
            filled = 0;
        }
    }
    if filled > 0 {
        groups.push(acc * [1, 1000, 100, 10][filled as usize]);
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let (weight, sign) = if groups.is_empty() { (0, 0x0000u16) } else { (weight, if negative { 0x4000 } else { 0 }) };
    out.extend_from_slice(&(8 + 2 * groups.len() as i32).to_be_bytes());
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&(weight as i16).to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(dscale as i16).to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (ndigits, weight, sign, dscale, digits) decoded from a numeric field.
    fn numeric(s: &str) -> (i16, i16, u16, i16, Vec<i16>) {
        let mut out = vec![];
        write_numeric_field(s, &mut out).unwrap();
        let len = i32::from_be_bytes(out[0..4].try_into().unwrap()) as usize;
        assert_eq!(len, out.len() - 4);
        let w = |i: usize| i16::from_be_bytes(out[4 + 2 * i..6 + 2 * i].try_into().unwrap());
        let n = w(0);
        (n, w(1), w(2) as u16, w(3), (0..n as usize).map(|i| w(4 + i)).collect())
    }

    #[test]
    fn numerics_match_what_numeric_send_produces() {
        assert_eq!(numeric("0"), (0, 0, 0, 0, vec![]));
        assert_eq!(numeric("0.000"), (0, 0, 0, 3, vec![]));
        assert_eq!(numeric("-0.0"), (0, 0, 0, 1, vec![]));
        assert_eq!(numeric("1.5"), (2, 0, 0, 1, vec![1, 5000]));
        assert_eq!(numeric("1.50"), (2, 0, 0, 2, vec![1, 5000]));
        assert_eq!(numeric("-123456.789"), (3, 1, 0x4000, 3, vec![12, 3456, 7890]));
        assert_eq!(numeric("0.0015"), (1, -1, 0, 4, vec![15]));
        assert_eq!(numeric("1.5E-3"), (1, -1, 0, 4, vec![15]));
        assert_eq!(numeric("1.50e2"), (1, 0, 0, 0, vec![150]));
        assert_eq!(numeric("12345678"), (2, 1, 0, 0, vec![1234, 5678]));
        assert_eq!(numeric("10000"), (1, 1, 0, 0, vec![1]));
        assert_eq!(numeric("0.00000000001"), (1, -3, 0, 11, vec![10]));
        assert_eq!(numeric("+007.25000000000"), (2, 0, 0, 11, vec![7, 2500]));
        assert_eq!(numeric(".5"), (1, -1, 0, 1, vec![5000]));
        assert_eq!(numeric("5."), (1, 0, 0, 0, vec![5]));
        assert_eq!(numeric("0.12345678901234"), (4, -1, 0, 14, vec![1234, 5678, 9012, 3400]));
        assert_eq!(numeric("2E+5"), (1, 1, 0, 0, vec![20]));
    }

    #[test]
    fn a_weight_beyond_int16_is_refused() {
        assert_eq!(write_numeric_field("1e131100", &mut vec![]), Err(NumericOutOfRange));
    }
}
