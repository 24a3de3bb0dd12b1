//! Where each chain ends, held in backend memory for the writing transaction.
//!
//! The first record a transaction appends to a chain (at pre-commit for
//! records kept by `pending`) takes that chain's lock (held until the
//! transaction ends, so writers of one tenant are ordered and a rolled-back
//! transaction leaves no gap) and reads the head from
//! `d5.audit_chain_heads`. Every further record of that chain in the
//! transaction takes seq and prev_hash from memory; the row is written with
//! the first record and, if more followed, once more at pre-commit. Updating
//! the row per record instead made every append walk all earlier versions of
//! it: quadratic in the rows one transaction writes to one chain.
//!
//! A rolled-back subtransaction takes its records with it (and the chain
//! lock, if it took it first), so each change remembers the head it
//! replaced and the subtransaction that made it; a subtransaction abort
//! restores them.

use std::cell::RefCell;
use std::collections::HashMap;

use pgrx::pg_sys;

use super::head_row::HeadRow;

/// The end of one chain as this transaction sees it.
#[derive(Clone, Copy)]
pub struct Head {
    /// Seq and hash of the chain's newest record, and where the newest
    /// version of its head row is.
    pub row: HeadRow,
    /// Not yet written to `d5.audit_chain_heads`.
    dirty: bool,
    /// Subtransaction of the last undo entry pushed for this chain.
    saved_in: pg_sys::SubTransactionId,
}

struct Undo {
    subxact: pg_sys::SubTransactionId,
    tenant: uuid::Uuid,
    /// `None`: the chain was not locked before this subtransaction.
    prior: Option<Head>,
}

#[derive(Default)]
struct State {
    heads: HashMap<uuid::Uuid, Head>,
    undo: Vec<Undo>,
    callbacks_registered: bool,
    /// Pre-commit has written the heads: later appends write theirs at once.
    committing: bool,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

fn current_subxact() -> pg_sys::SubTransactionId {
    // SAFETY: reads backend-local transaction state.
    unsafe { pg_sys::GetCurrentSubTransactionId() }
}

/// The head of `tenant`'s chain if this transaction holds its lock.
pub fn get(tenant: &uuid::Uuid) -> Option<Head> {
    STATE.with(|s| s.borrow().heads.get(tenant).copied())
}

/// Records that this transaction now holds the lock on `tenant`'s chain,
/// whose committed end is `row`.
pub fn locked(tenant: uuid::Uuid, row: HeadRow) {
    register_callbacks();
    let subxact = current_subxact();
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.undo.push(Undo { subxact, tenant, prior: None });
        let head = Head { row, dirty: false, saved_in: subxact };
        s.heads.insert(tenant, head);
    });
}

/// Moves `tenant`'s head to the record just appended (`written`: the head
/// row was updated with it, its new version is there). Returns true when
/// the caller must write the head now (the transaction is already
/// committing) and then report it with [`stored`].
pub fn advance(tenant: uuid::Uuid, seq: i64, hash: [u8; 32], written: Option<pg_sys::ItemPointerData>) -> bool {
    let subxact = current_subxact();
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let s = &mut *s;
        let Some(head) = s.heads.get_mut(&tenant) else {
            return true;
        };
        if head.saved_in != subxact {
            s.undo.push(Undo { subxact, tenant, prior: Some(*head) });
            head.saved_in = subxact;
        }
        head.row.seq = seq;
        head.row.hash = hash;
        if let Some(tid) = written {
            head.row.tid = tid;
        }
        head.dirty = !s.committing && written.is_none();
        s.committing && written.is_none()
    })
}

/// The head row of `tenant` was written; its newest version is at `tid`.
pub fn stored(tenant: &uuid::Uuid, tid: pg_sys::ItemPointerData) {
    STATE.with(|s| {
        if let Some(head) = s.borrow_mut().heads.get_mut(tenant) {
            head.row.tid = tid;
            head.dirty = false;
        }
    });
}

/// Heads changed by this transaction and not yet written: what a verifier
/// running inside the same transaction must compare the log with.
pub fn unwritten() -> Vec<(uuid::Uuid, i64)> {
    STATE.with(|s| s.borrow().heads.iter().filter(|(_, h)| h.dirty).map(|(t, h)| (*t, h.row.seq)).collect())
}

fn take_dirty() -> Vec<(uuid::Uuid, Head)> {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.committing = true;
        s.heads.iter().filter(|(_, h)| h.dirty).map(|(t, h)| (*t, *h)).collect()
    })
}

fn forget_transaction() {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.heads.clear();
        s.undo.clear();
        s.committing = false;
    });
}

fn abort_subtransaction(subxact: pg_sys::SubTransactionId) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        // Subtransaction ids grow: every entry at or above `subxact` was made
        // by it or by one of its children, all rolled back now.
        while s.undo.last().is_some_and(|u| u.subxact >= subxact) {
            let u = s.undo.pop().expect("checked above");
            match u.prior {
                Some(prior) => {
                    s.heads.insert(u.tenant, prior);
                }
                None => {
                    s.heads.remove(&u.tenant);
                }
            }
        }
    });
}

pub(super) fn register_callbacks() {
    let first = STATE.with(|s| !std::mem::replace(&mut s.borrow_mut().callbacks_registered, true));
    if first {
        // SAFETY: registers plain functions for the backend's lifetime.
        unsafe {
            pg_sys::RegisterXactCallback(Some(on_xact), std::ptr::null_mut());
            pg_sys::RegisterSubXactCallback(Some(on_subxact), std::ptr::null_mut());
        }
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_xact(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    match event {
        // Still inside the transaction: an error here aborts it, so a head
        // is never committed without its records or the records without it.
        XACT_EVENT_PRE_COMMIT | XACT_EVENT_PRE_PREPARE => {
            super::pending::append_kept_for_commit();
            for (tenant, head) in take_dirty() {
                super::chain::store_head(&tenant, &head);
            }
        }
        XACT_EVENT_COMMIT | XACT_EVENT_ABORT | XACT_EVENT_PREPARE => {
            forget_transaction();
            super::pending::forget_transaction();
        }
        _ => {}
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_subxact(
    event: pg_sys::SubXactEvent::Type,
    subxact: pg_sys::SubTransactionId,
    parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_COMMIT_SUB {
        super::pending::commit_subtransaction(subxact, parent);
    }
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        abort_subtransaction(subxact);
        super::pending::abort_subtransaction(subxact);
    }
}
