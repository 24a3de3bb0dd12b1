//! Feeding already-validated rows to Postgres' own COPY FROM machinery
//! (BeginCopyFrom/CopyFrom with a callback source), which routes rows to
//! partitions and batches the inserts — the fast path behind ingest_focus.

use std::cell::RefCell;
use std::ffi::CString;

use pgrx::pg_sys;

thread_local! {
    /// COPY's callback source has no user pointer: the bytes it reads live here
    /// for the duration of one `copy_text_into` call.
    static SOURCE: RefCell<(Vec<u8>, usize)> = const { RefCell::new((Vec::new(), 0)) };
}

unsafe extern "C-unwind" fn read_source(outbuf: *mut std::ffi::c_void, _minread: i32, maxread: i32) -> i32 {
    SOURCE.with(|s| {
        let mut s = s.borrow_mut();
        let (data, pos) = &mut *s;
        let n = (data.len() - *pos).min(maxread.max(0) as usize);
        // SAFETY: COPY hands us a buffer of at least `maxread` bytes.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr().add(*pos), outbuf.cast::<u8>(), n) };
        *pos += n;
        n as i32
    })
}

/// Runs `COPY <relation> (<columns>) FROM <data> (FORMAT binary)` and returns
/// the number of rows stored. `data` is consumed; it holds the binary
/// header, the rows and the trailer.
pub fn copy_binary_into(relation: pg_sys::Oid, columns: &[&str], data: Vec<u8>) -> u64 {
    SOURCE.with(|s| *s.borrow_mut() = (data, 0));
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
    SOURCE.with(|s| *s.borrow_mut() = (Vec::new(), 0));
    processed
}
