//! Appending one record to a tenant's chain.
//!
//! Order is kept linear by a lock per chain: the first record a transaction
//! appends to a chain takes that chain's lock until the transaction ends,
//! because a seq handed to a transaction that later rolls back would leave a
//! gap. Row records are normally appended at pre-commit (`pending`), so the
//! lock is held through the commit only. It is a heavyweight lock in the
//! advisory lock space (see [`lock_chain_writers`]), not a row lock on the
//! chain's head row: taking
//! it writes no WAL and dirties no page, which a `SELECT … FOR UPDATE` of
//! the head row did on every transaction. Writers of different tenants take
//! different locks and never wait for each other. The head row is then read
//! and written directly (`head_row`), under the newest snapshot, so
//! REPEATABLE READ and SERIALIZABLE writers chain onto what committed after
//! their snapshot instead of failing. Within the transaction the head is
//! kept in memory (`heads`): written with the first record, and at
//! pre-commit if more followed. The record itself goes straight into its
//! partition (`log_row`), or through an INSERT statement where only the
//! statement does everything a DBA's additions to the table ask for.

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys;
use pgrx::IntoDatum;

use d5_core::audit::{record_hash, AuditRecord, GENESIS_PREV_HASH};

use super::head_row::{HeadRow, HeadsTable};
use super::log_row::{self, RecordValues};
use super::heads;
use crate::error::{raise, InternalError};
use crate::prepared;

/// Postgres timestamps count from 2000-01-01; the hash uses the Unix epoch.
pub const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// A record to append: everything except seq, prev_hash and hash, which the
/// chain assigns. jsonb values come twice: the datum to store and its exact
/// `jsonb_out` text to hash.
pub struct NewRecord<'a> {
    pub tenant_id: uuid::Uuid,
    pub table_name: Option<&'a str>,
    pub operation: &'a str,
    pub row_pk: Option<Jsonb<'a>>,
    pub old_row: Option<Jsonb<'a>>,
    pub new_row: Option<Jsonb<'a>>,
    pub changed_cols: Option<Jsonb<'a>>,
    pub row_count: Option<i64>,
    pub rows_digest: Option<&'a str>,
    pub detail: Option<Jsonb<'a>>,
}

#[derive(Clone, Copy)]
pub struct Jsonb<'a> {
    pub datum: pg_sys::Datum,
    pub text: &'a str,
}

// Kept plans of the two statements below (`crate::prepared`); each has its
// own cell, so an INSERT whose triggers append again does not borrow it twice.
thread_local! {
    static NEW_HEAD_PLAN: prepared::Kept = const { prepared::Kept::new() };
    static INSERT_PLAN: prepared::Kept = const { prepared::Kept::new() };
}

/// Class of the chain locks in the advisory lock space (`objsubid` in
/// `pg_locks`). `pg_advisory_lock` and friends use classes 1 and 2, so no
/// SQL caller can take, hold or wait on a chain's lock.
pub const CHAIN_LOCK_CLASS: u16 = 213;

/// A chain's first record: its head row starts at seq 0 (no record yet).
const NEW_HEAD: &str = "INSERT INTO d5.audit_chain_heads (tenant_id, seq, hash) VALUES ($1, 0, $2)
     ON CONFLICT (tenant_id) DO NOTHING";

const INSERT: &str = "INSERT INTO d5.audit_log (tenant_id, seq, prev_hash, hash, logged_at, txid, db_role, actor,
                                 table_name, operation, row_pk, old_row, new_row, changed_cols,
                                 row_count, rows_digest, detail)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";

/// Takes `tenant`'s chain lock for the rest of the transaction (a rolled-back
/// savepoint that took it releases it). Transaction-scoped, like
/// `pg_advisory_xact_lock`; shown in `pg_locks` as an advisory lock with
/// `objsubid` [`CHAIN_LOCK_CLASS`] and the uuid folded into `classid`/`objid`.
/// Two tenants folding to the same key would only wait for each other.
fn lock_chain_writers(tenant: &uuid::Uuid) {
    let b = tenant.as_bytes();
    let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let tag = pg_sys::LOCKTAG {
        // SAFETY: reads the backend's database id, set once at connection.
        locktag_field1: unsafe { pg_sys::MyDatabaseId }.to_u32(),
        locktag_field2: word(0) ^ word(8),
        locktag_field3: word(4) ^ word(12),
        locktag_field4: CHAIN_LOCK_CLASS,
        locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
        locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
    };
    // SAFETY: a fully built tag; waits (cancellable, under lock_timeout and
    // deadlock detection) or errors, never returns without the lock.
    unsafe { pg_sys::LockAcquire(&tag, pg_sys::ExclusiveLock as i32, false, false) };
}

