//! `d5.verify_audit_chain`, `d5.audit_digest`, `d5.verify_audit_digest`.
//!
//! They read `d5.audit_log` as the caller (d5_auditor sees every chain; a
//! tenant sees its own) and recompute every hash with `d5_core::audit`, the
//! same code the offline verifier runs.

use std::collections::BTreeMap;

use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};

use d5_core::audit::{parse_digest, ChainReport, ChainVerifier, DigestEntry};

use super::{heads, log_reader, physical_pass, AuditError};
use crate::json_schema::jsonb::RawJsonb;
use crate::error::{raise, spi};

type ReportRow = (Uuid, i64, bool, Option<i64>, Option<String>);

/// Recomputes the chain of `tenant` (or every chain) and reports a row per chain.
#[pg_extern(volatile, parallel_unsafe)]
fn verify_audit_chain(tenant: default!(Option<Uuid>, "NULL")) -> TableIterator<
    'static,
    (
        name!(tenant_id, Uuid),
        name!(records, i64),
        name!(ok, bool),
        name!(first_bad_seq, Option<i64>),
        name!(reason, Option<String>),
    ),
> {
    let tenant = tenant.map(to_core);
    TableIterator::new(verify(tenant, &[]).into_iter().map(report_row))
}

/// Like verify_audit_chain, and also checks every chain against a digest
/// taken earlier: catches chains cut back or rewritten since.
#[pg_extern(volatile, parallel_unsafe)]
fn verify_audit_digest(digest: RawJsonb) -> TableIterator<
    'static,
    (
        name!(tenant_id, Uuid),
        name!(records, i64),
        name!(ok, bool),
        name!(first_bad_seq, Option<i64>),
        name!(reason, Option<String>),
    ),
> {
    let entries = parse_digest(&digest.to_text()).unwrap_or_else(|e| raise(AuditError::BadDigest(e.to_string())));
    TableIterator::new(verify(None, &entries).into_iter().map(report_row))
}

/// The head (tenant_id, seq, hash) of every chain, to keep outside the database.
#[pg_extern(volatile, parallel_unsafe)]
fn audit_digest() -> JsonB {
    let chains = Spi::connect(|client| {
        let rows = spi(client.select(
            "SELECT DISTINCT ON (tenant_id) tenant_id::text, seq, encode(hash, 'hex')
               FROM d5.audit_log ORDER BY tenant_id, seq DESC",
            None,
            &[],
        ));
        rows.map(|row| {
            serde_json::json!({
                "tenant_id": spi(row.get::<String>(1)),
                "seq": spi(row.get::<i64>(2)),
                "hash": spi(row.get::<String>(3)),
            })
        })
        .collect::<Vec<_>>()
    });
    let taken_at = spi(Spi::get_one::<String>("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"));
    JsonB(serde_json::json!({
        "format": d5_core::audit::DIGEST_FORMAT,
        "taken_at": taken_at,
        "chains": chains,
    }))
}

fn report_row(r: ChainReport) -> ReportRow {
    (Uuid::from_bytes(*r.tenant_id.as_bytes()), r.records, r.ok, r.first_bad_seq, r.reason)
}

fn to_core(u: Uuid) -> uuid::Uuid {
    uuid::Uuid::from_bytes(*u.as_bytes())
}

/// A chain as recorded in d5.audit_chain_heads: where its newest record must be.
struct Head {
    seq: i64,
}

