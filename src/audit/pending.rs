//! Row records that wait for their transaction's commit to join their chain.
//!
//! A chain's lock is held from the moment a transaction appends to the chain
//! until the transaction ends: a seq handed to a transaction that then rolls
//! back would leave a gap. Taken when a row changes, it would make every
//! other writer of that tenant wait for as long as the transaction stays
//! open: its later statements, the application's work between them, a
//! session left idle in the transaction. So the row trigger makes the whole
//! record when the row changes (jsonb, role, actor, time: all but its place
//! in the chain) and keeps it here; at pre-commit the chains are locked in
//! tenant order (two transactions writing the same tenants cannot deadlock
//! on them) and the records appended in the order they were made. The lock
//! is then held only through the commit itself.
//!
//! Kept records are bounded by `d5.audit_pending_limit`: past it they are
//! appended at once, and from then on the records of a chain this
//! transaction has locked are appended as they come (what a limit of 0 does
//! from the first record). Events (bulk loads, maintenance, seals) are
//! appended at once, after the records kept before them, so a chain's order
//! is always the order of the changes. A rolled-back savepoint drops the
//! records made inside it.

use std::cell::RefCell;
use std::rc::Rc;

use pgrx::pg_sys;

use super::chain::{self, NewRecord};
use super::json::OwnedJsonb;
use super::heads;
use super::AuditError;
use crate::error::{raise, InternalError};
use crate::gucs;

/// A row's record, made by the trigger: everything but seq and hashes. Its
/// jsonb values live in the statement's memory context; [`keep`] copies them
/// into the transaction's.
pub struct RowRecord {
    pub tenant_id: uuid::Uuid,
    pub table_name: String,
    pub operation: &'static str,
    pub row_pk: Option<OwnedJsonb>,
    pub old_row: Option<OwnedJsonb>,
    pub new_row: Option<OwnedJsonb>,
    pub changed_cols: Option<OwnedJsonb>,
    pub detail: Option<OwnedJsonb>,
}

impl RowRecord {
    fn as_new_record(&self) -> NewRecord<'_> {
        NewRecord {
            tenant_id: self.tenant_id,
            table_name: Some(&self.table_name),
            operation: self.operation,
            row_pk: self.row_pk.as_ref().map(OwnedJsonb::as_ref),
            old_row: self.old_row.as_ref().map(OwnedJsonb::as_ref),
            new_row: self.new_row.as_ref().map(OwnedJsonb::as_ref),
            changed_cols: self.changed_cols.as_ref().map(OwnedJsonb::as_ref),
            row_count: None,
            rows_digest: None,
            detail: self.detail.as_ref().map(OwnedJsonb::as_ref),
        }
    }

    fn jsonbs_mut(&mut self) -> [&mut Option<OwnedJsonb>; 5] {
        [&mut self.row_pk, &mut self.old_row, &mut self.new_row, &mut self.changed_cols, &mut self.detail]
    }
}

/// A kept record with what the trigger saw when it made it.
struct Kept {
    record: RowRecord,
    subxact: pg_sys::SubTransactionId,
    logged_at: pg_sys::TimestampTz,
    db_role: String,
    actor: Option<String>,
    /// Memory it takes, roughly.
    size: usize,
}

struct State {
    kept: Vec<Rc<Kept>>,
    bytes: usize,
    /// Child of TopTransactionContext holding the kept jsonb values; null
    /// until the transaction keeps its first record.
    context: pg_sys::MemoryContext,
    /// Set while records are being appended, to the subtransaction doing it.
    /// Records made meanwhile (by triggers a DBA put on the audit log)
    /// queue behind them.
    appending_in: Option<pg_sys::SubTransactionId>,
    /// Appended records with the subtransaction whose fate their appends
    /// share, as long as that is not the record's own: an append past the
    /// limit inside a savepoint, or any append still under way (an error
    /// may interrupt it). Rolling that subtransaction back undoes the
    /// appends but not the older changes, whose records are then kept again.
    /// Subtransaction commits relabel it to the parent; once that is the
    /// record's own, the record is forgotten.
    appended: Vec<(pg_sys::SubTransactionId, Rc<Kept>)>,
}

