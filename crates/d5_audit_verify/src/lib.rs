//! Offline verification of d5_storage audit chains from a plain psql export.
//!
//! The binary `d5-audit-verify` is a thin shell over [`verify_export`]; the
//! library exists so integration tests can forge and re-hash export lines.

pub mod export;
mod pipeline;
pub mod generate;
pub mod timestamp;

use std::collections::HashMap;
use std::fmt;
use std::io::BufRead;

use d5_core::audit::{ChainReport, ChainVerifier, DigestEntry};
use uuid::Uuid;

/// Malformed or unreadable input (exit status 2), naming the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub line: u64,
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for InputError {}

/// Verifies every chain in an export, streaming.
///
/// Lines may interleave chains (one verifier per tenant_id, kept in a map:
/// memory grows with the number of chains, not records) but within a chain
/// seq must ascend, as `ORDER BY tenant_id, seq` produces; anything else is
/// reported as a broken chain, since the export order is part of what the
/// auditor checks. With `tenant`, other chains are skipped. Each digest entry
/// (filtered by `tenant`) is checked against its chain, and a chain in the
/// digest but absent from the export is reported. Reports are sorted by
/// tenant_id (the system chain, nil UUID, first).
///
/// Parsing and hashing, nearly all the work, run on every core: a reader
/// thread cuts the input into chunks of whole lines, workers parse and hash
/// them, and the chains are checked here, chunk by chunk in input order.
pub fn verify_export<R: BufRead + Send>(
    reader: R,
    tenant: Option<Uuid>,
    digest: &[DigestEntry],
) -> Result<Vec<ChainReport>, InputError> {
    let wanted = |t: &Uuid| tenant.is_none_or(|want| want == *t);
    let heads: HashMap<Uuid, (i64, [u8; 32])> =
        digest.iter().filter(|e| wanted(&e.tenant_id)).map(|e| (e.tenant_id, (e.seq, e.hash))).collect();
    let new_verifier = |t: Uuid| {
        let v = ChainVerifier::new(t);
        match heads.get(&t) {
            Some(&(seq, hash)) => v.with_digest(seq, hash),
            None => v,
        }
    };

    let mut chains: HashMap<Uuid, ChainVerifier> = HashMap::new();
    pipeline::hashed_lines(reader, &wanted, |line| {
        let verifier = chains.entry(line.tenant_id).or_insert_with(|| new_verifier(line.tenant_id));
        // A chain failure is reported in the table, not as an error.
        let _ = verifier.push_link(&line.link(), &line.stored, &line.computed);
    })?;

    for &t in heads.keys() {
        chains.entry(t).or_insert_with(|| new_verifier(t));
    }
    let mut reports: Vec<ChainReport> = chains.into_values().map(ChainVerifier::finish).collect();
    reports.sort_by_key(|r| r.tenant_id);
    Ok(reports)
}

/// The result table, aligned like psql: one line per chain with the columns
/// of `d5.verify_audit_chain` (tenant_id, records, ok, first_bad_seq, reason).
pub fn format_table(reports: &[ChainReport]) -> String {
    let rows: Vec<[String; 5]> = reports
        .iter()
        .map(|r| {
            [
                r.tenant_id.to_string(),
                r.records.to_string(),
                if r.ok { "t" } else { "f" }.to_string(),
                r.first_bad_seq.map(|s| s.to_string()).unwrap_or_default(),
                r.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["tenant_id", "records", "ok", "first_bad_seq", "reason"];
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: [&str; 5], out: &mut String| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| match i {
                1 | 3 => format!("{c:>w$}", w = width[i]), // numbers right-aligned
                4 => c.to_string(),                         // last column unpadded
                _ => format!("{c:<w$}", w = width[i]),
            })
            .collect();
        out.push_str(padded.join(" | ").trim_end());
        out.push('\n');
    };
    line(header, &mut out);
    let rule: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&rule.join("-+-"));
    out.push('\n');
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3], &row[4]], &mut out);
    }
    out
}
