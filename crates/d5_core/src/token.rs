//! Tenant tokens: `d5t1.<tenant uuid>.<expires>.<signature>`.
//!
//! * `tenant uuid` — lowercase hyphenated, e.g. `0b6d…-…`;
//! * `expires` — Unix time in whole seconds (UTC) after which the token is refused;
//! * `signature` — unpadded base64url of HMAC-SHA256(key, "d5t1.<tenant uuid>.<expires>").
//!
//! The format is deliberately tiny so an external auth service can mint tokens
//! with any HMAC library and the key exported by `d5.export_tenant_token_key()`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

pub const TOKEN_PREFIX: &str = "d5t1";
/// Keys shorter than this are refused: HMAC-SHA256 wants at least 256 bits.
pub const MIN_KEY_BYTES: usize = 32;
/// Tokens longer than this are refused before any parsing work.
const MAX_TOKEN_LEN: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("tenant token is malformed: {0}")]
    Malformed(&'static str),
    #[error("tenant token was issued for another tenant")]
    WrongTenant,
    #[error("tenant token expired at {expired_at} (Unix time), now is {now}")]
    Expired { expired_at: i64, now: i64 },
    #[error("tenant token signature is not valid")]
    BadSignature,
    #[error("token signing key must be at least {MIN_KEY_BYTES} bytes")]
    WeakKey,
}

fn signature(key: &[u8], payload: &str) -> Result<HmacSha256, TokenError> {
    if key.len() < MIN_KEY_BYTES {
        return Err(TokenError::WeakKey);
    }
    let mut mac = HmacSha256::new_from_slice(key).map_err(|_| TokenError::WeakKey)?;
    mac.update(payload.as_bytes());
    Ok(mac)
}

/// Issues a token for `tenant` valid until `expires_at` (Unix seconds).
pub fn mint(key: &[u8], tenant: Uuid, expires_at: i64) -> Result<String, TokenError> {
    let payload = format!("{TOKEN_PREFIX}.{}.{expires_at}", tenant.hyphenated());
    let tag = signature(key, &payload)?.finalize().into_bytes();
    Ok(format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag)))
}

/// Checks `token` for `tenant` at time `now` (Unix seconds).
///
/// The signature is checked before the tenant and expiry so that a forged
/// token learns nothing about which part was wrong; the comparison is
/// constant-time (`Mac::verify_slice`).
pub fn verify(key: &[u8], token: &str, tenant: Uuid, now: i64) -> Result<(), TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed("longer than 256 characters"));
    }
    let (payload, sig_b64) = token
        .rsplit_once('.')
        .ok_or(TokenError::Malformed("expected d5t1.<tenant>.<expires>.<signature>"))?;
    let mut parts = payload.split('.');
    let (Some(prefix), Some(tenant_text), Some(expires_text), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("expected d5t1.<tenant>.<expires>.<signature>"));
    };
    if prefix != TOKEN_PREFIX {
        return Err(TokenError::Malformed("unknown token version (expected d5t1)"));
    }
    let token_tenant =
        Uuid::parse_str(tenant_text).map_err(|_| TokenError::Malformed("tenant is not a uuid"))?;
    let expires_at: i64 = expires_text
        .parse()
        .map_err(|_| TokenError::Malformed("expiry is not an integer"))?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| TokenError::Malformed("signature is not base64url"))?;
    signature(key, payload)?
        .verify_slice(&sig)
        .map_err(|_| TokenError::BadSignature)?;
    if token_tenant != tenant {
        return Err(TokenError::WrongTenant);
    }
    if now >= expires_at {
        return Err(TokenError::Expired { expired_at: expires_at, now });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7u8; 32];
    const T1: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    const T2: Uuid = Uuid::from_u128(0xfedc_ba98_7654_3210_fedc_ba98_7654_3210);

    #[test]
    fn round_trip() {
        let t = mint(&KEY, T1, 2_000).unwrap();
        assert!(t.starts_with("d5t1.01234567-89ab-cdef-0123-456789abcdef.2000."));
        assert_eq!(verify(&KEY, &t, T1, 1_999), Ok(()));
    }

    #[test]
    fn known_answer_for_external_minters() {
        // Recompute with: printf 'd5t1.01234567-89ab-cdef-0123-456789abcdef.2000' |
        //   openssl dgst -sha256 -mac HMAC -macopt hexkey:0707…07 -binary | basenc --base64url
        let t = mint(&KEY, T1, 2_000).unwrap();
        let sig = t.rsplit('.').next().unwrap();
        assert_eq!(sig.len(), 43);
        let mut mac = HmacSha256::new_from_slice(&KEY).unwrap();
        mac.update(b"d5t1.01234567-89ab-cdef-0123-456789abcdef.2000");
        assert_eq!(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()), sig);
    }

    #[test]
    fn refuses_expired_wrong_tenant_forged_and_malformed() {
        let t = mint(&KEY, T1, 2_000).unwrap();
        assert_eq!(
            verify(&KEY, &t, T1, 2_000),
            Err(TokenError::Expired { expired_at: 2_000, now: 2_000 })
        );
        assert_eq!(verify(&KEY, &t, T2, 1), Err(TokenError::WrongTenant));
        assert_eq!(verify(&[8u8; 32], &t, T1, 1), Err(TokenError::BadSignature));
        // Moving the expiry forward breaks the signature.
        let forged = t.replace(".2000.", ".9999.");
        assert_eq!(verify(&KEY, &forged, T1, 1), Err(TokenError::BadSignature));
        // Splicing another tenant into a valid token breaks the signature.
        let spliced = t.replace(&T1.to_string(), &T2.to_string());
        assert_eq!(verify(&KEY, &spliced, T2, 1), Err(TokenError::BadSignature));
        for bad in ["", "d5t1", "d5t1.x.1.sig", "d5t2.01234567-89ab-cdef-0123-456789abcdef.1.AAAA", "a.b.c.d.e", &"x".repeat(300)] {
            assert!(matches!(verify(&KEY, bad, T1, 1), Err(TokenError::Malformed(_))), "{bad}");
        }
        assert_eq!(mint(&[1u8; 8], T1, 1), Err(TokenError::WeakKey));
    }
}
