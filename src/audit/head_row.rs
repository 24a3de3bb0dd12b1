//! A chain's row in `d5.audit_chain_heads`, read and written directly: an
//! index lookup and `simple_heap_update`, not SQL statements.
//!
//! Why: the audit trigger's own cost is mostly executor start-up and
//! teardown of tiny statements (`perf`, bench/RESULTS.md). Reading the head
//! with a SELECT and writing it with an UPDATE cost more than the record's
//! INSERT; this way a one-record transaction runs no statement at all (the
//! record goes in directly too, `log_row`).
//!
//! Why it is safe: every writer of a chain holds the chain's lock
//! (`chain::lock_chain_writers`) before it reads the row, so nobody else
//! changes the row meanwhile; reads use the newest snapshot, so they see what
//! the previous lock holder committed even from a REPEATABLE READ
//! transaction; writes go through `simple_heap_update`, which WAL-logs,
//! counts statistics and takes part in SSI like any UPDATE, and add index
//! entries when the update could not be HOT (what `CatalogTupleUpdate` does
//! for catalogs). The table has no triggers, rules or RLS on UPDATE.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::{FromDatum, IntoDatum};

use d5_core::audit::GENESIS_PREV_HASH;

use crate::error::{raise, InternalError};

/// Where a chain's head row is, and what it says.
#[derive(Clone, Copy, Debug)]
pub struct HeadRow {
    pub tid: pg_sys::ItemPointerData,
    pub seq: i64,
    pub hash: [u8; 32],
}

/// `d5.audit_chain_heads`, opened for the duration of one operation (a
/// chain's first record in a transaction reads and writes its row through
/// one opening). Its columns are (tenant_id, seq, hash), as sql/audit.sql
/// makes them.
pub struct HeadsTable {
    heap: pg_sys::Relation,
}

const SEQ_ATT: i32 = 2;
const HASH_ATT: i32 = 3;

impl HeadsTable {
    pub fn open() -> Self {
        // SAFETY: syscache lookups by name; the relation is opened with the
        // lock an UPDATE takes and closed (lock kept) by Drop.
        unsafe {
            let nsp = pg_sys::get_namespace_oid(c"d5".as_ptr(), false);
            let relid = pg_sys::get_relname_relid(c"audit_chain_heads".as_ptr(), nsp);
            if relid == pg_sys::InvalidOid {
                raise(InternalError("d5.audit_chain_heads is missing".into()));
            }
            let table = HeadsTable { heap: pg_sys::table_open(relid, pg_sys::RowExclusiveLock as i32) };
            let desc = (*table.heap).rd_att;
            let at = |name: &CStr| pg_sys::SPI_fnumber(desc, name.as_ptr());
            if (*desc).natts != 3 || at(c"tenant_id") != 1 || at(c"seq") != SEQ_ATT || at(c"hash") != HASH_ATT {
                raise(InternalError("d5.audit_chain_heads does not have the columns (tenant_id, seq, hash)".into()));
            }
            table
        }
    }
}

impl Drop for HeadsTable {
    fn drop(&mut self) {
        // SAFETY: opened in `open`; the lock stays until the transaction ends.
        unsafe { pg_sys::table_close(self.heap, pg_sys::NoLock as i32) };
    }
}

thread_local! {
    /// Where each chain's head row starts in the heap: the TID its primary
    /// key entry points at, the root of the row's HOT chain. Every update
    /// of a head row is HOT while its page has room, so the root stays put
    /// and [`HeadsTable::read`] goes straight to the heap page instead of through the
    /// index. Only a hint: what it finds is checked (tenant and visibility)
    /// and the index is asked when it finds nothing.
    static ROOTS: RefCell<HashMap<uuid::Uuid, pg_sys::ItemPointerData>> = RefCell::new(HashMap::new());
}

/// Chains remembered per backend before the hints start over.
const MAX_ROOTS: usize = 65_536;

fn remember_root(tenant: &uuid::Uuid, root: pg_sys::ItemPointerData) {
    ROOTS.with_borrow_mut(|roots| {
        if roots.len() >= MAX_ROOTS {
            roots.clear();
        }
        roots.insert(*tenant, root);
    });
}

impl HeadsTable {
    /// The chain's head row as the newest snapshot sees it, or None for a
    /// chain without one. The caller holds the chain's lock.
    pub fn read(&self, tenant: &uuid::Uuid) -> Option<HeadRow> {
        // SAFETY: the snapshot is registered for this block and unregistered
        // before it ends (or by the abort of the transaction).
        unsafe {
            let snapshot = pg_sys::RegisterSnapshot(pg_sys::GetLatestSnapshot());
            let cached = ROOTS.with_borrow(|roots| roots.get(tenant).copied());
            let row = match cached.and_then(|root| self.fetch_from_root(root, snapshot, tenant)) {
                Some(row) => Some(row),
                None => self.look_up(snapshot, tenant),
            };
            pg_sys::UnregisterSnapshot(snapshot);
            row
        }
    }

