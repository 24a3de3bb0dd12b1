//! `d5.ingest_focus`: FOCUS CSV in, validated rows into the raw table in one
//! transaction (earlier rows of the same billing periods replaced), rejects
//! kept with their reasons, touched days queued for rollup, one audit record.
//!
//! Ingest never creates partitions: attaching one locks the default
//! partition exclusively until commit, which would stall every reader. Rows
//! for days without a partition wait in the default partition until
//! maintenance (which premakes days ahead) moves them.

use std::collections::BTreeSet;

use d5_core::focus::{
    copy_column_list, truncate_at_char_boundary, write_bytes_field, write_copy_binary_row, FocusReader, Reject, COPY_BINARY_HEADER,
    COPY_BINARY_TRAILER,
};
use pgrx::prelude::*;
use pgrx::Uuid;

use super::copy::{copy_binary_stream_into, Fill};
use super::CostError;
use crate::audit::{append_event, Event};
use crate::error::{raise, spi};
use crate::privilege::as_extension_owner;
use crate::tenancy::context;

const MICROS_PER_DAY: i64 = 86_400_000_000;
/// Encoded rows handed to COPY at a time.
const STREAM_WINDOW_BYTES: usize = 1 << 16;
/// A rejected row keeps at most this much of its raw text.
const MAX_REJECT_LINE_BYTES: usize = 2000;

pub struct Outcome {
    pub inserted: i64,
    pub rejected: i64,
    pub replaced: i64,
    pub batch_id: Uuid,
}

struct Rejects {
    lines: Vec<i64>,
    columns: Vec<Option<String>>,
    reasons: Vec<String>,
    raw: Vec<String>,
}

pub fn ingest(cloud_account: Uuid, rows: &str, format: &str) -> Outcome {
    if !format.eq_ignore_ascii_case("csv") {
        raise(CostError::UnknownFormat(format.to_string()));
    }
    let tenant = context::current_tenant().unwrap_or_else(|| raise(CostError::NoTenant));
    // Refuse a foreign or unknown account before any parsing work.
    as_extension_owner(|| lock_account(tenant, cloud_account));
    let mut reader = FocusReader::new(rows).unwrap_or_else(|e| raise(CostError::Header(e.to_string())));
    let batch_id = Uuid::from_bytes(*uuid::Builder::from_random_bytes(crate::tenancy::random_bytes::<16>()).as_uuid().as_bytes());
    // tenant_id, cloud_account_id, ingest_batch_id: the same for every row.
    let mut prefix = Vec::with_capacity(60);
    for id in [tenant, cloud_account, batch_id] {
        write_bytes_field(id.as_bytes(), &mut prefix);
    }

    // The file is parsed while COPY reads it: rows are encoded in COPY's
    // binary format (so the server does not parse the values again) a small
    // window at a time; rejects and touched days are collected on the way.
    let mut days = BTreeSet::new();
    let mut rejects = Rejects { lines: vec![], columns: vec![], reasons: vec![], raw: vec![] };
    let outcome = as_extension_owner(|| {
        let mut header_sent = false;
        let mut produce = |out: &mut Vec<u8>| -> bool {
            if !header_sent {
                out.extend_from_slice(COPY_BINARY_HEADER);
                header_sent = true;
            }
            while out.len() < STREAM_WINDOW_BYTES {
                match reader.next_row() {
                    Some(Ok(row)) => match write_copy_binary_row(row, &prefix, 3, out) {
                        Ok(()) => {
                            days.insert(row.charge_period_start_micros().div_euclid(MICROS_PER_DAY));
                        }
                        Err((col, _)) => push_reject_values(
                            &mut rejects,
                            row.line_number(),
                            col.name(),
                            format!("{}: number is too large for numeric", col.name()),
                            row.copy_text_str(),
                        ),
                    },
                    Some(Err(reject)) => push_reject(&mut rejects, &reject),
                    None => {
                        out.extend_from_slice(COPY_BINARY_TRAILER);
                        return false;
                    }
                }
            }
            true
        };
        let had_rows = account_has_rows(tenant, cloud_account);
        let inserted = copy_without_account_checks(&mut produce);
        drop(produce);
        let summary = reader.finish();
        // After the insert, so the file needs one pass; this batch's own rows
        // are kept by their batch id. Readers see neither until commit. An
        // account's first load has nothing to replace.
        let (replaced, replaced_days) = if had_rows {
            delete_replaced_periods(tenant, cloud_account, batch_id, &summary.billing_periods)
        } else {
            (0, vec![])
        };
        days.extend(replaced_days);
        record_batch(tenant, cloud_account, batch_id, inserted, &rejects, replaced, &summary.ignored_columns, &summary.digest);
        queue_rollups(tenant, &days);
        (Outcome { inserted, rejected: rejects.lines.len() as i64, replaced, batch_id }, summary)
    });
    let (outcome, summary) = outcome;
    if !summary.ignored_columns.is_empty() {
        pgrx::notice!("ignored columns not stored by d5: {}", summary.ignored_columns.join(", "));
    }
    let detail = serde_json::json!({
        "batch_id": batch_id.to_string(),
        "cloud_account_id": cloud_account.to_string(),
        "rejected": outcome.rejected,
        "replaced": outcome.replaced,
        "billing_periods": summary.billing_periods.iter().map(|k| serde_json::json!({
            "billing_account_id": k.billing_account_id,
            "billing_period_start": d5_core::focus::timestamp_micros_to_string(k.billing_period_start),
        })).collect::<Vec<_>>(),
        "ignored_columns": summary.ignored_columns,
    })
    .to_string();
    append_event(&Event {
        tenant: Some(uuid::Uuid::from_bytes(*tenant.as_bytes())),
        table_name: Some("d5.cost_metrics_raw"),
        operation: "INGEST",
        row_count: Some(outcome.inserted),
        rows_digest: Some(&summary.digest),
        detail: Some(&detail),
    });
    outcome
}

