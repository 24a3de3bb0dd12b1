//! Feeding already-validated rows to Postgres' own COPY FROM machinery
//! (BeginCopyFrom/CopyFrom with a callback source), which routes rows to
//! partitions and batches the inserts — the fast path behind ingest_focus.
//! Rows are produced as COPY asks for them, so only a small window of the
//! encoded batch exists at any time.

use std::cell::RefCell;
use std::ffi::CString;

use pgrx::pg_sys;

/// Produces the COPY stream a piece at a time: appends the next bytes to
/// the buffer and returns false once it has appended the last (the trailer).
pub type Fill<'a> = dyn FnMut(&mut Vec<u8>) -> bool + 'a;

/// COPY's callback source has no user pointer: the producer of one
/// `copy_binary_stream_into` call and its pending bytes live here.
struct Source {
    fill: *mut Fill<'static>,
    pending: Vec<u8>,
    pos: usize,
    finished: bool,
}

thread_local! {
    static SOURCE: RefCell<Option<Source>> = const { RefCell::new(None) };
}

/// Clears the source however the COPY ends (an error unwinds through here).
struct SourceGuard;

impl Drop for SourceGuard {
    fn drop(&mut self) {
        SOURCE.with(|s| *s.borrow_mut() = None);
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn read_source(outbuf: *mut std::ffi::c_void, minread: i32, maxread: i32) -> i32 {
    SOURCE.with(|s| {
        let mut guard = s.borrow_mut();
        let Some(src) = guard.as_mut() else { return 0 };
        let want = maxread.max(0) as usize;
        let mut written = 0usize;
        // COPY wants at least `minread` bytes unless the stream has ended.
        while written < want {
            if src.pos == src.pending.len() {
                if src.finished {
                    break;
                }
                src.pending.clear();
                src.pos = 0;
                // SAFETY: `fill` points at the producer borrowed for the
                // duration of the copy_binary_stream_into call running now.
                src.finished = !unsafe { (*src.fill)(&mut src.pending) };
                continue;
            }
            let n = (src.pending.len() - src.pos).min(want - written);
            // SAFETY: COPY hands us a buffer of at least `maxread` bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(src.pending.as_ptr().add(src.pos), outbuf.cast::<u8>().add(written), n)
            };
            src.pos += n;
            written += n;
            if written >= minread.max(1) as usize {
                break;
            }
        }
        written as i32
    })
}

/// Runs `COPY <relation> (<columns>) FROM <stream> (FORMAT binary)` and
/// returns the number of rows stored. `fill` produces the stream (binary
/// header, rows, trailer) as COPY reads it, so the whole batch is never
/// held in memory at once.
pub fn copy_binary_stream_into(relation: pg_sys::Oid, columns: &[&str], fill: &mut Fill<'_>) -> u64 {
    // SAFETY: the lifetime is erased only for the thread-local; the guard
    // clears it before this function returns or unwinds, so the producer is
    // never called after its borrow ends.
    let fill: *mut Fill<'static> = unsafe { std::mem::transmute::<*mut Fill<'_>, *mut Fill<'static>>(fill) };
    SOURCE.with(|s| *s.borrow_mut() = Some(Source { fill, pending: Vec::with_capacity(1 << 16), pos: 0, finished: false }));
    let _clear = SourceGuard;
    let names: Vec<CString> = columns.iter().map(|c| CString::new(*c).unwrap_or_default()).collect();
    // SAFETY: mirrors DoCopy() for COPY FROM: a parse state whose range table
    // holds the target relation (CopyFrom initialises its result relation
    // from range-table index 1), a column list of String nodes, and the
    // option list of `FORMAT binary`. Errors raised inside unwind through pgrx's guards and abort
    // the transaction, which releases the relation.
    let processed = unsafe {
        let pstate = pg_sys::make_parsestate(std::ptr::null_mut());
        (*pstate).p_sourcetext = c"d5.ingest_focus()".as_ptr();
        let lock = pg_sys::RowExclusiveLock as pg_sys::LOCKMODE;
        let rel = pg_sys::table_open(relation, lock);
        pg_sys::addRangeTableEntryForRelation(pstate, rel, lock, std::ptr::null_mut(), false, false);
        let mut attnames: *mut pg_sys::List = std::ptr::null_mut();
        for name in &names {
            attnames = pg_sys::lappend(attnames, pg_sys::makeString(pg_sys::pstrdup(name.as_ptr())).cast());
        }
        let format = pg_sys::makeDefElem(
            pg_sys::pstrdup(c"format".as_ptr()),
            pg_sys::makeString(pg_sys::pstrdup(c"binary".as_ptr())).cast(),
            -1,
        );
        let options = pg_sys::lappend(std::ptr::null_mut(), format.cast());
        let cstate = pg_sys::BeginCopyFrom(
            pstate,
            rel,
            std::ptr::null_mut(),
            std::ptr::null(),
            false,
            Some(read_source),
            attnames,
            options,
        );
        let processed = pg_sys::CopyFrom(cstate);
        pg_sys::EndCopyFrom(cstate);
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
        // Later statements of this function must see the rows.
        pg_sys::CommandCounterIncrement();
        processed
    };
    processed
}
