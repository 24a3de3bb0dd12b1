//! Synthetic exports for benchmarks and tests: valid chains written exactly
//! as `row_to_json` would print them, plus the matching digest. Also the
//! owned [`Row`] that tests use to tamper with lines and re-hash them.

use std::io::{self, Write};

use d5_core::audit::{hash_hex, record_hash, AuditRecord, DIGEST_FORMAT, GENESIS_PREV_HASH, SYSTEM_CHAIN};
use uuid::Uuid;

use crate::export::parse_line;
use crate::timestamp::format_timestamptz;

/// An owned audit row; jsonb columns hold their `jsonb_out` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub tenant_id: Uuid,
    pub seq: i64,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
    pub logged_at_micros: i64,
    pub txid: i64,
    pub db_role: String,
    pub actor: Option<String>,
    pub table_name: Option<String>,
    pub operation: String,
    pub row_pk: Option<String>,
    pub old_row: Option<String>,
    pub new_row: Option<String>,
    pub changed_cols: Option<String>,
    pub row_count: Option<i64>,
    pub rows_digest: Option<String>,
    pub detail: Option<String>,
}

impl Row {
    pub fn record(&self) -> AuditRecord<'_> {
        AuditRecord {
            tenant_id: self.tenant_id,
            seq: self.seq,
            prev_hash: self.prev_hash,
            logged_at_micros: self.logged_at_micros,
            txid: self.txid,
            db_role: &self.db_role,
            actor: self.actor.as_deref(),
            table_name: self.table_name.as_deref(),
            operation: &self.operation,
            row_pk: self.row_pk.as_deref(),
            old_row: self.old_row.as_deref(),
            new_row: self.new_row.as_deref(),
            changed_cols: self.changed_cols.as_deref(),
            row_count: self.row_count,
            rows_digest: self.rows_digest.as_deref(),
            detail: self.detail.as_deref(),
        }
    }

    /// Sets `hash` from the contents (as the writer, or a forger, would).
    pub fn rehash(&mut self) {
        self.hash = record_hash(&self.record());
    }

    /// Parses an export line into an owned row.
    pub fn from_line(line: &str) -> Result<Row, String> {
        let row = parse_line(line)?;
        let (r, hash) = row.to_record()?;
        let own = |s: Option<&str>| s.map(str::to_string);
        Ok(Row {
            tenant_id: r.tenant_id,
            seq: r.seq,
            prev_hash: r.prev_hash,
            hash,
            logged_at_micros: r.logged_at_micros,
            txid: r.txid,
            db_role: r.db_role.to_string(),
            actor: own(r.actor),
            table_name: own(r.table_name),
            operation: r.operation.to_string(),
            row_pk: own(r.row_pk),
            old_row: own(r.old_row),
            new_row: own(r.new_row),
            changed_cols: own(r.changed_cols),
            row_count: r.row_count,
            rows_digest: own(r.rows_digest),
            detail: own(r.detail),
        })
    }

    /// The line `row_to_json` prints for this row in a session at UTC offset
    /// `offset_secs` (no newline). jsonb text must be valid JSON.
    pub fn to_line(&self, offset_secs: i32) -> String {
        let s = |v: &str| serde_json::Value::from(v).to_string(); // JSON string literal
        let opt = |v: &Option<String>| v.as_deref().map_or_else(|| "null".to_string(), s);
        let raw = |v: &Option<String>| v.clone().unwrap_or_else(|| "null".to_string());
        format!(
            concat!(
                r#"{{"tenant_id":"{}","seq":{},"prev_hash":"\\x{}","hash":"\\x{}","logged_at":"{}","#,
                r#""txid":{},"db_role":{},"actor":{},"table_name":{},"operation":{},"row_pk":{},"#,
                r#""old_row":{},"new_row":{},"changed_cols":{},"row_count":{},"rows_digest":{},"detail":{}}}"#
            ),
            self.tenant_id,
            self.seq,
            hash_hex(&self.prev_hash),
            hash_hex(&self.hash),
            format_timestamptz(self.logged_at_micros, offset_secs),
            self.txid,
            s(&self.db_role),
            opt(&self.actor),
            opt(&self.table_name),
            s(&self.operation),
            raw(&self.row_pk),
            raw(&self.old_row),
            raw(&self.new_row),
            raw(&self.changed_cols),
            self.row_count.map_or_else(|| "null".to_string(), |n| n.to_string()),
            opt(&self.rows_digest),
            raw(&self.detail),
        )
    }
}

/// splitmix64: deterministic, dependency-free pseudo-randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What `generate` should produce.
#[derive(Debug, Clone, Copy)]
pub struct GenOptions {
    pub records: u64,
    pub chains: u64,
    pub seed: u64,
}