/// COPYs the batch with the raw table's foreign-key triggers off.
///
/// Every row names the one account `lock_account` checked and holds KEY
/// SHARE on until commit (tenant and account come from our own prefix, never
/// from the file), so each per-row foreign-key check could only succeed; it
/// cost a fifth of the ingest's CPU. COPY runs in `session_replication_role =
/// replica`, the way `pg_restore --disable-triggers` loads checked data; the
/// raw table has no other triggers, and the role is restored right after.
fn copy_without_account_checks(produce: &mut Fill<'_>) -> i64 {
    let level = crate::privilege::set_local_superuser_guc(c"session_replication_role", c"replica");
    let inserted = copy_binary_stream_into(raw_table(), &copy_columns(), produce) as i64;
    crate::privilege::restore_gucs(level);
    inserted
}

fn push_reject(r: &mut Rejects, reject: &Reject<'_>) {
    r.lines.push(reject.line_number as i64);
    r.columns.push(reject.column.map(str::to_string));
    r.reasons.push(reject.reason.clone());
    r.raw.push(reject.raw_line_truncated(MAX_REJECT_LINE_BYTES).to_string());
}

/// A row the reader accepted but the binary encoding cannot carry.
fn push_reject_values(r: &mut Rejects, line: u64, column: &str, reason: String, values: &str) {
    r.lines.push(line as i64);
    r.columns.push(Some(column.to_string()));
    r.reasons.push(reason);
    r.raw.push(truncate_at_char_boundary(values, MAX_REJECT_LINE_BYTES).to_string());
}

fn copy_columns() -> Vec<&'static str> {
    let mut cols = vec!["tenant_id", "cloud_account_id", "ingest_batch_id"];
    cols.extend(d5_core::focus::RAW_COLUMNS.iter().map(|c| c.name));
    debug_assert_eq!(cols[3..].join(", "), copy_column_list());
    cols
}

fn raw_table() -> pg_sys::Oid {
    spi(Spi::get_one::<pg_sys::Oid>("SELECT 'd5.cost_metrics_raw'::regclass::oid"))
        .unwrap_or_else(|| raise(CostError::NoTenant))
}

