use uuid::Uuid;

use super::*;

mod reorder;
mod seal_digest;

/// Owned record for building test chains.
#[derive(Clone, Debug)]
struct Rec {
    tenant_id: Uuid,
    seq: i64,
    prev_hash: [u8; 32],
    logged_at_micros: i64,
    txid: i64,
    db_role: String,
    actor: Option<String>,
    table_name: Option<String>,
    operation: String,
    row_pk: Option<String>,
    old_row: Option<String>,
    new_row: Option<String>,
    changed_cols: Option<String>,
    row_count: Option<i64>,
    rows_digest: Option<String>,
    detail: Option<String>,
    hash: [u8; 32],
}

impl Rec {
    fn record(&self) -> AuditRecord<'_> {
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
}

const T1: Uuid = Uuid::from_u128(0x1111_1111_2222_3333_4444_5555_5555_5555);

fn rec(tenant_id: Uuid, seq: i64) -> Rec {
    Rec {
        tenant_id,
        seq,
        prev_hash: GENESIS_PREV_HASH,
        logged_at_micros: 1_790_000_000_000_000 + seq * 1000,
        txid: 1000 + seq,
        db_role: "d5_app".into(),
        actor: Some(format!("user{}", seq % 3)),
        table_name: Some("costs".into()),
        operation: "INSERT".into(),
        row_pk: Some(format!("{{\"id\": {seq}}}")),
        old_row: None,
        new_row: Some(format!("{{\"id\": {seq}, \"amount\": 1.5}}")),
        changed_cols: None,
        row_count: None,
        rows_digest: None,
        detail: None,
        hash: [0; 32],
    }
}

/// Recomputes prev_hash/hash from index `from` on, as a forger with write
/// access (or the honest writer) would.
fn relink(recs: &mut [Rec], from: usize) {
    for i in from..recs.len() {
        recs[i].prev_hash = if i == 0 { GENESIS_PREV_HASH } else { recs[i - 1].hash };
        recs[i].hash = record_hash(&recs[i].record());
    }
}

fn chain(n: i64) -> Vec<Rec> {
    let mut recs: Vec<Rec> = (1..=n).map(|s| rec(T1, s)).collect();
    relink(&mut recs, 0);
    recs
}

fn verify_with(recs: &[Rec], digest: Option<(i64, [u8; 32])>) -> ChainReport {
    let mut v = ChainVerifier::new(T1);
    if let Some((seq, hash)) = digest {
        v = v.with_digest(seq, hash);
    }
    for r in recs {
        let _ = v.push(&r.record(), &r.hash);
    }
    v.finish()
}

fn verify(recs: &[Rec]) -> ChainReport {
    verify_with(recs, None)
}

fn assert_bad(report: &ChainReport, seq: i64, reason_prefix: &str) {
    assert!(!report.ok, "{report:?}");
    assert_eq!(report.first_bad_seq, Some(seq), "{report:?}");
    let reason = report.reason.as_deref().unwrap_or("");
    assert!(reason.starts_with(reason_prefix), "reason {reason:?} does not start with {reason_prefix:?}");
}

// ---------- encoding ----------

