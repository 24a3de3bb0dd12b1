//! FinOps FOCUS CSV reader for `d5.ingest_focus`.
//!
//! Pure Rust, no Postgres. [`FocusReader`] (or the callback wrapper
//! [`parse_focus_csv`]) reads a whole FOCUS CSV text (header line first),
//! maps the header of any FOCUS version 0.5 … 1.3 onto [`RAW_COLUMNS`],
//! validates and normalizes every row, and hands out each accepted row as a
//! [`NormalizedRow`] (values by [`Col`], the row already encoded as a
//! PostgreSQL `COPY … FROM STDIN` text line) or a [`Reject`] (line number,
//! column, reason, raw text). The [`ParseSummary`] at the end carries counts,
//! ignored header columns, the distinct billing-period keys, the charge-period
//! range and a SHA-256 digest of the accepted rows.
//!
//! Memory: nothing per row is kept; each row reuses the reader's buffers, and
//! values that need no normalization are borrowed from the input.
//!
//! ## Normalization rules
//! * NULL: an empty field, or `NULL` in any case (surrounding whitespace
//!   ignored, quoting irrelevant).
//! * [`ColumnKind::Text`]: stored verbatim.
//! * [`ColumnKind::Decimal`]: trimmed source text kept verbatim (full
//!   precision); plain or scientific notation; refused: NaN, Infinity,
//!   thousands separators, decimal commas, anything PostgreSQL `numeric`
//!   would refuse (exponent beyond ±1000 …).
//! * [`ColumnKind::Timestamp`]: see [`parse_timestamp_micros`]; normalized to
//!   `YYYY-MM-DD HH:MM:SS[.ffffff]+00`.
//! * [`ColumnKind::Json`]: must be a JSON object; re-emitted compactly,
//!   exactly (no float rounding, member order kept); `{}` becomes NULL.
//! * [`ColumnKind::Currency`]: ISO 4217 (active + recently withdrawn), upper-cased.
//! * [`ColumnKind::Enum`]: matched ignoring case, spaces, `-` and `_`;
//!   stored with the FOCUS canonical spelling.
//! * Rows where a mandatory column is NULL, `charge_period_end <
//!   charge_period_start`, `billing_period_end < billing_period_start`, the
//!   field count differs from the header's, or the CSV quoting is broken are
//!   rejected. Blank lines are skipped.
//!
//! ## Digest
//! `ParseSummary::digest` = lowercase hex SHA-256 over the concatenation, in
//! input order, of [`NormalizedRow::copy_text`] of every accepted row (each a
//! COPY text line in [`RAW_COLUMNS`] order, `\N` for NULL, ending in `\n`).
//! No rows → SHA-256 of the empty string.

mod binary;
mod columns;
mod currency;
mod split;
mod values;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

pub use columns::{
    copy_column_list, raw_columns_ddl, Col, ColumnKind, ColumnSpec, EnumSpec, HeaderAlias,
    CAPACITY_RESERVATION_STATUS, CHARGE_CATEGORY, CHARGE_CLASS, CHARGE_FREQUENCY,
    COMMITMENT_DISCOUNT_CATEGORY, COMMITMENT_DISCOUNT_STATUS, HEADER_ALIASES, PRICING_CATEGORY,
    PRIORITY_CURRENT, RAW_COLUMNS, RAW_COLUMN_COUNT, SERVICE_CATEGORY,
};
pub use binary::{write_bytes_field, write_copy_binary_row, NumericOutOfRange, COPY_BINARY_HEADER, COPY_BINARY_TRAILER};
pub use currency::{canonical_currency, ISO_4217_ACTIVE, ISO_4217_RECENTLY_WITHDRAWN};
pub use values::{
    escape_copy_text, format_timestamp_micros, timestamp_micros_to_string, ContainsNul,
    MICROS_PER_DAY, MICROS_PER_SECOND,
};

use split::{field_text, FieldSpan, RecordInfo, Splitter};