/// Locks `tenant`'s chain for this transaction and returns its head row.
fn lock_chain(table: &HeadsTable, tenant: &uuid::Uuid) -> HeadRow {
    lock_chain_writers(tenant);
    if let Some(row) = table.read(tenant) {
        return row;
    }
    // A new chain: make its row (under the lock nobody else can; ON
    // CONFLICT only guards against a row restored meanwhile).
    let tenant_arg = pgrx::Uuid::from_bytes(*tenant.as_bytes());
    let args = [tenant_arg.into(), GENESIS_PREV_HASH.to_vec().into()];
    prepared::run(&NEW_HEAD_PLAN, NEW_HEAD, &[pg_sys::UUIDOID, pg_sys::BYTEAOID], &args);
    // SAFETY: makes the row just inserted visible to the next snapshot.
    unsafe { pg_sys::CommandCounterIncrement() };
    table.read(tenant).unwrap_or_else(|| raise(InternalError("the new chain's head row is missing".into())))
}

/// Writes a head this transaction moved and did not write yet (called at
/// pre-commit, and for appends made while committing).
pub fn store_head(tenant: &uuid::Uuid, head: &heads::Head) {
    let tid = HeadsTable::open().write(tenant, head.row.tid, head.row.seq, &head.row.hash);
    heads::stored(tenant, tid);
}

/// Appends `rec`, made by `db_role` and `actor` in the statement that
/// started at `logged_at`, to its chain as the current user (the caller
/// switches to the extension owner first). Returns the seq it got.
pub fn append(rec: &NewRecord<'_>, db_role: &str, actor: Option<&str>, logged_at: pg_sys::TimestampTz) -> i64 {
    // SAFETY: reads backend-local transaction state; assigning the top-level
    // xid is what any write does anyway.
    let txid = unsafe { pg_sys::GetTopFullTransactionId().value as i64 };
    // Open only for the chain's first record in the transaction.
    let (head, heads_table) = match heads::get(&rec.tenant_id) {
        Some(head) => (head.row, None),
        None => {
            let table = HeadsTable::open();
            let row = lock_chain(&table, &rec.tenant_id);
            heads::locked(rec.tenant_id, row);
            (row, Some(table))
        }
    };
    let seq = head.seq + 1;
    let record = AuditRecord {
        tenant_id: rec.tenant_id,
        seq,
        prev_hash: head.hash,
        logged_at_micros: logged_at + PG_EPOCH_OFFSET_MICROS,
        txid,
        db_role,
        actor,
        table_name: rec.table_name,
        operation: rec.operation,
        row_pk: rec.row_pk.map(|j| j.text),
        old_row: rec.old_row.map(|j| j.text),
        new_row: rec.new_row.map(|j| j.text),
        changed_cols: rec.changed_cols.map(|j| j.text),
        row_count: rec.row_count,
        rows_digest: rec.rows_digest,
        detail: rec.detail.map(|j| j.text),
    };
    let hash = record_hash(&record);
    let text = |t: &str| t.into_datum();
    let jsonb = |j: Option<Jsonb<'_>>| j.map(|j| j.datum);
    let values: RecordValues = [
        Some(pg_sys::Datum::from(rec.tenant_id.as_bytes().as_ptr())),
        Some(seq.into()),
        head.hash.as_slice().into_datum(),
        hash.as_slice().into_datum(),
        Some(logged_at.into()),
        Some(txid.into()),
        text(db_role),
        actor.and_then(text),
        rec.table_name.and_then(text),
        text(rec.operation),
        jsonb(rec.row_pk),
        jsonb(rec.old_row),
        jsonb(rec.new_row),
        jsonb(rec.changed_cols),
        rec.row_count.map(pg_sys::Datum::from),
        rec.rows_digest.and_then(text),
        jsonb(rec.detail),
    ];
    if !log_row::insert(&values, logged_at) {
        let args = values.iter().zip(log_row::COLUMNS).map(|(value, (_, type_oid))| {
            // SAFETY: each datum is of its column's type, built above in
            // the current memory context, which outlives the SPI call.
            unsafe {
                match value {
                    Some(datum) => DatumWithOid::new(*datum, type_oid),
                    None => DatumWithOid::null_oid(type_oid),
                }
            }
        });
        let args: Vec<DatumWithOid<'_>> = args.collect();
        let types = log_row::COLUMNS.map(|(_, type_oid)| type_oid);
        prepared::run(&INSERT_PLAN, INSERT, &types, &args);
    }
    // The first record of a chain in a transaction also writes the head:
    // a one-record transaction (the common case) then needs nothing at
    // commit. Later ones keep it in memory until pre-commit.
    let written = heads_table.map(|table| table.write(&rec.tenant_id, head.tid, seq, &hash));
    if heads::advance(rec.tenant_id, seq, hash, written) {
        if let Some(head) = heads::get(&rec.tenant_id) {
            store_head(&rec.tenant_id, &head);
        }
    }
    seq
}
