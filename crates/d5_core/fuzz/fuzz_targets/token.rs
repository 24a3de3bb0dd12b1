//! Tenant tokens: a token verifies iff it was minted with that key, for that
//! tenant, and has not expired; no edit of a valid token verifies; arbitrary
//! text never panics the parser and never verifies.
#![no_main]

use arbitrary::Arbitrary;
use d5_core::token::{mint, verify, TokenError};
use libfuzzer_sys::fuzz_target;
use uuid::Uuid;

#[derive(Arbitrary, Debug)]
struct Input {
    key: [u8; 32],
    extra_key: Vec<u8>,
    tenant: [u8; 16],
    other_tenant: [u8; 16],
    expires: i64,
    now: i64,
    /// (position, byte) edits applied to the minted token.
    edits: Vec<(u16, u8)>,
    /// Bytes cut from the end of the minted token.
    cut: u8,
    free_text: String,
}

fuzz_target!(|inp: Input| {
    let mut key = inp.key.to_vec();
    key.extend_from_slice(&inp.extra_key);
    let tenant = Uuid::from_bytes(inp.tenant);
    let other = Uuid::from_bytes(inp.other_tenant);
    let tok = mint(&key, tenant, inp.expires).expect("32-byte key");

    // Minted with this key and tenant: only expiry decides.
    let res = verify(&key, &tok, tenant, inp.now);
    if inp.now < inp.expires {
        assert_eq!(res, Ok(()), "{tok}");
    } else {
        assert_eq!(res, Err(TokenError::Expired { expired_at: inp.expires, now: inp.now }));
    }
    // Another tenant: refused (signature is fine, tenant is not).
    if other != tenant {
        assert_eq!(verify(&key, &tok, other, i64::MIN), Err(TokenError::WrongTenant));
    }
    // Another key: refused on the signature.
    let mut key2 = key.clone();
    key2[inp.edits.len() % key.len()] ^= 1 | inp.cut;
    assert_eq!(verify(&key2, &tok, tenant, i64::MIN), Err(TokenError::BadSignature));

    // Any edit of the token: refused.
    let mut bytes = tok.clone().into_bytes();
    for (pos, b) in &inp.edits {
        if bytes.is_empty() {
            break;
        }
        let i = *pos as usize % bytes.len();
        bytes[i] = *b;
    }
    bytes.truncate(bytes.len().saturating_sub(inp.cut as usize % 8));
    if let Ok(edited) = String::from_utf8(bytes) {
        if edited != tok {
            assert!(verify(&key, &edited, tenant, i64::MIN).is_err(), "edited {edited:?} of {tok:?} verifies");
        }
    }

    // Free text: parses without panic; a text that verifies must be the very
    // token minted for that tenant and its expiry (it cannot be forged here).
    if verify(&key, &inp.free_text, tenant, i64::MIN).is_ok() {
        let exp: i64 = inp.free_text.split('.').nth(2).unwrap().parse().unwrap();
        assert_eq!(inp.free_text, mint(&key, tenant, exp).unwrap());
    }
    let short = &key[..(inp.cut as usize % 32)];
    assert_eq!(verify(short, &tok, tenant, i64::MIN), Err(TokenError::WeakKey));
});
