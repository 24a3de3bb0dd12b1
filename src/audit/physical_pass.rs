//! The fast pass of `d5.verify_audit_chain()`: one read of the whole log in
//! physical order, on two cores.
//!
//! Nearly all the cost of verifying inside the database is turning each
//! record's jsonb columns into the `jsonb_out` text the hash covers. Here
//! the backend only reads rows and copies their bytes, jsonb left binary,
//! into batches; a worker thread writes the jsonb text
//! (`d5_core::audit::jsonb_text`), hashes and checks the chains, while the
//! backend reads the next batch. The worker runs only Rust on owned bytes
//! and never calls into Postgres.
//!
//! Whatever this pass cannot settle goes back to the caller to verify from
//! Postgres' own text in seq order: a chain whose records cannot be put in
//! order on the fly, a jsonb value the Rust writer does not handle, and
//! every chain that fails here (so the report of a broken chain always comes
//! from Postgres' own `jsonb_out`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::mpsc;

use d5_core::audit::jsonb_text::append_varlena_text;
use d5_core::audit::{stored_text, AuditRecord, ChainVerifier, Disorder, RecordHeader, ReorderingVerifier};

use super::chain::PG_EPOCH_OFFSET_MICROS;
use super::log_reader::{self, Row};

/// A chain stops waiting for a missing seq when its buffer passes this; it
/// is then read again by itself in seq order.
const MAX_WAITING_BYTES: usize = 16 << 20;

/// A batch goes to the worker at this many records or bytes, whichever
/// comes first (large rows must not multiply the memory in flight).
const BATCH_RECORDS: usize = 1_000;
const BATCH_BYTES: usize = 8 << 20;
const BATCHES_IN_FLIGHT: usize = 3;

/// Chains verified by the pass (verifier, newest seq), and chains to verify
/// again from an ordered read.
pub type Outcome = (BTreeMap<uuid::Uuid, (ChainVerifier, i64)>, BTreeSet<uuid::Uuid>);

/// Byte range in a batch's arena; `None` is SQL NULL.
type Field = Option<(usize, usize)>;

/// One row as copied out of Postgres: fixed columns, and ranges of the
/// arena holding text columns (as UTF-8 bytes) and jsonb columns (varlena).
struct RawRecord {
    tenant_id: uuid::Uuid,
    seq: i64,
    prev_hash: [u8; 32],
    stored_hash: [u8; 32],
    logged_at: i64,
    txid: i64,
    row_count: Option<i64>,
    /// db_role, actor, table_name, operation, rows_digest
    texts: [Field; 5],
    /// row_pk, old_row, new_row, changed_cols, detail
    jsonbs: [Field; 5],
}

#[derive(Default)]
struct Batch {
    arena: Vec<u8>,
    records: Vec<RawRecord>,
}

impl Batch {
    fn put(&mut self, bytes: Option<&[u8]>) -> Field {
        let bytes = bytes?;
        let start = self.arena.len();
        self.arena.extend_from_slice(bytes);
        Some((start, self.arena.len()))
    }

    fn get(&self, field: Field) -> Option<&[u8]> {
        field.map(|(a, b)| &self.arena[a..b])
    }

    /// Copies one row of `log_reader::for_each_raw`.
    fn push_row(&mut self, row: &Row) {
        // SAFETY: the row comes from RAW_COLUMNS, whose numbering this follows.
        unsafe {
            let texts = [row.bytes(7), row.bytes(8), row.bytes(9), row.bytes(10), row.bytes(16)].map(|b| self.put(b));
            let jsonbs = [row.jsonb_bytes(11), row.jsonb_bytes(12), row.jsonb_bytes(13), row.jsonb_bytes(14), row.jsonb_bytes(17)]
                .map(|b| self.put(b));
            self.records.push(RawRecord {
                tenant_id: row.uuid(1),
                seq: row.int8(2).unwrap_or(0),
                prev_hash: row.prev_hash(3),
                stored_hash: row.hash(4),
                logged_at: row.int8(5).unwrap_or(0),
                txid: row.int8(6).unwrap_or(0),
                row_count: row.int8(15),
                texts,
                jsonbs,
            });
        }
    }

    fn clear(&mut self) {
        self.arena.clear();
        self.records.clear();
    }
}