/// Reads and verifies chains. Every chain is first verified from one pass
/// over the log in physical order (no sort, no index: far cheaper than an
/// ordered read of a large log); a chain whose records cannot be put in seq
/// order on the fly is read again by itself in seq order, which reports its
/// fault exactly. Every read sees the calling statement's snapshot.
fn verify(tenant: Option<uuid::Uuid>, digest: &[DigestEntry]) -> Vec<ChainReport> {
    let heads = load_heads(tenant);
    let new_verifier = |t: uuid::Uuid| {
        let v = ChainVerifier::new(t);
        match digest.iter().find(|d| d.tenant_id == t) {
            Some(d) => v.with_digest(d.seq, d.hash),
            None => v,
        }
    };
    let mut reports: BTreeMap<uuid::Uuid, ChainReport> = BTreeMap::new();
    let ordered_chains: Vec<uuid::Uuid> = match tenant {
        Some(t) => vec![t],
        None => match physical_pass::verify(&new_verifier) {
            Some((done, redo)) => {
                pgrx::debug1!(
                    "d5 audit verification: {} chains verified in one pass in physical order, {} read again in seq order",
                    done.len(),
                    redo.len()
                );
                for (t, (v, last_seq)) in done {
                    reports.insert(t, finish(v, last_seq, &heads));
                }
                redo.into_iter().collect()
            }
            None => every_chain(),
        },
    };
    for t in ordered_chains {
        if let Some((v, last_seq)) = verify_in_seq_order(t, new_verifier(t)) {
            reports.insert(t, finish(v, last_seq, &heads));
        }
    }
    // Chains known to the heads table or the digest but without any record left.
    let empty: Vec<uuid::Uuid> = heads
        .keys()
        .chain(digest.iter().map(|d| &d.tenant_id))
        .filter(|t| tenant.is_none_or(|only| only == **t) && !reports.contains_key(*t))
        .copied()
        .collect();
    for t in empty {
        reports.insert(t, finish(new_verifier(t), 0, &heads));
    }
    reports.into_values().collect()
}

/// Every chain the caller can read.
fn every_chain() -> Vec<uuid::Uuid> {
    Spi::connect(|client| {
        let rows = spi(client.select("SELECT DISTINCT tenant_id FROM d5.audit_log", None, &[]));
        rows.filter_map(|row| spi(row.get::<Uuid>(1)).map(to_core)).collect()
    })
}

/// One chain read in seq order; None if it has no records.
fn verify_in_seq_order(tenant: uuid::Uuid, mut verifier: ChainVerifier) -> Option<(ChainVerifier, i64)> {
    let mut last_seq = None;
    log_reader::for_each(log_reader::ONE_CHAIN_IN_SEQ_ORDER, Some(tenant), |rec, stored| {
        last_seq = Some(rec.seq);
        let _ = verifier.push(rec, stored);
    });
    last_seq.map(|seq| (verifier, seq))
}

/// Finishes a chain and adds the check no digest is needed for: the newest
/// record must be the one the heads table points at.
fn finish(v: ChainVerifier, last_seq: i64, heads: &BTreeMap<uuid::Uuid, Head>) -> ChainReport {
    let t = v.tenant_id();
    let mut report = v.finish();
    if let (true, Some(head)) = (report.ok, heads.get(&t)) {
        if head.seq != last_seq {
            report.ok = false;
            report.first_bad_seq = Some(last_seq + 1);
            report.reason = Some(format!(
                "chain ends at seq {last_seq} but its head records seq {}: newest records are missing",
                head.seq
            ));
        }
    }
    report
}

/// The committed heads, overlaid with those this transaction has moved but
/// writes only at commit.
fn load_heads(tenant: Option<uuid::Uuid>) -> BTreeMap<uuid::Uuid, Head> {
    let arg = tenant.map(|t| Uuid::from_bytes(*t.as_bytes()));
    let mut heads: BTreeMap<uuid::Uuid, Head> = Spi::connect(|client| {
        let rows = spi(client.select(
            "SELECT tenant_id, seq FROM d5.audit_chain_heads WHERE $1::uuid IS NULL OR tenant_id OPERATOR(pg_catalog.=) $1",
            None,
            &[arg.into()],
        ));
        rows.filter_map(|row| {
            let t = spi(row.get::<Uuid>(1))?;
            Some((to_core(t), Head { seq: spi(row.get::<i64>(2)).unwrap_or(0) }))
        })
        .collect()
    });
    for (t, seq) in heads::unwritten() {
        if tenant.is_none_or(|only| only == t) {
            heads.insert(t, Head { seq });
        }
    }
    heads
}
