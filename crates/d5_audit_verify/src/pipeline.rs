//! Parsing and hashing export lines on every core, results in input order.
//!
//! A reader thread cuts the input into chunks of whole lines; worker
//! threads parse each line and hash its record; the caller's closure sees
//! the results one line at a time, in the order of the input, on the
//! calling thread (the chain checks need that order, and are cheap).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::{mpsc, Arc, Mutex};

use d5_core::audit::{record_hash, Link};
use uuid::Uuid;

use crate::{export, InputError};

/// Bytes of input per chunk (whole lines; a longer line makes a longer chunk).
const CHUNK_BYTES: usize = 1 << 20;

/// A parsed and hashed line: what the chain checks need of it.
pub struct HashedLine {
    pub tenant_id: Uuid,
    pub seq: i64,
    pub prev_hash: [u8; 32],
    pub stored: [u8; 32],
    pub computed: [u8; 32],
    pub operation: String,
    /// Kept only for seals, the one operation whose detail is checked.
    pub detail: Option<String>,
}

impl HashedLine {
    pub fn link(&self) -> Link<'_> {
        Link {
            tenant_id: self.tenant_id,
            seq: self.seq,
            prev_hash: self.prev_hash,
            operation: &self.operation,
            detail: self.detail.as_deref(),
        }
    }
}

/// A chunk of input lines, numbered from `first_line`.
struct Chunk {
    index: u64,
    first_line: u64,
    bytes: Vec<u8>,
}

type Hashed = Result<Vec<HashedLine>, InputError>;

/// Calls `f` with every non-blank line of `reader` whose tenant is
/// `wanted`, parsed and hashed, in input order. Stops at the first
/// malformed line (or read error) and returns it.
pub fn hashed_lines<R: BufRead + Send>(
    reader: R,
    wanted: &(dyn Fn(&Uuid) -> bool + Sync),
    mut f: impl FnMut(HashedLine),
) -> Result<(), InputError> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    std::thread::scope(|scope| {
        // Made in here so an early return drops every receiver this side
        // holds, which is what stops the threads before the scope joins them.
        let (to_workers, chunks) = mpsc::sync_channel::<Chunk>(workers * 2);
        let chunks = Arc::new(Mutex::new(chunks));
        let (to_caller, results) = mpsc::sync_channel::<(u64, Hashed)>(workers * 2);
        let read_failed = to_caller.clone();
        scope.spawn(move || {
            if let Err((index, e)) = read_chunks(reader, &to_workers) {
                let _ = read_failed.send((index, Err(e)));
            }
        });
        for _ in 0..workers {
            let chunks = Arc::clone(&chunks);
            let to_caller = to_caller.clone();
            scope.spawn(move || loop {
                let next = chunks.lock().map(|rx| rx.recv());
                let Ok(Ok(chunk)) = next else { break };
                if to_caller.send((chunk.index, hash_chunk(&chunk, wanted))).is_err() {
                    break;
                }
            });
        }
        drop(chunks);
        drop(to_caller);
        // Results arrive in any order; hand them on in input order.
        let mut waiting: BTreeMap<u64, Hashed> = BTreeMap::new();
        let mut next = 0;
        for (index, hashed) in results {
            waiting.insert(index, hashed);
            while let Some(hashed) = waiting.remove(&next) {
                next += 1;
                // On error, returning drops `results`: workers and then the reader stop.
                hashed?.into_iter().for_each(&mut f);
            }
        }
        Ok(())
    })
}

/// Sends the input as chunks of whole lines. On a read error, returns the
/// index the error takes in the order of chunks, and the error.
fn read_chunks<R: BufRead>(mut reader: R, to_workers: &mpsc::SyncSender<Chunk>) -> Result<(), (u64, InputError)> {
    let mut index = 0;
    let mut line = 1;
    loop {
        let mut bytes = Vec::with_capacity(CHUNK_BYTES + 4096);
        while bytes.len() < CHUNK_BYTES {
            let before = bytes.len();
            let read = reader.read_until(b'\n', &mut bytes).map_err(|e| {
                let at = line + bytes[..before].iter().filter(|&&b| b == b'\n').count() as u64;
                (index, InputError { line: at, message: format!("cannot read the export: {e}") })
            })?;
            if read == 0 {
                break;
            }
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64 + u64::from(!bytes.ends_with(b"\n"));
        if to_workers.send(Chunk { index, first_line: line, bytes }).is_err() {
            return Ok(()); // the caller stopped
        }
        index += 1;
        line += lines;
    }
}

fn hash_chunk(chunk: &Chunk, wanted: &(dyn Fn(&Uuid) -> bool + Sync)) -> Hashed {
    let mut out = Vec::new();
    for (i, raw) in chunk.bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = chunk.first_line + i as u64;
        let bad = |message: String| InputError { line: line_no, message };
        let line = std::str::from_utf8(raw)
            .map_err(|_| bad("cannot read the export: stream did not contain valid UTF-8".into()))?
            .trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let row = export::parse_line(line).map_err(bad)?;
        let (rec, stored) = row.to_record().map_err(bad)?;
        if !wanted(&rec.tenant_id) {
            continue;
        }
        let mut computed = record_hash(&rec);
        let mut link = Link::of(&rec);
        if computed != stored {
            if let Some(alt) = export::resolve_jsonb_null(&rec, &stored) {
                link = Link::of(&alt);
                computed = stored;
            }
        }
        out.push(HashedLine {
            tenant_id: link.tenant_id,
            seq: link.seq,
            prev_hash: link.prev_hash,
            stored,
            computed,
            operation: link.operation.to_owned(),
            detail: (link.operation == d5_core::audit::SEAL_OPERATION).then(|| link.detail.map(str::to_owned)).flatten(),
        });
    }
    Ok(out)
}
