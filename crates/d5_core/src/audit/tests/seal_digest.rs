//! Retention seal and digest tests.

use super::*;

// ---------- retention seal ----------

fn seal_detail(first_kept_seq: i64, anchor: &[u8; 32]) -> String {
    format!(
        r#"{{"anchor_hash": "{}", "first_kept_seq": {first_kept_seq}, "dropped_before": "2026-01-01 00:00:00+00", "records_dropped": {}}}"#,
        hash_hex(anchor),
        first_kept_seq - 1
    )
}

/// Chain 1..=20, a SEAL appended as seq 21, then records before `first_kept`
/// dropped, as the retention job does.
fn sealed_chain(first_kept: i64, anchor_override: Option<[u8; 32]>, seal_says: Option<i64>) -> Vec<Rec> {
    let mut recs = chain(20);
    let anchor = anchor_override.unwrap_or(recs[(first_kept - 2) as usize].hash);
    let mut seal = rec(T1, 21);
    seal.operation = SEAL_OPERATION.into();
    seal.table_name = None;
    seal.row_pk = None;
    seal.new_row = None;
    seal.detail = Some(seal_detail(seal_says.unwrap_or(first_kept), &anchor));
    recs.push(seal);
    relink(&mut recs, 20);
    recs.drain(0..(first_kept - 1) as usize);
    recs
}

#[test]
fn seal_anchors_a_chain_that_starts_later() {
    let recs = sealed_chain(10, None, None);
    assert_eq!(recs[0].seq, 10);
    let report = verify(&recs);
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 12);
}

#[test]
fn forged_seal_anchor_is_rejected() {
    let recs = sealed_chain(10, Some([7; 32]), None);
    assert_bad(&verify(&recs), 10, "chain does not start at seq 1 and no seal anchors its first record (seq 10)");
}

#[test]
fn seal_for_another_start_is_rejected() {
    // Seal says 8 were kept but the chain starts at 10: two records more
    // than the seal accounts for were removed.
    let recs = sealed_chain(10, None, Some(8));
    assert_bad(&verify(&recs), 10, "chain does not start at seq 1");
}

#[test]
fn tampered_seal_does_not_anchor() {
    let mut recs = sealed_chain(10, None, None);
    let last = recs.len() - 1;
    recs[last].db_role = "mallory".into();
    // The seal no longer verifies, so the start is unanchored: seq 10 is
    // earlier than the seal's own hash mismatch at 21.
    assert_bad(&verify(&recs), 10, "chain does not start at seq 1");
}

#[test]
fn seal_after_a_fault_does_not_anchor() {
    let mut recs = sealed_chain(10, None, None);
    recs[3].actor = None; // seq 13
    assert_bad(&verify(&recs), 10, "chain does not start at seq 1");
}