    /// Points the head row at `tid` to (`seq`, `hash`); returns the new
    /// row's location. The caller holds the chain's lock, and `tid` is the
    /// row's newest version (from [`HeadsTable::read`] or an earlier write).
    pub fn write(&self, tenant: &uuid::Uuid, tid: pg_sys::ItemPointerData, seq: i64, hash: &[u8; 32]) -> pg_sys::ItemPointerData {
        let heap = self.heap;
        let hash_datum = hash.as_slice().into_datum().unwrap_or(pg_sys::Datum::from(0));
        let mut values = [pg_sys::Datum::from(tenant.as_bytes().as_ptr()), seq.into(), hash_datum];
        let mut nulls = [false; 3];
        // SAFETY: the tuple matches the table's three columns (checked by
        // `open`); simple_heap_update raises an error rather than update
        // anything but the visible newest version at `tid`.
        unsafe {
            let tuple = pg_sys::heap_form_tuple((*heap).rd_att, values.as_mut_ptr(), nulls.as_mut_ptr());
            let mut old = tid;
            if update(heap, &mut old, tuple) {
                insert_index_entries(heap, tuple);
                // Not HOT: the new version is the root of a new chain.
                remember_root(tenant, (*tuple).t_self);
            }
            let new_tid = (*tuple).t_self;
            pg_sys::heap_freetuple(tuple);
            // Later commands of this transaction (a second write at
            // pre-commit, a verifier) must see this version.
            pg_sys::CommandCounterIncrement();
            new_tid
        }
    }

    /// The version of the row whose HOT chain starts at `root` that
    /// `snapshot` sees, if it is `tenant`'s head row; what an index scan
    /// does once the index has given it the TID.
    unsafe fn fetch_from_root(&self, root: pg_sys::ItemPointerData, snapshot: pg_sys::Snapshot, tenant: &uuid::Uuid) -> Option<HeadRow> {
        // SAFETY: the block is checked to exist before it is read (VACUUM
        // may have truncated the table since the root was seen); the page is
        // pinned and share-locked while the chain is followed and the row
        // copied out, then released. heap_hot_search_buffer checks the
        // offset and follows only a genuine HOT chain from the root.
        unsafe {
            let heap = self.heap;
            let (block, _) = pgrx::itemptr::item_pointer_get_both(root);
            if block >= pg_sys::RelationGetNumberOfBlocksInFork(heap, pg_sys::ForkNumber::MAIN_FORKNUM) {
                return None;
            }
            let buffer = pg_sys::ReadBuffer(heap, block);
            // As an index scan does on each heap page it visits: without it
            // nothing would prune the head rows' dead versions.
            pg_sys::heap_page_prune_opt(heap, buffer);
            pg_sys::LockBuffer(buffer, pg_sys::BUFFER_LOCK_SHARE as i32);
            let mut tid = root;
            let mut tuple: pg_sys::HeapTupleData = std::mem::zeroed();
            let mut all_dead = false;
            let found = pg_sys::heap_hot_search_buffer(&mut tid, heap, buffer, snapshot, &mut tuple, &mut all_dead, true);
            let row = if found { self.row_of(&mut tuple, tid, tenant) } else { None };
            pg_sys::UnlockReleaseBuffer(buffer);
            row
        }
    }