/// Parses a FOCUS timestamp (see the module docs) into microseconds since
/// 1970-01-01 UTC. Accepted: `2024-09-18T22:00:00Z`, `2024-09-18 22:00:00`
/// (no offset = UTC), `…+02:00`, `…-0530`, `…+02`, `… UTC`, fractional seconds
/// (`.` or `,`; rounded half-to-even to microseconds), `HH:MM` without
/// seconds, date-only `2024-09-01` (midnight UTC), `24:00:00`.
pub fn parse_timestamp_micros(s: &str) -> Result<i64, String> {
    values::parse_timestamp(s.trim_ascii()).map_err(str::to_owned)
}

/// Whether `s` is a finite decimal PostgreSQL `numeric` accepts.
pub fn is_valid_decimal(s: &str) -> bool {
    values::check_decimal(s.trim_ascii()).is_ok()
}

/// The whole header was refused; nothing was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("FOCUS input is empty: expected a CSV header line")]
    Empty,
    #[error("FOCUS header line is malformed CSV: {0}")]
    Malformed(&'static str),
    #[error("FOCUS header lacks mandatory column(s): {}", describe_columns(.0))]
    MissingMandatory(Vec<&'static str>),
    #[error("FOCUS header columns {first:?} and {second:?} both map to {column}")]
    Duplicate {
        column: &'static str,
        first: String,
        second: String,
    },
}

fn describe_columns(cols: &[&'static str]) -> String {
    let parts: Vec<String> = cols
        .iter()
        .map(|n| match Col::from_name(n) {
            Some(c) => format!("{} ({})", n, c.spec().focus_name),
            None => (*n).to_owned(),
        })
        .collect();
    parts.join(", ")
}

/// A rejected row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject<'a> {
    /// 1-based physical line where the record starts (header = line 1).
    pub line_number: u64,
    /// snake_case raw column at fault, if the fault is a single column's.
    pub column: Option<&'static str>,
    /// Human-readable reason, prefixed with the column name when there is one,
    /// e.g. `billed_cost: "12,5" is not a number`.
    pub reason: String,
    /// The record's text as in the input (may span lines), without its line
    /// terminator.
    pub raw_line: &'a str,
}

impl<'a> Reject<'a> {
    /// `raw_line` cut to at most `max_bytes` (on a character boundary) — an
    /// unterminated quote can make a rejected record span the rest of the
    /// input, so store a bounded prefix.
    pub fn raw_line_truncated(&self, max_bytes: usize) -> &'a str {
        truncate_at_char_boundary(self.raw_line, max_bytes)
    }
}

/// The longest prefix of `s` of at most `max_bytes` that ends on a character.
pub fn truncate_at_char_boundary(s: &str, max_bytes: usize) -> &str {
    let mut end = max_bytes.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// `(billing_account_id, billing_period_start, billing_period_end)` of
/// accepted rows — the replace key (with the cloud account) of an ingest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BillingPeriodKey {
    pub billing_account_id: String,
    /// Microseconds since the Unix epoch (UTC).
    pub billing_period_start: i64,
    pub billing_period_end: i64,
}

/// Outcome of a whole parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseSummary {
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    /// Header columns not loaded, in header order, as written (trimmed):
    /// provider-specific `x_…` columns, unknown columns, and deprecated
    /// spellings superseded by a newer one in the same header.
    pub ignored_columns: Vec<String>,
    /// Raw columns the header provided (others are NULL in every row).
    pub present_columns: Vec<Col>,
    /// Distinct billing-period keys of accepted rows.
    pub billing_periods: BTreeSet<BillingPeriodKey>,
    /// Lowercase hex SHA-256, see the module docs.
    pub digest: String,
    /// Range of `charge_period_start` over accepted rows (µs since epoch).
    pub min_charge_period_start: Option<i64>,
    pub max_charge_period_start: Option<i64>,
    /// Largest `charge_period_end` over accepted rows.
    pub max_charge_period_end: Option<i64>,
}

