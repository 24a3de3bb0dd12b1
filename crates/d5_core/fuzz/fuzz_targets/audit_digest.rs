//! Digest parser: never panics; what it accepts is a set of distinct tenants
//! with seq >= 1, and printing those entries back parses to the same list.
#![no_main]

use d5_core::audit::{hash_hex, parse_digest, DIGEST_FORMAT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(entries) = parse_digest(text) else { return };
    let mut tenants: Vec<_> = entries.iter().map(|e| e.tenant_id).collect();
    tenants.sort();
    tenants.dedup();
    assert_eq!(tenants.len(), entries.len(), "duplicate tenant accepted");
    assert!(entries.iter().all(|e| e.seq >= 1));
    let chains: Vec<_> = entries
        .iter()
        .map(|e| serde_json::json!({"tenant_id": e.tenant_id.to_string(), "seq": e.seq, "hash": hash_hex(&e.hash)}))
        .collect();
    let again = serde_json::json!({"format": DIGEST_FORMAT, "chains": chains}).to_string();
    assert_eq!(parse_digest(&again).expect("re-parse"), entries);
});