/// The worker's side: chains being verified and chains given up on.
struct Chains<'v> {
    new_verifier: &'v (dyn Fn(uuid::Uuid) -> ChainVerifier + Sync),
    chains: HashMap<uuid::Uuid, ReorderingVerifier>,
    redo: BTreeSet<uuid::Uuid>,
    /// Reused buffers for the jsonb texts of one record.
    json: [String; 5],
}

impl Chains<'_> {
    fn verify_batch(&mut self, batch: &Batch) {
        for raw in &batch.records {
            self.verify_record(batch, raw);
        }
    }

    fn verify_record(&mut self, batch: &Batch, raw: &RawRecord) {
        let tenant = raw.tenant_id;
        if self.redo.contains(&tenant) {
            return;
        }
        let text = |i: usize| batch.get(raw.texts[i]).map(stored_text);
        for (i, field) in raw.jsonbs.iter().enumerate() {
            self.json[i].clear();
            if let Some(bytes) = batch.get(*field) {
                if append_varlena_text(bytes, &mut self.json[i]).is_none() {
                    self.give_up(tenant);
                    return;
                }
            }
        }
        let json = |i: usize| raw.jsonbs[i].map(|_| self.json[i].as_str());
        let header = RecordHeader {
            tenant_id: tenant,
            seq: raw.seq,
            prev_hash: raw.prev_hash,
            logged_at_micros: raw.logged_at.saturating_add(PG_EPOCH_OFFSET_MICROS),
            txid: raw.txid,
            row_count: raw.row_count,
        };
        let rec = AuditRecord::from_texts(
            header,
            [text(0), text(1), text(2), text(3), json(0), json(1), json(2), json(3), text(4), json(4)],
        );
        let new_verifier = self.new_verifier;
        let chain =
            self.chains.entry(tenant).or_insert_with(|| ReorderingVerifier::new(new_verifier(tenant), raw.seq));
        if chain.feed(&rec, &raw.stored_hash).is_err() || chain.waiting_bytes() > MAX_WAITING_BYTES {
            self.give_up(tenant);
        }
    }

    fn give_up(&mut self, tenant: uuid::Uuid) {
        self.chains.remove(&tenant);
        self.redo.insert(tenant);
    }

    fn finish(self) -> Outcome {
        let mut redo = self.redo;
        let mut done = BTreeMap::new();
        for (t, chain) in self.chains {
            let last_seq = chain.last_seq();
            match chain.into_verifier() {
                Ok(v) if v.is_ok_so_far() => {
                    done.insert(t, (v, last_seq));
                }
                Ok(_) | Err(Disorder) => {
                    redo.insert(t);
                }
            }
        }
        (done, redo)
    }
}

/// Postgres' signal handlers (cancel, latch wake-ups) must run on the
/// backend's own thread, never on the worker.
fn block_signals() {
    // SAFETY: plain libc calls on a local signal set, for the calling thread only.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
    }
}

/// Verifies every chain the caller can see from one physical-order read;
/// `None` if the worker failed (then every chain must be read in order).
pub fn verify(new_verifier: &(dyn Fn(uuid::Uuid) -> ChainVerifier + Sync)) -> Option<Outcome> {
    let (to_worker, batches) = mpsc::sync_channel::<Batch>(BATCHES_IN_FLIGHT);
    let (give_back, spares) = mpsc::channel::<Batch>();
    // A synchronized scan may start mid-table, far from seq order.
    let level = crate::privilege::set_local_guc(c"synchronize_seqscans", c"off");
    let outcome = std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            block_signals();
            let mut chains = Chains { new_verifier, chains: HashMap::new(), redo: BTreeSet::new(), json: Default::default() };
            for mut batch in batches {
                chains.verify_batch(&batch);
                batch.clear();
                let _ = give_back.send(batch);
            }
            chains.finish()
        });
        let mut batch = Batch::default();
        let mut worker_gone = false;
        log_reader::for_each_raw(log_reader::PHYSICAL_ORDER, |row| {
            if worker_gone {
                return;
            }
            batch.push_row(row);
            if batch.records.len() >= BATCH_RECORDS || batch.arena.len() >= BATCH_BYTES {
                let next = spares.try_recv().unwrap_or_default();
                worker_gone = to_worker.send(std::mem::replace(&mut batch, next)).is_err();
            }
        });
        if !batch.records.is_empty() && !worker_gone {
            let _ = to_worker.send(batch);
        }
        drop(to_worker);
        worker.join()
    });
    crate::privilege::restore_gucs(level);
    outcome.ok()
}