    /// The head row of `tenant` through the primary key index.
    unsafe fn look_up(&self, snapshot: pg_sys::Snapshot, tenant: &uuid::Uuid) -> Option<HeadRow> {
        // SAFETY: the index and scan live within this block; the slot is
        // dropped before it ends (or by the abort of the transaction).
        unsafe {
            let heap = self.heap;
            let index_oid = pg_sys::RelationGetPrimaryKeyIndex(heap);
            if index_oid == pg_sys::InvalidOid {
                raise(InternalError("d5.audit_chain_heads has no primary key".into()));
            }
            let index = pg_sys::index_open(index_oid, pg_sys::RowExclusiveLock as i32);
            let mut key: pg_sys::ScanKeyData = std::mem::zeroed();
            pg_sys::ScanKeyInit(
                &mut key,
                1,
                pg_sys::BTEqualStrategyNumber as u16,
                pg_sys::Oid::from(pg_sys::F_UUID_EQ),
                pg_sys::Datum::from(tenant.as_bytes().as_ptr()),
            );
            let scan = pg_sys::index_beginscan(heap, index, snapshot, 1, 0);
            pg_sys::index_rescan(scan, &mut key, 1, std::ptr::null_mut(), 0);
            let slot = pg_sys::table_slot_create(heap, std::ptr::null_mut());
            // index_getnext_slot, keeping the TID the index entry holds (the
            // fetch moves it along the HOT chain to the visible version).
            let mut row = None;
            loop {
                let entry = pg_sys::index_getnext_tid(scan, pg_sys::ScanDirection::ForwardScanDirection);
                if entry.is_null() {
                    break;
                }
                let root = *entry;
                if pg_sys::index_fetch_heap(scan, slot) {
                    remember_root(tenant, root);
                    let tuple = pg_sys::ExecFetchSlotHeapTuple(slot, false, std::ptr::null_mut());
                    row = self.row_of(&mut *tuple, (*slot).tts_tid, tenant);
                    break;
                }
            }
            pg_sys::ExecDropSingleTupleTableSlot(slot);
            pg_sys::index_endscan(scan);
            pg_sys::index_close(index, pg_sys::NoLock as i32);
            row
        }
    }

    /// The head row in `tuple` (at `tid`), if it is `tenant`'s.
    unsafe fn row_of(&self, tuple: &mut pg_sys::HeapTupleData, tid: pg_sys::ItemPointerData, tenant: &uuid::Uuid) -> Option<HeadRow> {
        // SAFETY: `tuple` is a valid tuple of this table (checked to have
        // the three columns); values are copied out.
        unsafe {
            let desc = (*self.heap).rd_att;
            let mut isnull = false;
            let id = pg_sys::heap_getattr(tuple, 1, desc, &mut isnull);
            if isnull || std::slice::from_raw_parts(id.cast_mut_ptr::<u8>(), 16) != tenant.as_bytes() {
                return None;
            }
            let seq = pg_sys::heap_getattr(tuple, SEQ_ATT, desc, &mut isnull);
            let seq = if isnull { 0 } else { seq.value() as i64 };
            let hash = pg_sys::heap_getattr(tuple, HASH_ATT, desc, &mut isnull);
            let hash = if isnull { None } else { Vec::<u8>::from_datum(hash, false) };
            Some(HeadRow {
                tid,
                seq,
                hash: hash.as_deref().and_then(|h| h.try_into().ok()).unwrap_or(GENESIS_PREV_HASH),
            })
        }
    }
}

/// `simple_heap_update`; true when the new version needs index entries
/// (the update was not HOT).
#[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
unsafe fn update(heap: pg_sys::Relation, old: &mut pg_sys::ItemPointerData, tuple: pg_sys::HeapTuple) -> bool {
    // SAFETY: per the caller.
    unsafe {
        pg_sys::simple_heap_update(heap, old, tuple);
        (*(*tuple).t_data).t_infomask2 & pg_sys::HEAP_ONLY_TUPLE as u16 == 0
    }
}

#[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
unsafe fn update(heap: pg_sys::Relation, old: &mut pg_sys::ItemPointerData, tuple: pg_sys::HeapTuple) -> bool {
    let mut update_indexes = pg_sys::TU_UpdateIndexes::TU_None;
    // SAFETY: per the caller.
    unsafe { pg_sys::simple_heap_update(heap, old, tuple, &mut update_indexes) };
    update_indexes != pg_sys::TU_UpdateIndexes::TU_None
}

/// Adds the new version to every index of the table, as `CatalogIndexInsert`
/// does: plain column indexes only (the extension makes just the primary key).
unsafe fn insert_index_entries(heap: pg_sys::Relation, tuple: pg_sys::HeapTuple) {
    // SAFETY: per the caller; each index is opened and closed here, the slot
    // dropped before returning.
    unsafe {
        let slot = pg_sys::MakeSingleTupleTableSlot((*heap).rd_att, &pg_sys::TTSOpsHeapTuple);
        pg_sys::ExecStoreHeapTuple(tuple, slot, false);
        let indexes = pg_sys::RelationGetIndexList(heap);
        for i in 0..pg_sys::list_length(indexes) {
            let index = pg_sys::index_open(pg_sys::list_nth_oid(indexes, i), pg_sys::RowExclusiveLock as i32);
            let info = pg_sys::BuildIndexInfo(index);
            if !(*info).ii_Expressions.is_null() || !(*info).ii_Predicate.is_null() {
                raise(InternalError("d5.audit_chain_heads has an expression or partial index; drop it".into()));
            }
            let mut values = [pg_sys::Datum::from(0); pg_sys::INDEX_MAX_KEYS as usize];
            let mut isnull = [false; pg_sys::INDEX_MAX_KEYS as usize];
            pg_sys::FormIndexDatum(info, slot, std::ptr::null_mut(), values.as_mut_ptr(), isnull.as_mut_ptr());
            let check = if (*info).ii_Unique {
                pg_sys::IndexUniqueCheck::UNIQUE_CHECK_YES
            } else {
                pg_sys::IndexUniqueCheck::UNIQUE_CHECK_NO
            };
            index_insert(index, &mut values, &mut isnull, &mut (*tuple).t_self, heap, check, info);
            pg_sys::index_close(index, pg_sys::NoLock as i32);
        }
        pg_sys::ExecDropSingleTupleTableSlot(slot);
    }
}

