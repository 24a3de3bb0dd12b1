//! Streaming verifier for one chain.
//!
//! Memory is constant per chain: records are checked as they arrive (ascending
//! seq) and only the few facts needed later are kept: the first record's
//! seq/prev_hash (for the retention-seal decision, which can only be made once
//! a later SEAL record has been seen), the last good seq/hash, and the hash at
//! the digest's seq.

use serde::Deserialize;
use uuid::Uuid;

use super::{parse_hash_hex, record_hash, AuditRecord, GENESIS_PREV_HASH, SEAL_OPERATION};

/// Result of verifying one chain; same columns as `d5.verify_audit_chain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub tenant_id: Uuid,
    /// Records pushed, including any after the first problem.
    pub records: i64,
    pub ok: bool,
    /// seq of the first problem (`None` when ok).
    pub first_bad_seq: Option<i64>,
    /// What the first problem is (`None` when ok).
    pub reason: Option<String>,
}

/// Returned by [`ChainVerifier::push`] once the chain is known to be broken.
/// The details come from [`ChainVerifier::finish`]; callers may stop feeding
/// records early (then `records` counts only what was pushed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainBroken;

impl std::fmt::Display for ChainBroken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("audit chain is broken")
    }
}

impl std::error::Error for ChainBroken {}

#[derive(Debug, Clone)]
struct Problem {
    seq: i64,
    reason: String,
}

/// What the chain checks read of a record besides its hashes: where it sits
/// in the chain, and (for a seal) what it anchors.
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    pub tenant_id: Uuid,
    pub seq: i64,
    pub prev_hash: [u8; 32],
    pub operation: &'a str,
    pub detail: Option<&'a str>,
}

impl<'a> Link<'a> {
    pub fn of(rec: &AuditRecord<'a>) -> Self {
        Link { tenant_id: rec.tenant_id, seq: rec.seq, prev_hash: rec.prev_hash, operation: rec.operation, detail: rec.detail }
    }
}

/// Verifies one chain fed record by record in ascending seq order.
///
/// Reports only the first problem. Problems found while streaming (hash
/// mismatch, gap, duplicate, broken link) are final when found; the start
/// check (first seq > 1 needs a seal) and the digest check are decided in
/// [`finish`](Self::finish), and the earliest seq among all problems wins.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    tenant_id: Uuid,
    records: i64,
    /// seq and prev_hash of the first record pushed.
    first: Option<(i64, [u8; 32])>,
    /// seq and hash of the last record that passed every check.
    last_good: Option<(i64, [u8; 32])>,
    /// First problem met while streaming; nothing after it is checked.
    fault: Option<Problem>,
    /// A verified SEAL anchors the first record.
    anchored: bool,
    /// (seq, hash) the digest says this chain had.
    digest: Option<(i64, [u8; 32])>,
    /// Stored hash at the digest's seq, if that record verified.
    digest_seen: Option<[u8; 32]>,
}

/// The only fields of a SEAL's detail the verifier needs.
#[derive(Deserialize)]
struct SealDetail {
    first_kept_seq: i64,
    anchor_hash: String,
}

impl ChainVerifier {
    pub fn new(tenant_id: Uuid) -> Self {
        ChainVerifier {
            tenant_id,
            records: 0,
            first: None,
            last_good: None,
            fault: None,
            anchored: false,
            digest: None,
            digest_seen: None,
        }
    }

    /// Also require the chain to hold record `seq` with exactly `hash` (from a
    /// digest entry for this chain). Call before pushing records.
    pub fn with_digest(mut self, seq: i64, hash: [u8; 32]) -> Self {
        self.digest = Some((seq, hash));
        self
    }

    pub fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    /// False once a problem has been found while streaming; callers can then
    /// skip hashing further records (see [`push_prehashed`](Self::push_prehashed)).
    pub fn is_ok_so_far(&self) -> bool {
        self.fault.is_none()
    }

    /// Checks the next record of the chain against its stored hash.
    pub fn push(&mut self, rec: &AuditRecord<'_>, stored_hash: &[u8; 32]) -> Result<(), ChainBroken> {
        if self.fault.is_some() {
            self.records += 1;
            return Err(ChainBroken);
        }
        let computed = record_hash(rec);
        self.push_prehashed(rec, stored_hash, &computed)
    }

    /// Like [`push`](Self::push) for a caller that already computed
    /// `record_hash(rec)` (saves hashing twice).
    pub fn push_prehashed(
        &mut self,
        rec: &AuditRecord<'_>,
        stored_hash: &[u8; 32],
        computed_hash: &[u8; 32],
    ) -> Result<(), ChainBroken> {
        self.push_link(&Link::of(rec), stored_hash, computed_hash)
    }

    /// Like [`push_prehashed`](Self::push_prehashed), from only the fields
    /// the chain checks need: for callers that hash records elsewhere (on
    /// other threads) and keep just this much of each.
    pub fn push_link(&mut self, rec: &Link<'_>, stored_hash: &[u8; 32], computed_hash: &[u8; 32]) -> Result<(), ChainBroken> {
        self.records += 1;
        if self.fault.is_some() {
            return Err(ChainBroken);
        }
        match self.check(rec, stored_hash, computed_hash) {
            Ok(()) => Ok(()),
            Err(problem) => {
                self.fault = Some(problem);
                Err(ChainBroken)
            }
        }
    }