/// Where a normalized value lives.
#[derive(Clone, Copy, Debug)]
enum Val {
    Null,
    /// In the input text (verbatim).
    Input(usize, usize),
    /// In the row's scratch buffer.
    Scratch(usize, usize),
    /// In the row's COPY line (the value needed no COPY escaping).
    Line(usize, usize),
    Static(&'static str),
}

/// An accepted, normalized row. Borrowed from the reader until the next row.
#[derive(Debug)]
pub struct NormalizedRow<'a> {
    input: &'a str,
    scratch: String,
    values: [Val; RAW_COLUMN_COUNT],
    copy_line: String,
    line_number: u64,
    charge_period_start: i64,
    charge_period_end: i64,
    billing_period_start: i64,
    billing_period_end: i64,
}

impl<'a> NormalizedRow<'a> {
    fn new(input: &'a str) -> Self {
        NormalizedRow {
            input,
            scratch: String::with_capacity(512),
            values: [Val::Null; RAW_COLUMN_COUNT],
            copy_line: String::with_capacity(2048),
            line_number: 0,
            charge_period_start: 0,
            charge_period_end: 0,
            billing_period_start: 0,
            billing_period_end: 0,
        }
    }

    /// Every value is reassigned while the row is processed.
    fn reset(&mut self, line: u64) {
        self.scratch.clear();
        self.copy_line.clear();
        self.line_number = line;
    }

    fn resolve(&self, v: Val) -> Option<&str> {
        match v {
            Val::Null => None,
            Val::Input(a, b) => self.input.get(a..b),
            Val::Scratch(a, b) => self.scratch.get(a..b),
            Val::Line(a, b) => self.copy_line.get(a..b),
            Val::Static(s) => Some(s),
        }
    }

    /// The normalized value of `col` (`None` = SQL NULL).
    #[inline]
    pub fn get(&self, col: Col) -> Option<&str> {
        self.resolve(self.values[col.index()])
    }

    /// The normalized value at `RAW_COLUMNS` index `i`.
    pub fn value(&self, i: usize) -> Option<&str> {
        self.values.get(i).and_then(|v| self.resolve(*v))
    }

    /// All values in `RAW_COLUMNS` order.
    pub fn values(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        self.values.iter().map(move |v| self.resolve(*v))
    }

    /// This row as one PostgreSQL COPY text line (RAW_COLUMNS order, tab
    /// separated, `\N` for NULL, escaped, terminated by `\n`). To prepend
    /// constant columns (tenant, cloud account, batch), write them followed
    /// by a tab before this line.
    #[inline]
    pub fn copy_text(&self) -> &[u8] {
        self.copy_line.as_bytes()
    }

    /// [`Self::copy_text`] as `&str` (always valid UTF-8).
    #[inline]
    pub fn copy_text_str(&self) -> &str {
        &self.copy_line
    }

    /// 1-based physical line where the record starts.
    pub fn line_number(&self) -> u64 {
        self.line_number
    }
    pub fn charge_period_start_micros(&self) -> i64 {
        self.charge_period_start
    }
    pub fn charge_period_end_micros(&self) -> i64 {
        self.charge_period_end
    }
    pub fn billing_period_start_micros(&self) -> i64 {
        self.billing_period_start
    }
    pub fn billing_period_end_micros(&self) -> i64 {
        self.billing_period_end
    }
    /// Mandatory, so never empty in an accepted row.
    pub fn billing_account_id(&self) -> &str {
        self.get(Col::BillingAccountId).unwrap_or("")
    }
}

/// Appends `row` as a PostgreSQL COPY text line (see [`NormalizedRow::copy_text`]).
pub fn write_copy_text_row(row: &NormalizedRow<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(row.copy_text());
}