unsafe fn index_insert(
    index: pg_sys::Relation,
    values: &mut [pg_sys::Datum],
    isnull: &mut [bool],
    tid: &mut pg_sys::ItemPointerData,
    heap: pg_sys::Relation,
    check: pg_sys::IndexUniqueCheck::Type,
    info: *mut pg_sys::IndexInfo,
) {
    // SAFETY: per the caller. PostgreSQL 14 added `indexUnchanged`.
    unsafe {
        #[cfg(not(feature = "pg13"))]
        pg_sys::index_insert(index, values.as_mut_ptr(), isnull.as_mut_ptr(), tid, heap, check, false, info);
        #[cfg(feature = "pg13")]
        pg_sys::index_insert(index, values.as_mut_ptr(), isnull.as_mut_ptr(), tid, heap, check, info);
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    use super::{remember_root, HeadsTable, ROOTS};

    /// A tenant whose chain and head row exist within this test's transaction.
    fn new_chain() -> uuid::Uuid {
        Spi::run("SET LOCAL d5.audit_pending_limit = 0").unwrap();
        let t = Spi::get_one::<pgrx::Uuid>("SELECT d5.create_tenant('t-' || gen_random_uuid(), 'pro')").unwrap().unwrap();
        uuid::Uuid::from_bytes(*t.as_bytes())
    }

    fn tid(block: u32, offset: u16) -> pg_sys::ItemPointerData {
        let mut tid = pg_sys::ItemPointerData::default();
        pgrx::itemptr::item_pointer_set_all(&mut tid, block, offset);
        tid
    }

    #[pg_test]
    fn reads_the_head_from_its_root_through_hot_updates() {
        let a = new_chain();
        // Its head row has been updated since it was inserted, so the index
        // entry and the visible version differ: the index lookup must
        // remember the former.
        ROOTS.with_borrow_mut(|r| r.clear());
        let table = HeadsTable::open();
        let first = table.read(&a).expect("the new tenant's chain has a head row");
        let root = ROOTS.with_borrow(|r| r.get(&a).copied()).expect("the index lookup remembered the root");
        table.write(&a, first.tid, first.seq + 1, &[9; 32]);
        table.write(&a, table.read(&a).unwrap().tid, first.seq + 2, &[8; 32]);
        // SAFETY: a registered snapshot, unregistered below.
        let from_root = unsafe {
            let snapshot = pg_sys::RegisterSnapshot(pg_sys::GetLatestSnapshot());
            let row = table.fetch_from_root(root, snapshot, &a);
            pg_sys::UnregisterSnapshot(snapshot);
            row
        };
        let row = from_root.expect("the HOT chain from the root leads to the newest version");
        assert_eq!((row.seq, row.hash), (first.seq + 2, [8; 32]));
        assert_eq!(table.read(&a).map(|r| (r.seq, r.hash)), Some((first.seq + 2, [8; 32])));
    }

    #[pg_test]
    fn a_wrong_root_is_never_believed() {
        let (a, b) = (new_chain(), new_chain());
        let table = HeadsTable::open();
        let head_a = table.read(&a).unwrap();
        let head_b = table.read(&b).unwrap();
        let root_b = ROOTS.with_borrow(|r| r.get(&b).copied()).unwrap();
        for wrong in [root_b, head_b.tid, tid(0, 999), tid(0, 0), tid(100_000, 1)] {
            remember_root(&a, wrong);
            let got = table.read(&a).expect("found through the index");
            assert_eq!((got.seq, got.hash), (head_a.seq, head_a.hash), "hint {wrong:?}");
            assert_eq!(format!("{:?}", got.tid), format!("{:?}", head_a.tid), "hint {wrong:?}");
        }
    }
}