    fn check(&mut self, rec: &Link<'_>, stored: &[u8; 32], computed: &[u8; 32]) -> Result<(), Problem> {
        let seq = rec.seq;
        let bad = |reason: String| Err(Problem { seq, reason });
        if rec.tenant_id != self.tenant_id {
            return bad(format!(
                "record of tenant {} found in chain {}",
                rec.tenant_id, self.tenant_id
            ));
        }
        match self.last_good {
            None => {
                if seq < 1 {
                    return bad(format!("invalid seq {seq}: seq starts at 1"));
                }
                if self.first.is_none() {
                    self.first = Some((seq, rec.prev_hash));
                }
                if computed != stored {
                    return bad(HASH_MISMATCH.to_string());
                }
                if seq == 1 && rec.prev_hash != GENESIS_PREV_HASH {
                    return bad("broken link: seq 1 must have prev_hash of 32 zero bytes".to_string());
                }
            }
            Some((last_seq, last_hash)) => {
                // Order checks so a missing or extra record is named before the
                // (then inevitable) hash or link complaint about its neighbour.
                let Some(expected) = last_seq.checked_add(1) else {
                    return bad(format!("out of order: seq {seq} after seq {last_seq}"));
                };
                if seq > expected {
                    return Err(Problem {
                        seq: expected,
                        reason: format!("gap: expected seq {expected}, found seq {seq}"),
                    });
                }
                if seq < expected {
                    let first_seq = self.first.map_or(1, |f| f.0);
                    return if seq >= first_seq {
                        bad(format!("duplicate seq {seq}"))
                    } else {
                        bad(format!("out of order: seq {seq} after seq {last_seq}"))
                    };
                }
                if computed != stored {
                    return bad(HASH_MISMATCH.to_string());
                }
                if rec.prev_hash != last_hash {
                    return bad(format!(
                        "broken link: prev_hash does not match the hash of seq {last_seq}"
                    ));
                }
            }
        }

        // The record is verified: only now may it count for seal or digest.
        self.last_good = Some((seq, *stored));
        if self.digest.is_some_and(|(dseq, _)| dseq == seq) {
            self.digest_seen = Some(*stored);
        }
        if !self.anchored && rec.operation == SEAL_OPERATION {
            self.anchored = self.seal_anchors_first(rec.detail);
        }
        Ok(())
    }

    /// Does this SEAL's detail name our first record (seq and prev_hash)?
    /// A malformed detail simply anchors nothing.
    fn seal_anchors_first(&self, detail: Option<&str>) -> bool {
        let (Some((first_seq, first_prev)), Some(detail)) = (self.first, detail) else {
            return false;
        };
        if first_seq <= 1 {
            return false; // nothing to anchor, skip the JSON parse
        }
        match serde_json::from_str::<SealDetail>(detail) {
            Ok(seal) => {
                seal.first_kept_seq == first_seq
                    && parse_hash_hex(&seal.anchor_hash) == Some(first_prev)
            }
            Err(_) => false,
        }
    }

    /// Decides the deferred checks and reports the earliest problem.
    pub fn finish(self) -> ChainReport {
        let mut problems: Vec<Problem> = Vec::with_capacity(3);
        // Ties go to the earlier entry: a concrete streaming fault explains
        // more than the start or digest complaint about the same seq.
        problems.extend(self.fault.clone());
        if let Some((first_seq, _)) = self.first {
            if first_seq > 1 && !self.anchored {
                problems.push(Problem {
                    seq: first_seq,
                    reason: format!(
                        "chain does not start at seq 1 and no seal anchors its first record (seq {first_seq})"
                    ),
                });
            }
        }
        problems.extend(self.digest_problem());

        let first = problems
            .into_iter()
            .enumerate()
            .min_by_key(|(i, p)| (p.seq, *i))
            .map(|(_, p)| p);
        ChainReport {
            tenant_id: self.tenant_id,
            records: self.records,
            ok: first.is_none(),
            first_bad_seq: first.as_ref().map(|p| p.seq),
            reason: first.map(|p| p.reason),
        }
    }

    fn digest_problem(&self) -> Option<Problem> {
        let (dseq, dhash) = self.digest?;
        let Some((first_seq, first_prev)) = self.first else {
            return Some(Problem {
                seq: 1,
                reason: format!("chain is missing: the digest has seq {dseq}, the chain has no records"),
            });
        };
        if dseq < first_seq {
            // The digest's record was dropped by retention. Only the record
            // right after it can still be tied to the digest's hash.
            if dseq == first_seq - 1 {
                return (first_prev != dhash).then(|| Problem {
                    seq: first_seq,
                    reason: format!(
                        "chain rewritten since the digest: prev_hash of seq {first_seq} differs from the digest's hash of seq {dseq}"
                    ),
                });
            }
            return Some(Problem {
                seq: first_seq,
                reason: format!(
                    "cannot check the digest: its seq {dseq} was dropped, the chain now starts at seq {first_seq}; use a newer digest"
                ),
            });
        }
        if let Some(seen) = self.digest_seen {
            return (seen != dhash).then(|| Problem {
                seq: dseq,
                reason: format!("chain rewritten since the digest: hash of seq {dseq} differs"),
            });
        }
        if self.fault.is_some() {
            // The chain broke before reaching the digest's seq; that fault
            // is earlier and already reported.
            return None;
        }
        let last_seq = self.last_good.map_or(first_seq - 1, |l| l.0);
        Some(Problem {
            seq: last_seq.saturating_add(1),
            reason: format!(
                "chain is shorter than the digest: digest has seq {dseq}, chain ends at seq {last_seq}"
            ),
        })
    }
}

const HASH_MISMATCH: &str = "hash mismatch: stored hash does not match the record's contents";
