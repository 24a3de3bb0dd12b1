//! Parsing of `d5.audit_digest()` output (format "d5-audit-digest-v1").

use std::collections::HashMap;

use serde::Deserialize;
use uuid::Uuid;

use super::parse_hash_hex;

/// Value of the digest's `format` key.
pub const DIGEST_FORMAT: &str = "d5-audit-digest-v1";

/// One chain head from a digest: the chain had record `seq` with `hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestEntry {
    pub tenant_id: Uuid,
    pub seq: i64,
    pub hash: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest is not a valid {DIGEST_FORMAT} document: {0}")]
    Json(String),
    #[error("digest format is {found:?}, expected {DIGEST_FORMAT:?}")]
    Format { found: String },
    #[error("digest chains[{index}]: tenant_id {value:?} is not a UUID")]
    TenantId { index: usize, value: String },
    #[error("digest chains[{index}]: seq {seq} is invalid, seqs start at 1")]
    Seq { index: usize, seq: i64 },
    #[error("digest chains[{index}]: hash {value:?} is not 64 hex digits")]
    Hash { index: usize, value: String },
    #[error("digest lists tenant {tenant_id} twice (chains[{first}] and chains[{second}])")]
    Duplicate { tenant_id: Uuid, first: usize, second: usize },
}

#[derive(Deserialize)]
struct RawDigest {
    format: String,
    chains: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    tenant_id: String,
    seq: i64,
    hash: String,
}

/// Parses and validates a digest document. Other keys (`taken_at`, …) are
/// ignored; every chain entry must be complete and each tenant listed once.
pub fn parse_digest(text: &str) -> Result<Vec<DigestEntry>, DigestError> {
    let raw: RawDigest = serde_json::from_str(text).map_err(|e| DigestError::Json(e.to_string()))?;
    if raw.format != DIGEST_FORMAT {
        return Err(DigestError::Format { found: raw.format });
    }
    let mut seen: HashMap<Uuid, usize> = HashMap::with_capacity(raw.chains.len());
    let mut entries = Vec::with_capacity(raw.chains.len());
    for (index, entry) in raw.chains.into_iter().enumerate() {
        let tenant_id = Uuid::try_parse(&entry.tenant_id)
            .map_err(|_| DigestError::TenantId { index, value: entry.tenant_id.clone() })?;
        if entry.seq < 1 {
            return Err(DigestError::Seq { index, seq: entry.seq });
        }
        let hash = parse_hash_hex(&entry.hash).ok_or_else(|| DigestError::Hash { index, value: entry.hash.clone() })?;
        if let Some(first) = seen.insert(tenant_id, index) {
            return Err(DigestError::Duplicate { tenant_id, first, second: index });
        }
        entries.push(DigestEntry { tenant_id, seq: entry.seq, hash });
    }
    Ok(entries)
}
