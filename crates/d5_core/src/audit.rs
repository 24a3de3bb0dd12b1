//! Tamper-evident audit log: canonical encoding, hash chain, chain verifier
//! and digest parsing. Pure Rust; the extension and the offline verifier
//! (`d5-audit-verify`) both hash through [`record_hash`], so they cannot drift.
//!
//! # Chains
//!
//! `d5.audit_log` holds one hash chain per tenant plus the system chain
//! (tenant_id = nil UUID `00000000-0000-0000-0000-000000000000`). Within a
//! chain `seq` runs 1, 2, 3, … without gaps. Record 1 has `prev_hash` = 32
//! zero bytes; record n has `prev_hash` = `hash` of record n−1; `hash` is the
//! SHA-256 of the record's canonical encoding, which includes `prev_hash`.
//!
//! # Canonical encoding v1
//!
//! ```text
//! hash = SHA-256( b"d5-audit-v1\n" || F1 || F2 || ... || F16 )
//! ```
//!
//! Each field `Fi` is its byte length as a 4-byte big-endian unsigned integer
//! followed by its UTF-8 bytes. SQL NULL is the 4 bytes `FF FF FF FF` and
//! nothing else, so NULL (`FF FF FF FF`) and the empty string (`00 00 00 00`)
//! hash differently. Integers are plain decimal: optional `-`, no leading
//! zeros, `0` for zero.
//!
//! | #  | column       | text that is hashed                                    |
//! |----|--------------|--------------------------------------------------------|
//! | 1  | tenant_id    | lowercase hyphenated UUID                              |
//! | 2  | seq          | decimal                                                |
//! | 3  | prev_hash    | 64 lowercase hex chars                                 |
//! | 4  | logged_at    | microseconds since 1970-01-01 00:00:00 UTC, decimal (may be negative) |
//! | 5  | txid         | decimal                                                |
//! | 6  | db_role      | text                                                   |
//! | 7  | actor        | text or NULL                                           |
//! | 8  | table_name   | text or NULL                                           |
//! | 9  | operation    | text (INSERT, UPDATE, DELETE, BULK, MAINTENANCE, SEAL, …) |
//! | 10 | row_pk       | jsonb text or NULL                                     |
//! | 11 | old_row      | jsonb text or NULL                                     |
//! | 12 | new_row      | jsonb text or NULL                                     |
//! | 13 | changed_cols | jsonb text (array of column names) or NULL             |
//! | 14 | row_count    | decimal or NULL                                        |
//! | 15 | rows_digest  | text (lowercase hex) or NULL                           |
//! | 16 | detail       | jsonb text or NULL                                     |
//!
//! "jsonb text" is exactly what Postgres's `jsonb_out` prints (`col::text`).
//! This module never parses or re-serializes JSON for hashing: it hashes the
//! text as given, so the bytes are the ones Postgres itself produces.
//!
//! # Retention seal
//!
//! Before old audit partitions are dropped, the chain gets a record with
//! `operation = 'SEAL'` and `detail = {"first_kept_seq": N, "anchor_hash":
//! "<hex hash of record N-1>", "records_dropped": K, "dropped_before": "…"}`.
//! A chain whose first present record has seq N > 1 verifies only if a SEAL
//! record inside the verified part of the chain has `first_kept_seq` = N and
//! `anchor_hash` = that first record's `prev_hash`.
//!
//! # Digest
//!
//! `d5.audit_digest()` publishes the head (seq, hash) of every chain as
//! `{"format": "d5-audit-digest-v1", "taken_at": "…", "chains": [{"tenant_id":
//! "…", "seq": 123, "hash": "<hex>"}, …]}`. Kept outside the database, it is
//! what catches removal of the newest records and wholesale rewrites with
//! recomputed hashes, which no internal check can see.

use sha2::{Digest, Sha256};
use uuid::Uuid;

mod digest;
pub mod jsonb_text;
mod reorder;
mod verify;

#[cfg(test)]
mod tests;

pub use digest::{parse_digest, DigestEntry, DigestError, DIGEST_FORMAT};
pub use reorder::{Disorder, ReorderingVerifier};
pub use verify::{ChainBroken, ChainReport, ChainVerifier, Link};

/// Domain-separation prefix of canonical encoding v1.
pub const ENCODING_V1_PREFIX: &[u8; 12] = b"d5-audit-v1\n";

/// `prev_hash` of the genesis record (seq 1) of every chain.
pub const GENESIS_PREV_HASH: [u8; 32] = [0; 32];

/// tenant_id of the system chain.
pub const SYSTEM_CHAIN: Uuid = Uuid::nil();

/// Value of `operation` for retention seal records.
pub const SEAL_OPERATION: &str = "SEAL";

/// Encoding of SQL NULL: a length no real field can have.
const NULL_FIELD: [u8; 4] = [0xFF; 4];

/// One `d5.audit_log` row as hashed (everything except the stored `hash`).
///
/// Borrowed so callers can hash straight from SPI or a parsed export line
/// without copying. jsonb fields hold the `jsonb_out` text verbatim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditRecord<'a> {
    pub tenant_id: Uuid,
    pub seq: i64,
    pub prev_hash: [u8; 32],
    /// Microseconds since 1970-01-01 00:00:00 UTC (not Postgres's 2000 epoch).
    pub logged_at_micros: i64,
    pub txid: i64,
    pub db_role: &'a str,
    pub actor: Option<&'a str>,
    pub table_name: Option<&'a str>,
    pub operation: &'a str,
    pub row_pk: Option<&'a str>,
    pub old_row: Option<&'a str>,
    pub new_row: Option<&'a str>,
    pub changed_cols: Option<&'a str>,
    pub row_count: Option<i64>,
    pub rows_digest: Option<&'a str>,
    pub detail: Option<&'a str>,
}

