//! `d5.verify_audit_chain`, `d5.audit_digest`, `d5.verify_audit_digest`.
//!
//! They read `d5.audit_log` as the caller (d5_auditor sees every chain; a
//! tenant sees its own) and recompute every hash with `d5_core::audit`, the
//! same code the offline verifier runs.

use std::collections::BTreeMap;

use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};

use d5_core::audit::{parse_digest, AuditRecord, ChainReport, ChainVerifier, DigestEntry};

use super::AuditError;
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
fn verify_audit_digest(digest: JsonB) -> TableIterator<
    'static,
    (
        name!(tenant_id, Uuid),
        name!(records, i64),
        name!(ok, bool),
        name!(first_bad_seq, Option<i64>),
        name!(reason, Option<String>),
    ),
> {
    let entries = parse_digest(&digest.0.to_string()).unwrap_or_else(|e| raise(AuditError::BadDigest(e.to_string())));
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

const RECORDS: &str = "SELECT tenant_id, seq, prev_hash, hash,
        (extract(epoch FROM logged_at) * 1000000)::bigint, txid, db_role, actor, table_name,
        operation, row_pk::text, old_row::text, new_row::text, changed_cols::text,
        row_count, rows_digest, detail::text
   FROM d5.audit_log WHERE $1::uuid IS NULL OR tenant_id = $1 ORDER BY tenant_id, seq";

/// A chain as recorded in d5.audit_chain_heads: where its newest record must be.
struct Head {
    seq: i64,
}

fn verify(tenant: Option<uuid::Uuid>, digest: &[DigestEntry]) -> Vec<ChainReport> {
    let heads = load_heads(tenant);
    let mut reports: BTreeMap<uuid::Uuid, ChainReport> = BTreeMap::new();
    let new_verifier = |t: uuid::Uuid| {
        let v = ChainVerifier::new(t);
        match digest.iter().find(|d| d.tenant_id == t) {
            Some(d) => v.with_digest(d.seq, d.hash),
            None => v,
        }
    };
    let arg = tenant.map(|t| Uuid::from_bytes(*t.as_bytes()));
    Spi::connect(|client| {
        let mut cursor = client.open_cursor(RECORDS, &[arg.into()]);
        let mut current: Option<(ChainVerifier, i64)> = None;
        loop {
            let batch = spi(cursor.fetch(10_000));
            if batch.is_empty() {
                break;
            }
            for row in batch {
                let t = to_core(spi(row.get::<Uuid>(1)).unwrap_or_else(|| Uuid::from_bytes([0; 16])));
                if current.as_ref().map(|(v, _)| v.tenant_id()) != Some(t) {
                    if let Some((v, last)) = current.take() {
                        reports.insert(v.tenant_id(), finish(v, last, &heads));
                    }
                    current = Some((new_verifier(t), 0));
                }
                let (verifier, last_seq) = current.as_mut().expect("set above");
                let seq = spi(row.get::<i64>(2)).unwrap_or(0);
                *last_seq = seq;
                if !verifier.is_ok_so_far() {
                    // The first fault is found; the rest is only counted.
                    let _ = verifier.push(&placeholder(t, seq), &[0; 32]);
                    continue;
                }
                let prev = spi(row.get::<&[u8]>(3)).unwrap_or(&[]);
                let stored = spi(row.get::<&[u8]>(4)).unwrap_or(&[]);
                let rec = AuditRecord {
                    tenant_id: t,
                    seq,
                    prev_hash: prev.try_into().unwrap_or([0xff; 32]),
                    logged_at_micros: spi(row.get::<i64>(5)).unwrap_or(0),
                    txid: spi(row.get::<i64>(6)).unwrap_or(0),
                    db_role: spi(row.get::<&str>(7)).unwrap_or(""),
                    actor: spi(row.get::<&str>(8)),
                    table_name: spi(row.get::<&str>(9)),
                    operation: spi(row.get::<&str>(10)).unwrap_or(""),
                    row_pk: spi(row.get::<&str>(11)),
                    old_row: spi(row.get::<&str>(12)),
                    new_row: spi(row.get::<&str>(13)),
                    changed_cols: spi(row.get::<&str>(14)),
                    row_count: spi(row.get::<i64>(15)),
                    rows_digest: spi(row.get::<&str>(16)),
                    detail: spi(row.get::<&str>(17)),
                };
                let _ = verifier.push(&rec, &stored.try_into().unwrap_or([0; 32]));
            }
        }
        if let Some((v, last)) = current.take() {
            reports.insert(v.tenant_id(), finish(v, last, &heads));
        }
    });
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

/// Stands in for records after the first fault: only counted, never hashed.
fn placeholder(t: uuid::Uuid, seq: i64) -> AuditRecord<'static> {
    AuditRecord {
        tenant_id: t,
        seq,
        prev_hash: [0; 32],
        logged_at_micros: 0,
        txid: 0,
        db_role: "",
        actor: None,
        table_name: None,
        operation: "",
        row_pk: None,
        old_row: None,
        new_row: None,
        changed_cols: None,
        row_count: None,
        rows_digest: None,
        detail: None,
    }
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

fn load_heads(tenant: Option<uuid::Uuid>) -> BTreeMap<uuid::Uuid, Head> {
    let arg = tenant.map(|t| Uuid::from_bytes(*t.as_bytes()));
    Spi::connect(|client| {
        let rows = spi(client.select(
            "SELECT tenant_id, seq FROM d5.audit_chain_heads WHERE $1::uuid IS NULL OR tenant_id = $1",
            None,
            &[arg.into()],
        ));
        rows.filter_map(|row| {
            let t = spi(row.get::<Uuid>(1))?;
            Some((to_core(t), Head { seq: spi(row.get::<i64>(2)).unwrap_or(0) }))
        })
        .collect()
    })
}