/// Content of record `seq` of a chain: a mix of the operations the
/// extension logs, with jsonb text shaped like `jsonb_out` output.
fn synth_row(rng: &mut Rng, tenant_id: Uuid, seq: i64, prev_hash: [u8; 32], t0: i64) -> Row {
    let id = rng.below(1_000_000);
    let cents = rng.below(1_000_000);
    let amount = format!("{}.{:02}", cents / 100, cents % 100);
    let row = format!(r#"{{"id": {id}, "cost": {amount}, "note": "invoice \"Q{}\" – Zürich", "service": "compute"}}"#, id % 4 + 1);
    // Timestamps advance ~50 ms per record; some land on whole or half
    // seconds so the trimmed-fraction forms are exercised.
    let micros = match seq % 5 {
        0 => 0,
        1 => 500_000,
        _ => rng.below(1_000_000) as i64,
    };
    let mut r = Row {
        tenant_id,
        seq,
        prev_hash,
        hash: [0; 32],
        logged_at_micros: t0 + seq * 50_000 / 1_000_000 * 1_000_000 + micros,
        txid: 700_000 + seq * 3 + rng.below(3) as i64,
        db_role: "d5_app".into(),
        actor: Some(format!("user-{}@example.com", rng.below(50))),
        table_name: Some("costs".into()),
        operation: String::new(),
        row_pk: Some(format!(r#"{{"id": {id}}}"#)),
        old_row: None,
        new_row: None,
        changed_cols: None,
        row_count: None,
        rows_digest: None,
        detail: None,
    };
    match seq % 10 {
        0..=3 => {
            r.operation = "INSERT".into();
            r.new_row = Some(row);
        }
        4..=6 => {
            r.operation = "UPDATE".into();
            r.old_row = Some(row.replace(&amount, "0.00"));
            r.new_row = Some(row);
            r.changed_cols = Some(r#"["cost"]"#.into());
        }
        7 => {
            r.operation = "DELETE".into();
            r.old_row = Some(row);
        }
        8 => {
            r.operation = "BULK".into();
            r.actor = Some("svc-importer".into());
            r.row_pk = None;
            r.row_count = Some(rng.below(100_000) as i64);
            r.rows_digest = Some(format!("{:016x}{:016x}{:016x}{:016x}", rng.next(), rng.next(), rng.next(), rng.next()));
            r.detail = Some(r#"{"file": "2026-11.csv", "source": "focus_import"}"#.into());
        }
        _ => {
            r.operation = "MAINTENANCE".into();
            r.db_role = "d5_admin".into();
            r.actor = None;
            r.table_name = None;
            r.row_pk = None;
            r.detail = Some(r#"{"action": "vacuum", "empty": ""}"#.into());
        }
    }
    r.rehash();
    r
}

/// Writes a valid export of `records` records spread over `chains` chains
/// (the first is the system chain), ordered by tenant_id, seq like the
/// documented psql command. Returns the digest JSON of the chain heads.
pub fn generate<W: Write>(out: &mut W, opts: GenOptions) -> io::Result<String> {
    let mut rng = Rng(opts.seed);
    let chains = opts.chains.max(1);
    let mut tenants: Vec<Uuid> = (0..chains)
        .map(|i| {
            if i == 0 {
                SYSTEM_CHAIN
            } else {
                uuid::Builder::from_random_bytes(rng.next_u128_bytes()).into_uuid()
            }
        })
        .collect();
    tenants.sort(); // byte order, as Postgres sorts uuid
    // Session time zones of the export: the same for every line in real
    // life, varied here per chain to exercise offset parsing.
    let offsets = [0, 19_800, -28_800, 3_600];
    let t0 = 1_790_000_000_000_000; // 2026-09-21
    let mut heads = Vec::with_capacity(tenants.len());
    for (i, tenant_id) in tenants.iter().enumerate() {
        let i = i as u64;
        let n = opts.records / chains + u64::from(i < opts.records % chains);
        let mut prev = GENESIS_PREV_HASH;
        for seq in 1..=n as i64 {
            let row = synth_row(&mut rng, *tenant_id, seq, prev, t0);
            out.write_all(row.to_line(offsets[(i % 4) as usize]).as_bytes())?;
            out.write_all(b"\n")?;
            prev = row.hash;
        }
        if n > 0 {
            heads.push((*tenant_id, n as i64, prev));
        }
    }
    Ok(digest_json(&heads, "2026-12-01T00:00:00+00:00"))
}

impl Rng {
    fn next_u128_bytes(&mut self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next().to_le_bytes());
        b[8..].copy_from_slice(&self.next().to_le_bytes());
        b
    }
}

/// A digest document in the format `d5.audit_digest()` returns.
pub fn digest_json(heads: &[(Uuid, i64, [u8; 32])], taken_at: &str) -> String {
    let chains: Vec<serde_json::Value> = heads
        .iter()
        .map(|(t, seq, hash)| serde_json::json!({"tenant_id": t.to_string(), "seq": seq, "hash": hash_hex(hash)}))
        .collect();
    serde_json::json!({"format": DIGEST_FORMAT, "taken_at": taken_at, "chains": chains}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_export_round_trips_and_verifies() {
        let mut out = Vec::new();
        let digest = generate(&mut out, GenOptions { records: 103, chains: 4, seed: 7 }).expect("generate");
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(text.lines().count(), 103);
        for line in text.lines() {
            let row = Row::from_line(line).expect("parses");
            assert_eq!(row.hash, record_hash(&row.record()), "{line}");
            // Re-printing at the line's own offset is not needed for the
            // hash; any offset denotes the same instant.
            assert_eq!(Row::from_line(&row.to_line(-3600)).expect("reparses"), row);
        }
        let entries = d5_core::audit::parse_digest(&digest).expect("digest parses");
        let reports = crate::verify_export(text.as_bytes(), None, &entries).expect("verifies");
        assert_eq!(reports.len(), 4);
        assert!(reports.iter().all(|r| r.ok), "{reports:?}");
        assert_eq!(reports.iter().map(|r| r.records).sum::<i64>(), 103);
        assert_eq!(reports[0].tenant_id, SYSTEM_CHAIN);
    }
}