/// A record's fixed-width fields, for [`AuditRecord::from_texts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub tenant_id: Uuid,
    pub seq: i64,
    pub prev_hash: [u8; 32],
    pub logged_at_micros: i64,
    pub txid: i64,
    pub row_count: Option<i64>,
}

impl<'a> AuditRecord<'a> {
    /// A record from its fixed-width fields and its ten text fields in
    /// canonical order: db_role, actor, table_name, operation, row_pk,
    /// old_row, new_row, changed_cols, rows_digest, detail. A NULL db_role or
    /// operation reads as empty (no honest record has one).
    pub fn from_texts(h: RecordHeader, t: [Option<&'a str>; 10]) -> Self {
        AuditRecord {
            tenant_id: h.tenant_id,
            seq: h.seq,
            prev_hash: h.prev_hash,
            logged_at_micros: h.logged_at_micros,
            txid: h.txid,
            db_role: t[0].unwrap_or(""),
            actor: t[1],
            table_name: t[2],
            operation: t[3].unwrap_or(""),
            row_pk: t[4],
            old_row: t[5],
            new_row: t[6],
            changed_cols: t[7],
            row_count: h.row_count,
            rows_digest: t[8],
            detail: t[9],
        }
    }

    /// The header of this record (its fixed-width fields).
    pub fn header(&self) -> RecordHeader {
        RecordHeader {
            tenant_id: self.tenant_id,
            seq: self.seq,
            prev_hash: self.prev_hash,
            logged_at_micros: self.logged_at_micros,
            txid: self.txid,
            row_count: self.row_count,
        }
    }

    /// The ten text fields in the order [`AuditRecord::from_texts`] takes them.
    pub fn texts(&self) -> [Option<&'a str>; 10] {
        [
            Some(self.db_role),
            self.actor,
            self.table_name,
            Some(self.operation),
            self.row_pk,
            self.old_row,
            self.new_row,
            self.changed_cols,
            self.rows_digest,
            self.detail,
        ]
    }
}

/// A stored text field as the verifiers read it: the database encoding is
/// UTF-8 (the extension requires it), so bytes that are not read as a value
/// no honest record hashes to.
pub fn stored_text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or("\u{fffd}")
}

/// SHA-256 of the record's canonical encoding v1.
///
/// Streams the fields into the hasher; no heap allocation.
pub fn record_hash(rec: &AuditRecord<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    encode(rec, &mut |bytes| hasher.update(bytes));
    hasher.finalize().into()
}

/// The canonical encoding v1 as bytes: what [`record_hash`] hashes. For
/// debugging and test vectors; the hot path never builds it.
pub fn canonical_bytes(rec: &AuditRecord<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    encode(rec, &mut |bytes| out.extend_from_slice(bytes));
    out
}

/// Lowercase hex of a hash (the form used in digests and seal details).
pub fn hash_hex(hash: &[u8; 32]) -> String {
    hex::encode(hash)
}

/// Parses 64 hex digits (either case) into a hash.
pub fn parse_hash_hex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// Writes the encoding as a sequence of byte slices into `sink`, so hashing
/// and [`canonical_bytes`] share one definition of the format.
fn encode(rec: &AuditRecord<'_>, sink: &mut dyn FnMut(&[u8])) {
    sink(ENCODING_V1_PREFIX);

    let mut uuid_buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let uuid_text = rec.tenant_id.hyphenated().encode_lower(&mut uuid_buf);
    field(sink, Some(uuid_text.as_bytes()));

    int_field(sink, Some(rec.seq));

    let mut hex_buf = [0u8; 64];
    // Cannot fail: the buffer is exactly twice the input length.
    let _ = hex::encode_to_slice(rec.prev_hash, &mut hex_buf);
    field(sink, Some(&hex_buf));

    int_field(sink, Some(rec.logged_at_micros));
    int_field(sink, Some(rec.txid));
    field(sink, Some(rec.db_role.as_bytes()));
    field(sink, rec.actor.map(str::as_bytes));
    field(sink, rec.table_name.map(str::as_bytes));
    field(sink, Some(rec.operation.as_bytes()));
    field(sink, rec.row_pk.map(str::as_bytes));
    field(sink, rec.old_row.map(str::as_bytes));
    field(sink, rec.new_row.map(str::as_bytes));
    field(sink, rec.changed_cols.map(str::as_bytes));
    int_field(sink, rec.row_count);
    field(sink, rec.rows_digest.map(str::as_bytes));
    field(sink, rec.detail.map(str::as_bytes));
}

fn field(sink: &mut dyn FnMut(&[u8]), value: Option<&[u8]>) {
    match value {
        None => sink(&NULL_FIELD),
        Some(bytes) => {
            // Postgres caps a value at 1 GiB, so real fields always fit in a
            // u32 below the NULL marker; a larger slice can only come from a
            // caller bug, and we clamp rather than panic inside a backend.
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX - 1).min(u32::MAX - 1);
            sink(&len.to_be_bytes());
            sink(bytes);
        }
    }
}

fn int_field(sink: &mut dyn FnMut(&[u8]), value: Option<i64>) {
    match value {
        None => sink(&NULL_FIELD),
        Some(v) => {
            let mut buf = [0u8; 20];
            field(sink, Some(format_i64(v, &mut buf)));
        }
    }
}

/// Decimal text of `v` in `buf` (20 bytes fits i64::MIN), without allocating.
fn format_i64(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = v.unsigned_abs();
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    &buf[pos..]
}
