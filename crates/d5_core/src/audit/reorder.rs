//! Feeding a [`ChainVerifier`] from records that arrive nearly, but not
//! exactly, in seq order — such as a table read in physical (heap) order,
//! which costs a fraction of an index-ordered read of a large log.
//!
//! Records ahead of the next expected seq wait in a small buffer. Anything
//! that cannot be put in order without knowing more — a seq seen twice, a
//! seq below the one expected next, or records still waiting at the end (a
//! gap) — is reported as [`Disorder`]; the caller then verifies the chain
//! again from a seq-ordered read, which reports the fault exactly. So a
//! clean chain is verified in one cheap pass, and a broken one gets the same
//! report as from an ordered read.

use std::collections::BTreeMap;

use super::{AuditRecord, ChainReport, ChainVerifier, RecordHeader};

/// The records could not be put in seq order: verify from an ordered read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disorder;

/// An [`AuditRecord`] that owns its text, for records waiting their turn.
#[derive(Debug, Clone)]
struct OwnedRecord {
    header: RecordHeader,
    /// The text fields in [`AuditRecord::texts`] order (None = SQL NULL).
    texts: [Option<String>; 10],
    stored_hash: [u8; 32],
}

impl OwnedRecord {
    fn new(r: &AuditRecord<'_>, stored_hash: &[u8; 32]) -> Self {
        OwnedRecord { header: r.header(), texts: r.texts().map(|t| t.map(str::to_owned)), stored_hash: *stored_hash }
    }

    fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.texts.iter().flatten().map(String::len).sum::<usize>()
    }

    fn as_record(&self) -> AuditRecord<'_> {
        AuditRecord::from_texts(self.header, std::array::from_fn(|i| self.texts[i].as_deref()))
    }
}

/// One chain's verifier behind a reorder buffer.
#[derive(Debug)]
pub struct ReorderingVerifier {
    verifier: ChainVerifier,
    next: i64,
    last_seq: i64,
    waiting: BTreeMap<i64, OwnedRecord>,
    waiting_bytes: usize,
}

impl ReorderingVerifier {
    /// `first_seq`: the lowest seq the chain holds (the record to verify first).
    pub fn new(verifier: ChainVerifier, first_seq: i64) -> Self {
        ReorderingVerifier { verifier, next: first_seq, last_seq: first_seq - 1, waiting: BTreeMap::new(), waiting_bytes: 0 }
    }

    /// Bytes held by records waiting for an earlier seq.
    pub fn waiting_bytes(&self) -> usize {
        self.waiting_bytes
    }

    /// seq of the newest record verified so far.
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    pub fn feed(&mut self, rec: &AuditRecord<'_>, stored_hash: &[u8; 32]) -> Result<(), Disorder> {
        if rec.seq < self.next {
            return Err(Disorder);
        }
        if rec.seq > self.next {
            if self.waiting.contains_key(&rec.seq) {
                return Err(Disorder);
            }
            let owned = OwnedRecord::new(rec, stored_hash);
            self.waiting_bytes += owned.bytes();
            self.waiting.insert(rec.seq, owned);
            return Ok(());
        }
        self.push(rec, stored_hash);
        while let Some(owned) = self.waiting.remove(&self.next) {
            self.waiting_bytes -= owned.bytes();
            self.push(&owned.as_record(), &owned.stored_hash);
        }
        Ok(())
    }

    fn push(&mut self, rec: &AuditRecord<'_>, stored_hash: &[u8; 32]) {
        // A broken chain is reported by the verifier itself; keep feeding so
        // it counts every record.
        let _ = self.verifier.push(rec, stored_hash);
        self.next = rec.seq + 1;
        self.last_seq = rec.seq;
    }

    /// The verifier, once every record has arrived in order.
    pub fn into_verifier(self) -> Result<ChainVerifier, Disorder> {
        if self.waiting.is_empty() {
            Ok(self.verifier)
        } else {
            Err(Disorder)
        }
    }

    /// Convenience for callers that need no head check.
    pub fn finish(self) -> Result<ChainReport, Disorder> {
        self.into_verifier().map(ChainVerifier::finish)
    }
}
