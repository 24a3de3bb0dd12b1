//! Retention seals: before audit records older than a cutoff are dropped,
//! each affected chain gets a SEAL record naming the first record that will
//! be kept and the hash it must link to. The seal is itself chained, so the
//! shortened chain stays verifiable from its oldest kept record.

use pgrx::prelude::*;
use pgrx::datum::TimestampWithTimeZone;

use super::{append_event, Event};
use crate::error::spi;

/// Seals every chain that has records logged before `cutoff`; returns how many.
pub fn seal_before(cutoff: TimestampWithTimeZone) -> i32 {
    let chains: Vec<(pgrx::Uuid, i64, i64, String)> = Spi::connect(|client| {
        let rows = spi(client.select(
            "SELECT l.tenant_id, d.last_dropped, d.dropped, encode(l.hash, 'hex')
               FROM (SELECT tenant_id, max(seq) AS last_dropped, count(*) AS dropped
                       FROM d5.audit_log WHERE logged_at < $1 GROUP BY tenant_id) d
               JOIN d5.audit_log l ON l.tenant_id = d.tenant_id AND l.seq = d.last_dropped
              ORDER BY l.tenant_id",
            None,
            &[cutoff.into()],
        ));
        rows.filter_map(|r| {
            Some((spi(r.get(1))?, spi(r.get(2))?, spi(r.get(3))?, spi(r.get(4))?))
        })
        .collect()
    });
    let cutoff_text = spi(Spi::get_one_with_args::<String>(
        "SELECT to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
        &[cutoff.into()],
    ))
    .unwrap_or_default();
    for (tenant, last_dropped, dropped, anchor) in &chains {
        let detail = serde_json::json!({
            "first_kept_seq": last_dropped + 1,
            "anchor_hash": anchor,
            "records_dropped": dropped,
            "dropped_before": cutoff_text,
        })
        .to_string();
        append_event(&Event {
            tenant: Some(uuid::Uuid::from_bytes(*tenant.as_bytes())),
            table_name: Some("d5.audit_log"),
            operation: d5_core::audit::SEAL_OPERATION,
            row_count: Some(*dropped),
            rows_digest: None,
            detail: Some(&detail),
        });
    }
    chains.len() as i32
}

/// SQL entry for maintenance (no role is granted EXECUTE).
#[pg_extern(volatile, parallel_unsafe)]
fn _audit_seal(cutoff: TimestampWithTimeZone) -> i32 {
    seal_before(cutoff)
}