thread_local! {
    static STATE: RefCell<State> = const {
        RefCell::new(State {
            kept: Vec::new(),
            bytes: 0,
            context: std::ptr::null_mut(),
            appending_in: None,
            appended: Vec::new(),
        })
    };
}

/// Records a row's change: keeps the record for the commit, or appends it at
/// once when the limit is 0 or this transaction holds the chain's lock
/// already (then after any record of its chain kept before the limit was
/// set to 0).
pub fn record(record: RowRecord) {
    let appending = STATE.with(|s| s.borrow().appending_in.is_some());
    if appending || (gucs::AUDIT_PENDING_LIMIT.get() > 0 && heads::get(&record.tenant_id).is_none()) {
        keep(record);
    } else {
        append_chain_kept(&record.tenant_id);
        super::append_now(&record.as_new_record());
    }
}

/// Before an event of `tenant`'s chain is appended: appends the records of
/// that chain kept before it. An event made while records are being
/// appended (by a trigger a DBA put on the audit log) could not follow
/// them, so it is refused there.
pub fn before_event(tenant: &uuid::Uuid) {
    if STATE.with(|s| s.borrow().appending_in.is_some()) {
        raise(AuditError::Misconfigured(
            "an audit event cannot be written while audit records are appended (by a trigger on d5.audit_log)",
        ));
    }
    append_chain_kept(tenant);
}

fn append_chain_kept(tenant: &uuid::Uuid) {
    if STATE.with(|s| s.borrow().kept.iter().any(|k| k.record.tenant_id == *tenant)) {
        append_kept_of(Some(tenant));
    }
}

/// The memory context kept records live in: until the transaction ends, or
/// until every record in it has been appended.
fn memory_context() -> pg_sys::MemoryContext {
    // First, so that the transaction's end always forgets the context.
    heads::register_callbacks();
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if s.context.is_null() {
            // SAFETY: a child of the transaction's context, deleted with it;
            // forgotten (below) when the transaction ends.
            s.context = unsafe {
                pg_sys::AllocSetContextCreateExtended(
                    pg_sys::TopTransactionContext,
                    c"d5 audit records".as_ptr(),
                    pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
                    pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
                    pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
                )
            };
        }
        s.context
    })
}

/// Keeps `record` for the commit, its values copied out of the statement's
/// memory (only once they are complete: whatever runs while a record is
/// made, a cast to json included, finds no half-made record here); appends
/// every kept record now if they pass the limit.
fn keep(mut record: RowRecord) {
    let context = memory_context();
    let mut size = record.table_name.len() + 200;
    for jsonb in record.jsonbs_mut().into_iter().flatten() {
        *jsonb = jsonb.copy_into(context);
        size += jsonb.size();
    }
    // SAFETY: reads backend-local transaction state.
    let (subxact, logged_at) =
        unsafe { (pg_sys::GetCurrentSubTransactionId(), pg_sys::GetCurrentStatementStartTimestamp()) };
    let kept = Kept {
        record,
        subxact,
        logged_at,
        db_role: crate::privilege::current_user_name(),
        actor: crate::tenancy::context::current_actor(),
        size,
    };
    let over = STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.kept.push(Rc::new(kept));
        s.bytes += size;
        s.appending_in.is_none() && s.bytes > limit_bytes()
    });
    if over {
        append_kept();
    }
}

fn limit_bytes() -> usize {
    usize::try_from(gucs::AUDIT_PENDING_LIMIT.get()).unwrap_or(0) * 1024
}

/// Appends every kept record to its chain: the chains in tenant order, each
/// chain's records in the order they were made. Called at pre-commit and
/// when kept records pass the limit. Returns whether it appended any.
fn append_kept() -> bool {
    append_kept_of(None)
}