/// Streaming FOCUS CSV reader; see the module docs.
pub struct FocusReader<'a> {
    input: &'a str,
    splitter: Splitter<'a>,
    header_len: usize,
    /// Per raw column (RAW_COLUMNS order): its header field index.
    col_field: [Option<usize>; RAW_COLUMN_COUNT],
    present: Vec<Col>,
    ignored: Vec<String>,
    fields: Vec<FieldSpan>,
    unescape_buf: String,
    ts_cache: [TsCache; 4],
    row: NormalizedRow<'a>,
    hasher: Sha256,
    accepted: u64,
    rejected: u64,
    periods: BTreeSet<BillingPeriodKey>,
    last_key: Option<BillingPeriodKey>,
    min_cps: Option<i64>,
    max_cps: Option<i64>,
    max_cpe: Option<i64>,
}

fn is_blank(input: &str, rec: &RecordInfo, fields: &[FieldSpan]) -> bool {
    rec.error.is_none()
        && fields.len() == 1
        && fields.first().is_some_and(|f| {
            input
                .get(f.start..f.end)
                .is_some_and(|t| t.trim().is_empty())
        })
}

/// Maps a header name to a raw column and its priority.
fn lookup_header(name: &str) -> Option<(Col, u8)> {
    let key = columns::header_key(name);
    if key.is_empty() {
        return None;
    }
    if let Some(c) = Col::ALL
        .iter()
        .find(|c| columns::header_key(c.spec().focus_name) == key)
    {
        return Some((*c, PRIORITY_CURRENT));
    }
    HEADER_ALIASES
        .iter()
        .find(|a| columns::header_key(a.header) == key)
        .map(|a| (a.column, a.priority))
}

type RowError = (Option<Col>, String);

/// Last successfully parsed text of one of the four period timestamps.
#[derive(Default)]
struct TsCache {
    valid: bool,
    raw: String,
    formatted: String,
    micros: i64,
}

/// Raw columns that are mandatory.
const MANDATORY: &[Col] = &{
    let mut out = [Col::AvailabilityZone; 13];
    let mut n = 0;
    let mut i = 0;
    while i < Col::ALL.len() {
        if Col::ALL[i].spec().mandatory {
            out[n] = Col::ALL[i];
            n += 1;
        }
        i += 1;
    }
    assert!(n == 13, "update MANDATORY's length");
    out
};

fn quoted(s: &str) -> String {
    const MAX: usize = 80;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{:?}…", s.get(..i).unwrap_or("")),
        None => format!("{s:?}"),
    }
}

fn col_err(col: Col, msg: std::fmt::Arguments<'_>) -> RowError {
    (Some(col), format!("{}: {}", col.name(), msg))
}