/// Known-answer vector. Its canonical encoding, in hex, one field a line
/// (length prefix, then the bytes):
///
/// ```text
/// 64352d61756469742d76310a   prefix "d5-audit-v1\n"
/// 00000024 31313131313131312d323232322d333333332d343434342d353535353535353535353535
///                            tenant_id "11111111-2222-3333-4444-555555555555"
/// 00000001 32                seq "2"
/// 00000040 6162…6162         prev_hash: "ab" x 32 as ASCII hex text (64 bytes 61 62 61 62 …)
/// 00000010 31373936303538383232313233343536
///                            logged_at "1796058822123456" (2026-11-30T17:13:42.123456Z)
/// 00000006 393837363534      txid "987654"
/// 00000006 64355f617070      db_role "d5_app"
/// 00000011 616c696365406578616d706c652e636f6d
///                            actor "alice@example.com"
/// 00000005 636f737473        table_name "costs"
/// 00000006 555044415445      operation "UPDATE"
/// 0000000a 7b226964223a2034327d
///                            row_pk {"id": 42}
/// 0000001a 7b226964223a2034322c2022616d6f756e74223a2031302e357d
///                            old_row {"id": 42, "amount": 10.5}
/// 00000018 7b226964223a2034322c2022616d6f756e74223a2031327d
///                            new_row {"id": 42, "amount": 12}
/// 0000000a 5b22616d6f756e74225d
///                            changed_cols ["amount"]
/// ffffffff                   row_count NULL
/// ffffffff                   rows_digest NULL
/// 00000000                   detail "" (empty string, not NULL)
/// ```
///
/// SHA-256 = e464e8634ea2b666511f0d3b627da4afe62e78285cb4e0f01f050acd610f905a.
/// Independent recomputation (Python 3):
///
/// ```text
/// import hashlib, struct
/// f = lambda s: b"\xff"*4 if s is None else struct.pack(">I", len(s.encode())) + s.encode()
/// fields = ["11111111-2222-3333-4444-555555555555", "2", "ab"*32, "1796058822123456",
///           "987654", "d5_app", "alice@example.com", "costs", "UPDATE", '{"id": 42}',
///           '{"id": 42, "amount": 10.5}', '{"id": 42, "amount": 12}', '["amount"]',
///           None, None, ""]
/// print(hashlib.sha256(b"d5-audit-v1\n" + b"".join(map(f, fields))).hexdigest())
/// ```
fn kat_record() -> AuditRecord<'static> {
    AuditRecord {
        tenant_id: T1,
        seq: 2,
        prev_hash: [0xab; 32],
        logged_at_micros: 1_796_058_822_123_456,
        txid: 987_654,
        db_role: "d5_app",
        actor: Some("alice@example.com"),
        table_name: Some("costs"),
        operation: "UPDATE",
        row_pk: Some(r#"{"id": 42}"#),
        old_row: Some(r#"{"id": 42, "amount": 10.5}"#),
        new_row: Some(r#"{"id": 42, "amount": 12}"#),
        changed_cols: Some(r#"["amount"]"#),
        row_count: None,
        rows_digest: None,
        detail: Some(""),
    }
}

const KAT_CANONICAL_HEX: &str = "64352d61756469742d76310a0000002431313131313131312d323232322d333333332d343434342d353535353535353535353535000000013200000040616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261620000001031373936303538383232313233343536000000063938373635340000000664355f61707000000011616c696365406578616d706c652e636f6d00000005636f737473000000065550444154450000000a7b226964223a2034327d0000001a7b226964223a2034322c2022616d6f756e74223a2031302e357d000000187b226964223a2034322c2022616d6f756e74223a2031327d0000000a5b22616d6f756e74225dffffffffffffffff00000000";
const KAT_HASH_HEX: &str = "e464e8634ea2b666511f0d3b627da4afe62e78285cb4e0f01f050acd610f905a";

#[test]
fn known_answer_vector() {
    let rec = kat_record();
    let bytes = canonical_bytes(&rec);
    assert_eq!(hex::encode(&bytes), KAT_CANONICAL_HEX);
    assert_eq!(hash_hex(&record_hash(&rec)), KAT_HASH_HEX);
}

#[test]
fn streamed_hash_equals_hash_of_canonical_bytes() {
    use sha2::{Digest, Sha256};
    let rec = kat_record();
    let direct: [u8; 32] = Sha256::digest(canonical_bytes(&rec)).into();
    assert_eq!(record_hash(&rec), direct);
}

#[test]
fn null_and_empty_string_differ() {
    let mut a = kat_record();
    a.actor = None;
    let mut b = kat_record();
    b.actor = Some("");
    assert_ne!(record_hash(&a), record_hash(&b));
    assert_ne!(canonical_bytes(&a), canonical_bytes(&b));
    // Both are 4 bytes; only the marker differs.
    assert_eq!(canonical_bytes(&a).len(), canonical_bytes(&b).len());

    let mut c = kat_record();
    c.row_count = None;
    let mut d = kat_record();
    d.row_count = Some(0);
    assert_ne!(record_hash(&c), record_hash(&d));
}

#[test]
fn text_cannot_shift_between_fields() {
    let mut a = kat_record();
    a.actor = Some("x");
    a.table_name = None;
    let mut b = kat_record();
    b.actor = None;
    b.table_name = Some("x");
    assert_ne!(record_hash(&a), record_hash(&b));

    let mut c = kat_record();
    c.actor = Some("ab");
    c.table_name = Some("c");
    let mut d = kat_record();
    d.actor = Some("a");
    d.table_name = Some("bc");
    assert_ne!(record_hash(&c), record_hash(&d));
}

#[test]
fn every_field_is_covered() {
    let base = record_hash(&kat_record());
    let edits: Vec<fn(&mut AuditRecord<'static>)> = vec![
        |r| r.tenant_id = SYSTEM_CHAIN,
        |r| r.seq = 3,
        |r| r.prev_hash[31] ^= 1,
        |r| r.logged_at_micros += 1,
        |r| r.txid += 1,
        |r| r.db_role = "d5_admin",
        |r| r.actor = Some("mallory"),
        |r| r.table_name = None,
        |r| r.operation = "DELETE",
        |r| r.row_pk = Some(r#"{"id": 43}"#),
        |r| r.old_row = None,
        |r| r.new_row = Some(r#"{"id": 42, "amount": 13}"#),
        |r| r.changed_cols = Some("[]"),
        |r| r.row_count = Some(1),
        |r| r.rows_digest = Some("00"),
        |r| r.detail = None,
    ];
    for (i, edit) in edits.iter().enumerate() {
        let mut r = kat_record();
        edit(&mut r);
        assert_ne!(record_hash(&r), base, "edit {i} not covered by the hash");
    }
}

#[test]
fn decimal_formatting() {
    let mut buf = [0u8; 20];
    assert_eq!(format_i64(0, &mut buf), b"0");
    assert_eq!(format_i64(7, &mut buf), b"7");
    assert_eq!(format_i64(-1, &mut buf), b"-1");
    assert_eq!(format_i64(1_000_000, &mut buf), b"1000000");
    assert_eq!(format_i64(i64::MAX, &mut buf), b"9223372036854775807");
    assert_eq!(format_i64(i64::MIN, &mut buf), b"-9223372036854775808");
}

#[test]
fn negative_timestamp_is_encoded_with_sign() {
    let mut r = kat_record();
    r.logged_at_micros = -1;
    let hex = hex::encode(canonical_bytes(&r));
    // length 2, then "-1"
    assert!(hex.contains("000000022d31"), "{hex}");
}

// ---------- chain verification ----------

#[test]
fn clean_chain_verifies() {
    let report = verify(&chain(10));
    assert_eq!(
        report,
        ChainReport { tenant_id: T1, records: 10, ok: true, first_bad_seq: None, reason: None }
    );
}

#[test]
fn empty_chain_without_digest_is_ok() {
    let report = ChainVerifier::new(T1).finish();
    assert!(report.ok);
    assert_eq!(report.records, 0);
}

#[test]
fn edited_field_is_a_hash_mismatch_at_that_seq() {
    let mut recs = chain(10);
    recs[4].new_row = Some(r#"{"id": 5, "amount": 999}"#.into());
    let report = verify(&recs);
    assert_bad(&report, 5, "hash mismatch: stored hash does not match the record's contents");
    assert_eq!(report.records, 10);
}

#[test]
fn edited_stored_hash_is_a_hash_mismatch() {
    let mut recs = chain(10);
    recs[6].hash[0] ^= 0xff;
    assert_bad(&verify(&recs), 7, "hash mismatch");
}

#[test]
fn deleted_record_is_a_gap_at_the_missing_seq() {
    let mut recs = chain(10);
    recs.remove(4);
    assert_bad(&verify(&recs), 5, "gap: expected seq 5, found seq 6");
}

#[test]
fn deleted_genesis_is_an_unanchored_start() {
    let mut recs = chain(10);
    recs.remove(0);
    assert_bad(&verify(&recs), 2, "chain does not start at seq 1 and no seal anchors its first record");
}

#[test]
fn genesis_with_nonzero_prev_hash_is_a_broken_link() {
    let mut recs = chain(3);
    recs[0].prev_hash = [1; 32];
    relink_keep_first_prev(&mut recs);
    assert_bad(&verify(&recs), 1, "broken link: seq 1 must have prev_hash of 32 zero bytes");
}

fn relink_keep_first_prev(recs: &mut [Rec]) {
    recs[0].hash = record_hash(&recs[0].record());
    relink(recs, 1);
}

#[test]
fn forged_insert_with_own_hash_is_a_duplicate_seq() {
    let recs = chain(10);
    let mut forged = rec(T1, 5);
    forged.actor = Some("mallory".into());
    forged.prev_hash = recs[3].hash; // links correctly to seq 4
    forged.hash = record_hash(&forged.record());
    // Forged record before or after the genuine seq 5: both are caught at 5.
    for pos in [4, 5] {
        let mut tampered = recs.clone();
        tampered.insert(pos, forged.clone());
        assert_bad(&verify(&tampered), 5, "duplicate seq 5");
    }
}

#[test]
fn forged_insert_with_renumbered_tail_is_a_hash_mismatch() {
    let mut recs = chain(10);
    let mut forged = rec(T1, 5);
    forged.prev_hash = recs[3].hash;
    forged.hash = record_hash(&forged.record());
    for r in recs.iter_mut().skip(4) {
        r.seq += 1; // shifting seqs changes their contents
    }
    recs.insert(4, forged);
    assert_bad(&verify(&recs), 6, "hash mismatch");
}

#[test]
fn replaced_record_with_own_hash_is_a_broken_link_at_the_next_seq() {
    let mut recs = chain(10);
    recs[4].actor = Some("mallory".into());
    recs[4].hash = record_hash(&recs[4].record());
    assert_bad(&verify(&recs), 6, "broken link: prev_hash does not match the hash of seq 5");
}

#[test]
fn swapped_records_are_caught_at_the_first_affected_seq() {
    // Order swapped, seq values kept: 1 2 3 5 4 6 …
    let mut recs = chain(10);
    recs.swap(3, 4);
    assert_bad(&verify(&recs), 4, "gap: expected seq 4, found seq 5");

    // Contents swapped, seq values renumbered to stay ascending.
    let mut recs = chain(10);
    recs.swap(3, 4);
    recs[3].seq = 4;
    recs[4].seq = 5;
    assert_bad(&verify(&recs), 4, "hash mismatch");

    // Contents swapped and all hashes recomputed: internally consistent,
    // only a digest can tell (see rewritten_chain_is_caught_by_the_digest).
    let mut recs = chain(10);
    let digest = (10, recs[9].hash);
    recs.swap(3, 4);
    recs[3].seq = 4;
    recs[4].seq = 5;
    relink(&mut recs, 3);
    assert!(verify(&recs).ok);
    assert_bad(&verify_with(&recs, Some(digest)), 10, "chain rewritten since the digest");
}

#[test]
fn out_of_order_seq_before_start() {
    let mut recs = chain(10);
    recs.drain(0..4); // starts at seq 5, no seal: start problem at 5 comes first
    let early = recs[0].clone();
    let mut tail = recs.clone();
    let mut older = early.clone();
    older.seq = 2;
    tail.push(older);
    let report = verify(&tail);
    assert_bad(&report, 2, "out of order: seq 2 after seq 10");
}

#[test]
fn record_of_another_tenant_is_reported() {
    let mut recs = chain(3);
    recs[1].tenant_id = SYSTEM_CHAIN;
    assert_bad(&verify(&recs), 2, "record of tenant 00000000-0000-0000-0000-000000000000 found in chain");
}

#[test]
fn push_reports_broken_and_keeps_counting() {
    let mut recs = chain(5);
    recs[1].txid = 0;
    let mut v = ChainVerifier::new(T1);
    assert_eq!(v.push(&recs[0].record(), &recs[0].hash), Ok(()));
    assert_eq!(v.push(&recs[1].record(), &recs[1].hash), Err(ChainBroken));
    assert!(!v.is_ok_so_far());
    assert_eq!(v.push(&recs[2].record(), &recs[2].hash), Err(ChainBroken));
    let report = v.finish();
    assert_eq!(report.records, 3);
    assert_eq!(report.first_bad_seq, Some(2));
}
