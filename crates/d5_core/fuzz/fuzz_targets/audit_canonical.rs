//! Audit canonical encoding v1: decodes back to the record it came from (so
//! it is injective: two different records never hash the same bytes), the
//! hash is SHA-256 of those bytes, and the chain verifier accepts an intact
//! chain and names the first record of one that was edited or cut back.
#![no_main]

use arbitrary::Arbitrary;
use d5_core::audit::{canonical_bytes, record_hash, AuditRecord, ChainVerifier, ENCODING_V1_PREFIX, GENESIS_PREV_HASH};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use uuid::Uuid;

#[derive(Arbitrary, Debug, Clone, PartialEq)]
struct Rec {
    tenant: [u8; 16],
    seq: i64,
    prev: [u8; 32],
    logged_at: i64,
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
}

impl Rec {
    fn view(&self) -> AuditRecord<'_> {
        AuditRecord {
            tenant_id: Uuid::from_bytes(self.tenant),
            seq: self.seq,
            prev_hash: self.prev,
            logged_at_micros: self.logged_at,
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

#[derive(Arbitrary, Debug)]
struct Input {
    a: Rec,
    b: Rec,
    chain: Vec<Rec>,
    tamper_at: u8,
    tamper: Rec,
    tamper_field: u8,
    digest_at: u8,
}

/// Inverse of the encoding: 16 fields, each `FF FF FF FF` (NULL) or a 4-byte
/// big-endian length and that many bytes.
fn decode(bytes: &[u8]) -> Rec {
    let body = bytes.strip_prefix(ENCODING_V1_PREFIX.as_slice()).expect("prefix");
    let mut at = 0;
    let mut fields: Vec<Option<String>> = Vec::new();
    for _ in 0..16 {
        let len = u32::from_be_bytes(body[at..at + 4].try_into().unwrap());
        at += 4;
        if len == u32::MAX {
            fields.push(None);
        } else {
            let s = std::str::from_utf8(&body[at..at + len as usize]).expect("utf-8 field");
            fields.push(Some(s.to_owned()));
            at += len as usize;
        }
    }
    assert_eq!(at, body.len(), "trailing bytes");
    let int = |f: &Option<String>| {
        let s = f.as_deref().unwrap();
        let v: i64 = s.parse().unwrap();
        assert_eq!(v.to_string(), s, "integer not in plain decimal");
        v
    };
    let text = |f: &Option<String>| f.clone().expect("non-NULL field is NULL");
    let uuid_text = text(&fields[0]);
    let uuid = Uuid::parse_str(&uuid_text).unwrap();
    assert_eq!(uuid.hyphenated().to_string(), uuid_text, "uuid not lowercase hyphenated");
    let prev_text = text(&fields[2]);
    let mut prev = [0u8; 32];
    hex::decode_to_slice(&prev_text, &mut prev).unwrap();
    assert_eq!(hex::encode(prev), prev_text, "prev_hash not lowercase hex");
    Rec {
        tenant: *uuid.as_bytes(),
        seq: int(&fields[1]),
        prev,
        logged_at: int(&fields[3]),
        txid: int(&fields[4]),
        db_role: text(&fields[5]),
        actor: fields[6].clone(),
        table_name: fields[7].clone(),
        operation: text(&fields[8]),
        row_pk: fields[9].clone(),
        old_row: fields[10].clone(),
        new_row: fields[11].clone(),
        changed_cols: fields[12].clone(),
        row_count: fields[13].as_ref().map(|_| int(&fields[13])),
        rows_digest: fields[14].clone(),
        detail: fields[15].clone(),
    }
}

/// `base` with field `which` (0..16) taken from `from`.
fn splice(base: &Rec, from: &Rec, which: u8) -> Rec {
    let mut r = base.clone();
    match which % 16 {
        0 => r.tenant = from.tenant,
        1 => r.seq = from.seq,
        2 => r.prev = from.prev,
        3 => r.logged_at = from.logged_at,
        4 => r.txid = from.txid,
        5 => r.db_role = from.db_role.clone(),
        6 => r.actor = from.actor.clone(),
        7 => r.table_name = from.table_name.clone(),
        8 => r.operation = from.operation.clone(),
        9 => r.row_pk = from.row_pk.clone(),
        10 => r.old_row = from.old_row.clone(),
        11 => r.new_row = from.new_row.clone(),
        12 => r.changed_cols = from.changed_cols.clone(),
        13 => r.row_count = from.row_count,
        14 => r.rows_digest = from.rows_digest.clone(),
        _ => r.detail = from.detail.clone(),
    }
    r
}

fuzz_target!(|inp: Input| {
    for r in [&inp.a, &inp.b] {
        let bytes = canonical_bytes(&r.view());
        assert_eq!(&decode(&bytes), r, "encoding does not round-trip");
        assert_eq!(record_hash(&r.view()), <[u8; 32]>::from(Sha256::digest(&bytes)));
    }
    if inp.a != inp.b {
        assert_ne!(canonical_bytes(&inp.a.view()), canonical_bytes(&inp.b.view()));
    }

    // A linked chain of up to 8 records of one tenant.
    let tenant = inp.a.tenant;
    let mut chain: Vec<Rec> = inp.chain.iter().take(8).cloned().collect();
    let mut prev = GENESIS_PREV_HASH;
    let mut hashes = Vec::new();
    for (i, r) in chain.iter_mut().enumerate() {
        r.tenant = tenant;
        r.seq = i as i64 + 1;
        r.prev = prev;
        prev = record_hash(&r.view());
        hashes.push(prev);
    }
    let n = chain.len();
    let run = |recs: &[Rec], digest: Option<(i64, [u8; 32])>| {
        let mut v = ChainVerifier::new(Uuid::from_bytes(tenant));
        if let Some((s, h)) = digest {
            v = v.with_digest(s, h);
        }
        for (r, h) in recs.iter().zip(&hashes) {
            let _ = v.push(&r.view(), h);
        }
        v.finish()
    };
    let digest = (n > 0).then(|| {
        let k = inp.digest_at as usize % n;
        (k as i64 + 1, hashes[k])
    });
    let report = run(&chain, digest);
    assert!(report.ok, "intact chain refused: {:?}", report.reason);
    assert_eq!(report.records, n as i64);
    if n == 0 {
        return;
    }
    // Edit one field of one record, keep the stored hashes: caught there.
    let t = inp.tamper_at as usize % n;
    let edited = splice(&chain[t], &inp.tamper, inp.tamper_field);
    if edited != chain[t] {
        let mut bad = chain.clone();
        bad[t] = edited;
        let report = run(&bad, digest);
        assert!(!report.ok, "edited record {} not caught", t + 1);
        // An edited seq may be reported at the seq it now claims.
        if inp.tamper_field % 16 != 1 {
            assert_eq!(report.first_bad_seq, Some(t as i64 + 1), "{report:?}");
        }
    }
    // Cut back below the digest's seq: caught.
    if let Some((dseq, _)) = digest {
        let keep = (dseq - 1) as usize;
        let report = run(&chain[..keep], digest);
        assert!(!report.ok, "chain cut back to {keep} records, digest at {dseq}, passes");
    }
});