/// Normalizes one field of column `col` into `row`: sets its value and
/// appends its COPY text (escaped, or `\N`) to the row's COPY line. `src` is
/// the field's byte offset in the input when `text` is borrowed verbatim.
#[inline]
fn normalize_into(
    row: &mut NormalizedRow<'_>,
    ts_cache: &mut [TsCache; 4],
    col: Col,
    text: &str,
    src: Option<usize>,
) -> Result<(), RowError> {
    let i = col.index();
    let t = text.trim_ascii();
    if t.is_empty() || t.eq_ignore_ascii_case("null") {
        row.copy_line.push_str("\\N");
        row.values[i] = Val::Null;
        return Ok(());
    }
    let line = &mut row.copy_line;
    let a = line.len();
    let val = match col.spec().kind {
        ColumnKind::Text => {
            if values::escape_copy_into(text, line).is_err() {
                return Err(col_err(col, format_args!("value contains a NUL character")));
            }
            if line.len() - a == text.len() {
                Val::Line(a, line.len())
            } else if let Some(o) = src {
                Val::Input(o, o + text.len())
            } else {
                let s0 = row.scratch.len();
                row.scratch.push_str(text);
                Val::Scratch(s0, row.scratch.len())
            }
        }
        ColumnKind::Decimal => {
            if let Err(e) = values::check_decimal(t) {
                return Err(match e {
                    values::DecimalError::Syntax => {
                        col_err(col, format_args!("{} is not a number", quoted(t)))
                    }
                    values::DecimalError::NonFinite => {
                        col_err(col, format_args!("{} is not a finite number", quoted(t)))
                    }
                    values::DecimalError::OutOfRange => col_err(
                        col,
                        format_args!("{} is out of range for numeric", quoted(t)),
                    ),
                });
            }
            // Only [0-9+-.eE]: nothing to escape.
            line.push_str(t);
            Val::Line(a, line.len())
        }
        ColumnKind::Timestamp => {
            let slot = match col {
                Col::ChargePeriodStart => 0,
                Col::ChargePeriodEnd => 1,
                Col::BillingPeriodStart => 2,
                Col::BillingPeriodEnd => 3,
                _ => 4,
            };
            let micros = match ts_cache.get_mut(slot) {
                // Exports repeat the same period texts row after row.
                Some(c) if c.valid && c.raw == t => {
                    line.push_str(&c.formatted);
                    c.micros
                }
                cache => {
                    let micros = values::parse_timestamp(t).map_err(|why| {
                        col_err(
                            col,
                            format_args!("{} is not a valid timestamp ({why})", quoted(t)),
                        )
                    })?;
                    values::format_timestamp_micros(micros, line);
                    if let Some(c) = cache {
                        c.raw.clear();
                        c.raw.push_str(t);
                        c.formatted.clear();
                        c.formatted.push_str(line.get(a..).unwrap_or(""));
                        c.micros = micros;
                        c.valid = true;
                    }
                    micros
                }
            };
            match slot {
                0 => row.charge_period_start = micros,
                1 => row.charge_period_end = micros,
                2 => row.billing_period_start = micros,
                3 => row.billing_period_end = micros,
                _ => {}
            }
            Val::Line(a, line.len())
        }
        ColumnKind::Json => {
            let s0 = row.scratch.len();
            match values::minify_json_object(t, &mut row.scratch) {
                Ok(true) => {
                    row.scratch.truncate(s0);
                    line.push_str("\\N");
                    Val::Null
                }
                Ok(false) => {
                    let json = row.scratch.get(s0..).unwrap_or("");
                    // JSON text has no raw control characters; NUL is impossible.
                    let _ = values::escape_copy_into(json, line);
                    if line.len() - a == json.len() {
                        row.scratch.truncate(s0);
                        Val::Line(a, line.len())
                    } else {
                        Val::Scratch(s0, row.scratch.len())
                    }
                }
                Err(e) => return Err(col_err(col, format_args!("{e}"))),
            }
        }
        ColumnKind::Currency => match currency::canonical_currency(t) {
            Some(c) => {
                line.push_str(c);
                Val::Static(c)
            }
            None => {
                return Err(col_err(
                    col,
                    format_args!("{} is not an ISO 4217 currency code", quoted(t)),
                ))
            }
        },
        ColumnKind::Enum(e) => match e.canonical(t) {
            Some(v) => {
                line.push_str(v);
                Val::Static(v)
            }
            None => {
                return Err(col_err(
                    col,
                    format_args!(
                        "{} is not an allowed {} value (allowed: {})",
                        quoted(t),
                        e.focus_name,
                        e.allowed_list()
                    ),
                ))
            }
        },
    };
    row.values[i] = val;
    Ok(())
}