/// The account must be the current tenant's; KEY SHARE keeps it from being
/// deleted until commit (the raw table's foreign key also checks it).
fn lock_account(tenant: Uuid, account: Uuid) {
    let found = spi(Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM d5.cloud_accounts WHERE tenant_id = $1 AND id = $2 FOR KEY SHARE)",
        &[tenant.into(), account.into()],
    ));
    if found != Some(true) {
        raise(CostError::UnknownAccount(account));
    }
    // One ingest per account at a time, so two replacements cannot interleave.
    spi(Spi::run_with_args(
        "SELECT pg_advisory_xact_lock(hashtextextended('d5.ingest:' || $1::text, 0))",
        &[account.into()],
    ));
}

/// Whether the account has any raw rows yet (one index probe).
fn account_has_rows(tenant: Uuid, account: Uuid) -> bool {
    spi(Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM d5.cost_metrics_raw WHERE tenant_id = $1 AND cloud_account_id = $2)",
        &[tenant.into(), account.into()],
    ))
    .unwrap_or(true)
}

/// Deletes earlier rows (other batches') of the billing periods this batch carries; returns
/// how many, and the days they were on (their rollups must be redone).
fn delete_replaced_periods(
    tenant: Uuid,
    account: Uuid,
    batch: Uuid,
    periods: &BTreeSet<d5_core::focus::BillingPeriodKey>,
) -> (i64, Vec<i64>) {
    if periods.is_empty() {
        return (0, vec![]);
    }
    let ids: Vec<String> = periods.iter().map(|k| k.billing_account_id.clone()).collect();
    let starts: Vec<i64> = periods.iter().map(|k| k.billing_period_start).collect();
    Spi::connect_mut(|client| {
        let rows = spi(client.update(
            "WITH gone AS (
                 DELETE FROM d5.cost_metrics_raw r
                 USING unnest($3::text[], $4::bigint[]) AS p(account_id, start_micros)
                 WHERE r.tenant_id = $1 AND r.cloud_account_id = $2
                   AND r.billing_account_id = p.account_id
                   AND r.billing_period_start = timestamptz 'epoch' + p.start_micros * interval '1 microsecond'
                   AND r.ingest_batch_id <> $5
                 RETURNING floor(extract(epoch FROM r.charge_period_start) / 86400)::bigint AS day)
             SELECT day, count(*) FROM gone GROUP BY day",
            None,
            &[tenant.into(), account.into(), ids.into(), starts.into(), batch.into()],
        ));
        let mut total = 0;
        let mut days = vec![];
        for row in rows {
            let day: i64 = spi(row.get(1)).unwrap_or(0);
            total += spi(row.get::<i64>(2)).unwrap_or(0);
            days.push(day);
        }
        (total, days)
    })
}

#[allow(clippy::too_many_arguments)]
fn record_batch(
    tenant: Uuid,
    account: Uuid,
    batch: Uuid,
    inserted: i64,
    rejects: &Rejects,
    replaced: i64,
    ignored: &[String],
    digest: &str,
) {
    spi(Spi::run_with_args(
        "INSERT INTO d5.ingest_batches (tenant_id, id, cloud_account_id, inserted, rejected, replaced, ignored_columns, rows_digest)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            tenant.into(),
            batch.into(),
            account.into(),
            inserted.into(),
            (rejects.lines.len() as i64).into(),
            replaced.into(),
            ignored.to_vec().into(),
            digest.into(),
        ],
    ));
    if rejects.lines.is_empty() {
        return;
    }
    spi(Spi::run_with_args(
        "INSERT INTO d5.ingest_rejects (tenant_id, batch_id, line_number, column_name, reason, raw_line)
         SELECT $1, $2, l, c, r, w FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[]) AS x(l, c, r, w)",
        &[
            tenant.into(),
            batch.into(),
            rejects.lines.clone().into(),
            rejects.columns.clone().into(),
            rejects.reasons.clone().into(),
            rejects.raw.clone().into(),
        ],
    ));
}

fn queue_rollups(tenant: Uuid, days: &BTreeSet<i64>) {
    if days.is_empty() {
        return;
    }
    let days: Vec<i64> = days.iter().copied().collect();
    spi(Spi::run_with_args(
        "INSERT INTO d5.cost_rollup_pending (tenant_id, day)
         SELECT $1, date '1970-01-01' + d::int FROM unnest($2::bigint[]) d ON CONFLICT DO NOTHING",
        &[tenant.into(), days.into()],
    ));
}