#[test]
fn malformed_seal_detail_anchors_nothing() {
    let mut recs = chain(20);
    let mut seal = rec(T1, 21);
    seal.operation = SEAL_OPERATION.into();
    seal.detail = Some(r#"{"first_kept_seq": "ten"}"#.into());
    recs.push(seal);
    relink(&mut recs, 20);
    recs.drain(0..9);
    assert_bad(&verify(&recs), 10, "chain does not start at seq 1");
}

#[test]
fn seal_in_a_chain_still_starting_at_one_is_fine() {
    let mut recs = chain(20);
    let mut seal = rec(T1, 21);
    seal.operation = SEAL_OPERATION.into();
    seal.detail = Some(seal_detail(10, &recs[8].hash));
    recs.push(seal);
    relink(&mut recs, 20);
    assert!(verify(&recs).ok);
}

// ---------- digest ----------

#[test]
fn digest_at_head_or_earlier_passes() {
    let recs = chain(10);
    assert!(verify_with(&recs, Some((10, recs[9].hash))).ok);
    // Records appended after the digest are fine.
    assert!(verify_with(&recs, Some((7, recs[6].hash))).ok);
}

#[test]
fn truncated_tail_is_caught_by_the_digest() {
    let recs = chain(10);
    let digest = (10, recs[9].hash);
    let truncated = &recs[..7];
    assert!(verify(truncated).ok, "undetectable without the digest");
    let report = verify_with(truncated, Some(digest));
    assert_bad(&report, 8, "chain is shorter than the digest: digest has seq 10, chain ends at seq 7");
}

#[test]
fn rewritten_chain_is_caught_by_the_digest() {
    let mut recs = chain(10);
    let digest = (10, recs[9].hash);
    recs[2].new_row = Some(r#"{"id": 3, "amount": 0}"#.into());
    relink(&mut recs, 2);
    assert!(verify(&recs).ok, "a full rewrite is internally consistent");
    assert_bad(&verify_with(&recs, Some(digest)), 10, "chain rewritten since the digest: hash of seq 10 differs");
}

#[test]
fn rewritten_and_extended_chain_is_caught_by_the_digest() {
    let mut recs = chain(10);
    let digest = (6, recs[5].hash);
    recs[0].actor = Some("mallory".into());
    relink(&mut recs, 0);
    assert_bad(&verify_with(&recs, Some(digest)), 6, "chain rewritten since the digest: hash of seq 6 differs");
}

#[test]
fn chain_missing_entirely_is_reported() {
    let report = ChainVerifier::new(T1).with_digest(4, [1; 32]).finish();
    assert_eq!(report.records, 0);
    assert_bad(&report, 1, "chain is missing: the digest has seq 4");
}

#[test]
fn earlier_internal_fault_wins_over_digest() {
    let mut recs = chain(10);
    let digest = (10, recs[9].hash);
    recs.remove(3); // gap at 4
    recs.truncate(6);
    assert_bad(&verify_with(&recs, Some(digest)), 4, "gap: expected seq 4");
}

#[test]
fn digest_before_the_retained_start() {
    let full = chain(20);
    let recs = sealed_chain(10, None, None);
    // Digest of seq 9 (just dropped) still links to the first kept record.
    assert!(verify_with(&recs, Some((9, full[8].hash))).ok);
    assert_bad(&verify_with(&recs, Some((9, [3; 32]))), 10, "chain rewritten since the digest: prev_hash of seq 10");
    // Older digests cannot be tied to what is left.
    assert_bad(&verify_with(&recs, Some((5, full[4].hash))), 10, "cannot check the digest");
}

#[test]
fn parse_digest_accepts_the_documented_format() {
    let text = r#"{"chains": [{"seq": 3, "hash": "00000000000000000000000000000000000000000000000000000000000000ff", "tenant_id": "00000000-0000-0000-0000-000000000000"}, {"seq": 120, "hash": "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB", "tenant_id": "11111111-2222-3333-4444-555555555555"}], "format": "d5-audit-digest-v1", "taken_at": "2026-11-29T11:07:02.123456+00:00"}"#;
    let entries = parse_digest(text).expect("valid digest");
    let mut h0 = [0u8; 32];
    h0[31] = 0xff;
    assert_eq!(
        entries,
        vec![
            DigestEntry { tenant_id: SYSTEM_CHAIN, seq: 3, hash: h0 },
            DigestEntry { tenant_id: T1, seq: 120, hash: [0xab; 32] },
        ]
    );
}

#[test]
fn parse_digest_rejects_bad_input() {
    let h = "00".repeat(32);
    let doc = |format: &str, chains: &str| format!(r#"{{"format": "{format}", "chains": [{chains}]}}"#);
    let entry = |t: &str, seq: &str, hash: &str| format!(r#"{{"tenant_id": "{t}", "seq": {seq}, "hash": "{hash}"}}"#);
    let nil = "00000000-0000-0000-0000-000000000000";

    assert!(matches!(parse_digest("not json"), Err(DigestError::Json(_))));
    assert!(matches!(parse_digest(r#"{"format": "d5-audit-digest-v1"}"#), Err(DigestError::Json(m)) if m.contains("chains")));
    assert!(matches!(parse_digest(&doc("other-v9", "")), Err(DigestError::Format { .. })));
    assert!(matches!(parse_digest(&doc(DIGEST_FORMAT, &entry("nope", "1", &h))), Err(DigestError::TenantId { index: 0, .. })));
    assert!(matches!(parse_digest(&doc(DIGEST_FORMAT, &entry(nil, "0", &h))), Err(DigestError::Seq { index: 0, seq: 0 })));
    assert!(matches!(parse_digest(&doc(DIGEST_FORMAT, &entry(nil, "1", "abc"))), Err(DigestError::Hash { .. })));
    assert!(matches!(parse_digest(&doc(DIGEST_FORMAT, &entry(nil, "1", &format!("\\\\x{h}")))), Err(DigestError::Hash { .. })));
    assert!(matches!(parse_digest(&doc(DIGEST_FORMAT, &entry(nil, "\"1\"", &h))), Err(DigestError::Json(_))));
    let two = format!("{}, {}", entry(nil, "1", &h), entry(nil, "2", &h));
    assert!(matches!(parse_digest(&doc(DIGEST_FORMAT, &two)), Err(DigestError::Duplicate { first: 0, second: 1, .. })));
    assert_eq!(parse_digest(&doc(DIGEST_FORMAT, "")), Ok(vec![]));
}