/// [`append_kept`], for one chain's records only if `tenant` is given.
fn append_kept_of(tenant: Option<&uuid::Uuid>) -> bool {
    let of_chain = |k: &Rc<Kept>| tenant.is_none_or(|t| k.record.tenant_id == *t);
    let nothing = STATE.with(|s| {
        let mut s = s.borrow_mut();
        let nothing = !s.kept.iter().any(of_chain) || s.appending_in.is_some();
        if !nothing {
            // SAFETY: reads backend-local transaction state.
            s.appending_in = Some(unsafe { pg_sys::GetCurrentSubTransactionId() });
        }
        nothing
    });
    if nothing {
        return false;
    }
    with_active_snapshot(|| {
        crate::privilege::as_extension_owner(|| loop {
            let batch = STATE.with(|s| {
                let mut s = s.borrow_mut();
                let s = &mut *s;
                let (mut batch, others): (Vec<_>, Vec<_>) = s.kept.drain(..).partition(of_chain);
                s.kept = others;
                batch.sort_by_key(|k| k.record.tenant_id);
                let appending = s.appending_in.expect("set above");
                s.appended.extend(batch.iter().map(|k| (appending, Rc::clone(k))));
                batch
            });
            if batch.is_empty() {
                break;
            }
            for k in &batch {
                chain::append(&k.record.as_new_record(), &k.db_role, k.actor.as_deref(), k.logged_at);
            }
        })
    });
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let s = &mut *s;
        s.appending_in = None;
        s.appended.retain(|(by, k)| *by > k.subxact);
        s.bytes = s.kept.iter().map(|k| k.size).sum();
        if s.kept.is_empty() && s.appended.is_empty() && !s.context.is_null() {
            // SAFETY: no record refers to the context's values any more.
            unsafe { pg_sys::MemoryContextReset(s.context) };
        }
    });
    true
}

/// [`append_kept`] at pre-commit, where no record may be left behind: a
/// transaction whose records could not all be appended fails to commit.
/// Commit has already fired the deferred triggers; the appends may have
/// queued more (a deferrable constraint a DBA put on the audit log), which
/// are fired here, as are the records their changes make.
pub fn append_kept_for_commit() {
    while append_kept() {
        // SAFETY: outside any query, as at commit just before this callback.
        unsafe { pg_sys::AfterTriggerFireDeferred() };
    }
    let left = STATE.with(|s| {
        let s = s.borrow();
        s.kept.len() + usize::from(s.appending_in.is_some())
    });
    if left > 0 {
        raise(InternalError(format!("{left} audit records were not appended at commit")));
    }
}

/// Runs `f` with a snapshot pushed if none is active (at pre-commit there
/// is none, and SQL needs one), as deferred triggers are run at commit.
fn with_active_snapshot<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: a snapshot pushed here is popped below; an error pops it with
    // the aborted transaction.
    let pushed = unsafe {
        let none = !pg_sys::ActiveSnapshotSet();
        if none {
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        }
        none
    };
    let result = f();
    if pushed {
        // SAFETY: pops the snapshot pushed above.
        unsafe { pg_sys::PopActiveSnapshot() };
    }
    result
}

/// A rolled-back subtransaction takes the records made in it (subtransaction
/// ids grow: every record at or above `subxact` was made by it or a child).
/// The appends it made (all of them, if an error interrupted an append) are
/// undone with it: the records among them made before it are kept again,
/// ahead of the records kept since (made after those appends).
pub fn abort_subtransaction(subxact: pg_sys::SubTransactionId) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let s = &mut *s;
        if s.appending_in.is_some_and(|appending| subxact <= appending) {
            s.appending_in = None;
        }
        let (undone, standing): (Vec<_>, Vec<_>) = s.appended.drain(..).partition(|(by, _)| *by >= subxact);
        s.appended = standing;
        let mut kept: Vec<_> = undone.into_iter().map(|(_, k)| k).collect();
        kept.append(&mut s.kept);
        kept.retain(|k| k.subxact < subxact);
        s.kept = kept;
        s.bytes = s.kept.iter().map(|k| k.size).sum();
    });
}

/// A committed subtransaction merges into its parent: so do the appends it
/// made, and a record whose append now shares its change's fate is forgotten.
pub fn commit_subtransaction(subxact: pg_sys::SubTransactionId, parent: pg_sys::SubTransactionId) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        for (by, _) in s.appended.iter_mut().filter(|(by, _)| *by >= subxact) {
            *by = parent;
        }
        s.appended.retain(|(by, k)| *by > k.subxact);
    });
}

/// The transaction ended; its memory context goes with it.
pub fn forget_transaction() {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.kept.clear();
        s.bytes = 0;
        s.context = std::ptr::null_mut();
        s.appending_in = None;
        s.appended.clear();
    });
}