impl<'a> FocusReader<'a> {
    /// Reads and maps the header. A UTF-8 BOM and blank lines before the
    /// header are skipped.
    pub fn new(input: &'a str) -> Result<Self, HeaderError> {
        let start = if input.starts_with('\u{feff}') {
            '\u{feff}'.len_utf8()
        } else {
            0
        };
        let mut splitter = Splitter::new(input, start);
        let mut fields = Vec::with_capacity(RAW_COLUMN_COUNT + 16);
        let rec = loop {
            let rec = splitter
                .next_record(&mut fields)
                .ok_or(HeaderError::Empty)?;
            if !is_blank(input, &rec, &fields) {
                break rec;
            }
        };
        if let Some(e) = rec.error {
            return Err(HeaderError::Malformed(e));
        }
        let mut buf = String::new();
        // Per raw column: (priority, header index, header name).
        let mut chosen: Vec<Option<(u8, usize, String)>> = vec![None; RAW_COLUMN_COUNT];
        let mut ignored: Vec<(usize, String)> = Vec::new();
        for (fi, f) in fields.iter().enumerate() {
            let name = field_text(input, *f, &mut buf).unwrap_or("");
            let name = name.trim_start_matches('\u{feff}').trim().to_owned();
            let is_x = name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("x_"));
            let Some((col, prio)) = (if is_x { None } else { lookup_header(&name) }) else {
                let shown = if name.is_empty() {
                    format!("<unnamed column {}>", fi + 1)
                } else {
                    name
                };
                ignored.push((fi, shown));
                continue;
            };
            let slot = &mut chosen[col.index()];
            match slot {
                None => *slot = Some((prio, fi, name)),
                Some((p, _, prev)) if *p == prio => {
                    return Err(HeaderError::Duplicate {
                        column: col.name(),
                        first: prev.clone(),
                        second: name,
                    });
                }
                Some((p, _, _)) if *p > prio => ignored.push((fi, name)),
                Some(_) => {
                    if let Some((_, pfi, pname)) = slot.replace((prio, fi, name)) {
                        ignored.push((pfi, pname));
                    }
                }
            }
        }
        let missing: Vec<&'static str> = RAW_COLUMNS
            .iter()
            .zip(&chosen)
            .filter(|(spec, ch)| spec.mandatory && ch.is_none())
            .map(|(spec, _)| spec.name)
            .collect();
        if !missing.is_empty() {
            return Err(HeaderError::MissingMandatory(missing));
        }
        ignored.sort_by_key(|(fi, _)| *fi);
        let mut col_field = [None; RAW_COLUMN_COUNT];
        for (slot, ch) in col_field.iter_mut().zip(&chosen) {
            *slot = ch.as_ref().map(|(_, fi, _)| *fi);
        }
        let present = Col::ALL
            .iter()
            .zip(&chosen)
            .filter(|(_, ch)| ch.is_some())
            .map(|(c, _)| *c)
            .collect();
        Ok(FocusReader {
            input,
            splitter,
            header_len: fields.len(),
            col_field,
            present,
            ignored: ignored.into_iter().map(|(_, n)| n).collect(),
            fields,
            unescape_buf: String::new(),
            ts_cache: Default::default(),
            row: NormalizedRow::new(input),
            hasher: Sha256::new(),
            accepted: 0,
            rejected: 0,
            periods: BTreeSet::new(),
            last_key: None,
            min_cps: None,
            max_cps: None,
            max_cpe: None,
        })
    }

    /// Header columns that will not be loaded (see [`ParseSummary::ignored_columns`]).
    pub fn ignored_columns(&self) -> &[String] {
        &self.ignored
    }

    /// Raw columns present in the header.
    pub fn present_columns(&self) -> &[Col] {
        &self.present
    }

    /// The next data row: `Ok` accepted (valid until the next call), `Err`
    /// rejected; `None` at end of input.
    #[allow(clippy::should_implement_trait)]
    pub fn next_row(&mut self) -> Option<Result<&NormalizedRow<'a>, Reject<'a>>> {
        loop {
            let rec = self.splitter.next_record(&mut self.fields)?;
            if is_blank(self.input, &rec, &self.fields) {
                continue;
            }
            return Some(match self.process(&rec) {
                Ok(()) => Ok(&self.row),
                Err((col, reason)) => {
                    self.rejected += 1;
                    let raw = self.input.get(rec.start..rec.end).unwrap_or("");
                    Err(Reject {
                        line_number: rec.line,
                        column: col.map(Col::name),
                        reason,
                        raw_line: raw.trim_end_matches(['\n', '\r']),
                    })
                }
            });
        }
    }

    fn process(&mut self, rec: &RecordInfo) -> Result<(), RowError> {
        if let Some(e) = rec.error {
            return Err((None, format!("malformed CSV: {e}")));
        }
        if self.fields.len() != self.header_len {
            return Err((
                None,
                format!(
                    "row has {} fields, header has {}",
                    self.fields.len(),
                    self.header_len
                ),
            ));
        }
        let row = &mut self.row;
        row.reset(rec.line);
        // Columns in table order, so the COPY line is built in the same pass.
        for (i, col) in Col::ALL.iter().enumerate() {
            if i > 0 {
                row.copy_line.push('\t');
            }
            let Some(f) = self.col_field[i].and_then(|fi| self.fields.get(fi).copied()) else {
                row.copy_line.push_str("\\N");
                row.values[i] = Val::Null;
                continue;
            };
            let src = if f.escaped { None } else { Some(f.start) };
            let Some(text) = field_text(self.input, f, &mut self.unescape_buf) else {
                return Err((
                    Some(*col),
                    format!("{}: internal error reading the field", col.name()),
                ));
            };
            normalize_into(row, &mut self.ts_cache, *col, text, src)?;
        }
        row.copy_line.push('\n');
        for spec_col in MANDATORY {
            if matches!(row.values[spec_col.index()], Val::Null) {
                return Err(col_err(
                    *spec_col,
                    format_args!("mandatory column is empty"),
                ));
            }
        }
        for (end_col, start_col, end, start) in [
            (
                Col::ChargePeriodEnd,
                Col::ChargePeriodStart,
                row.charge_period_end,
                row.charge_period_start,
            ),
            (
                Col::BillingPeriodEnd,
                Col::BillingPeriodStart,
                row.billing_period_end,
                row.billing_period_start,
            ),
        ] {
            if end < start {
                return Err(col_err(
                    end_col,
                    format_args!(
                        "{} is before {} {}",
                        timestamp_micros_to_string(end),
                        start_col.name(),
                        timestamp_micros_to_string(start)
                    ),
                ));
            }
        }
        // Accept.
        self.hasher.update(row.copy_line.as_bytes());
        self.accepted += 1;
        let cps = row.charge_period_start;
        self.min_cps = Some(self.min_cps.map_or(cps, |m| m.min(cps)));
        self.max_cps = Some(self.max_cps.map_or(cps, |m| m.max(cps)));
        self.max_cpe = Some(
            self.max_cpe
                .map_or(row.charge_period_end, |m| m.max(row.charge_period_end)),
        );
        let ba = row.billing_account_id();
        let same = self.last_key.as_ref().is_some_and(|k| {
            k.billing_period_start == row.billing_period_start
                && k.billing_period_end == row.billing_period_end
                && k.billing_account_id == ba
        });
        if !same {
            let key = BillingPeriodKey {
                billing_account_id: ba.to_owned(),
                billing_period_start: row.billing_period_start,
                billing_period_end: row.billing_period_end,
            };
            self.periods.insert(key.clone());
            self.last_key = Some(key);
        }
        Ok(())
    }

    /// Consumes the reader (stopping early is allowed) and returns the summary
    /// of the rows read so far.
    pub fn finish(self) -> ParseSummary {
        let digest = self.hasher.finalize();
        let mut hex = String::with_capacity(64);
        for b in digest {
            let _ = write!(hex, "{b:02x}");
        }
        ParseSummary {
            rows_accepted: self.accepted,
            rows_rejected: self.rejected,
            ignored_columns: self.ignored,
            present_columns: self.present,
            billing_periods: self.periods,
            digest: hex,
            min_charge_period_start: self.min_cps,
            max_charge_period_start: self.max_cps,
            max_charge_period_end: self.max_cpe,
        }
    }
}

/// Parses a whole FOCUS CSV text, calling `on_row` for every accepted row and
/// `on_reject` for every rejected one, in input order.
pub fn parse_focus_csv<'a>(
    input: &'a str,
    mut on_row: impl FnMut(&NormalizedRow<'a>),
    mut on_reject: impl FnMut(Reject<'a>),
) -> Result<ParseSummary, HeaderError> {
    let mut reader = FocusReader::new(input)?;
    while let Some(r) = reader.next_row() {
        match r {
            Ok(row) => on_row(row),
            Err(rej) => on_reject(rej),
        }
    }
    Ok(reader.finish())
}
