//! Appending one record to a tenant's chain.
//!
//! Order is kept linear by the chain's row in `d5.audit_chain_heads`: the
//! first record a transaction appends to a chain locks that row (FOR UPDATE)
//! until the transaction ends, because a seq handed to a transaction that
//! later rolls back would leave a gap. Writers of different tenants lock
//! different rows and never wait for each other. Within the transaction the
//! head is kept in memory (`heads`): written with the first record, and at
//! pre-commit if more followed.

use std::cell::RefCell;

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::Spi;

use d5_core::audit::{record_hash, AuditRecord, GENESIS_PREV_HASH};

use super::heads;
use crate::error::spi;

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

struct Plans {
    lock_head: OwnedPreparedStatement,
    new_head: OwnedPreparedStatement,
    insert: OwnedPreparedStatement,
    insert_and_store_head: OwnedPreparedStatement,
    store_head: OwnedPreparedStatement,
}

thread_local! {
    static PLANS: RefCell<Option<Plans>> = const { RefCell::new(None) };
}

const LOCK_HEAD: &str = "SELECT seq, hash FROM d5.audit_chain_heads
     WHERE tenant_id OPERATOR(pg_catalog.=) $1 FOR UPDATE";

/// A chain's first record: its head row starts at seq 0 (no record yet).
const NEW_HEAD: &str = "INSERT INTO d5.audit_chain_heads (tenant_id, seq, hash) VALUES ($1, 0, $2)
     ON CONFLICT (tenant_id) DO NOTHING";

const INSERT: &str = "INSERT INTO d5.audit_log (tenant_id, seq, prev_hash, hash, logged_at, txid, db_role, actor,
                                 table_name, operation, row_pk, old_row, new_row, changed_cols,
                                 row_count, rows_digest, detail)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";

/// The first record of a chain in a transaction also writes the head: a
/// one-record transaction (the common case) then needs nothing at commit.
const INSERT_AND_STORE_HEAD: &str = "WITH appended AS (
       INSERT INTO d5.audit_log (tenant_id, seq, prev_hash, hash, logged_at, txid, db_role, actor,
                                 table_name, operation, row_pk, old_row, new_row, changed_cols,
                                 row_count, rows_digest, detail)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17))
     UPDATE d5.audit_chain_heads SET seq = $2, hash = $4 WHERE tenant_id OPERATOR(pg_catalog.=) $1";

const STORE_HEAD: &str = "UPDATE d5.audit_chain_heads SET seq = $2, hash = $3
     WHERE tenant_id OPERATOR(pg_catalog.=) $1";

fn prepare() -> Plans {
    use pg_sys::{BYTEAOID, INT8OID, JSONBOID, TEXTOID, TIMESTAMPTZOID, UUIDOID};
    Spi::connect(|client| {
        let lock_head = spi(client.prepare_mut(LOCK_HEAD, &[UUIDOID.into()])).keep();
        let new_head = spi(client.prepare_mut(NEW_HEAD, &[UUIDOID.into(), BYTEAOID.into()])).keep();
        let store_head =
            spi(client.prepare_mut(STORE_HEAD, &[UUIDOID.into(), INT8OID.into(), BYTEAOID.into()])).keep();
        let types = [
            UUIDOID, INT8OID, BYTEAOID, BYTEAOID, TIMESTAMPTZOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
            JSONBOID, JSONBOID, JSONBOID, JSONBOID, INT8OID, TEXTOID, JSONBOID,
        ];
        let types: Vec<_> = types.into_iter().map(Into::into).collect();
        let insert = spi(client.prepare_mut(INSERT, &types)).keep();
        let insert_and_store_head = spi(client.prepare_mut(INSERT_AND_STORE_HEAD, &types)).keep();
        Plans { lock_head, new_head, insert, insert_and_store_head, store_head }
    })
}

/// Runs `f` with the chain's statements, planned (and re-planned) for
/// index access: `d5.audit_chain_heads` is small, so the planner would
/// otherwise scan all of it, every version of every chain's head, to find
/// one row. Callers run as the extension owner, inside its GUC level.
fn with_plans<R>(f: impl FnOnce(&Plans) -> R) -> R {
    crate::privilege::set_in_open_level(c"enable_seqscan", c"off");
    PLANS.with(|cell| {
        let mut plans = cell.borrow_mut();
        f(plans.get_or_insert_with(prepare))
    })
}

/// Locks `tenant`'s chain for this transaction and returns its end.
fn lock_chain(plans: &Plans, tenant: pgrx::Uuid) -> (i64, [u8; 32]) {
    let locked = |plans: &Plans| {
        Spi::connect_mut(|client| {
            let table = spi(client.update(&plans.lock_head, Some(1), &[tenant.into()]));
            if table.is_empty() {
                return None;
            }
            let (seq, hash) = spi(table.first().get_two::<i64, Vec<u8>>());
            let hash: [u8; 32] = hash.as_deref().and_then(|h| h.try_into().ok()).unwrap_or(GENESIS_PREV_HASH);
            Some((seq.unwrap_or(0), hash))
        })
    };
    if let Some(head) = locked(plans) {
        return head;
    }
    // A new chain: make its row (a concurrent first writer may win the
    // insert; then we wait for its lock like any other writer).
    Spi::connect_mut(|client| {
        spi(client.update(&plans.new_head, None, &[tenant.into(), GENESIS_PREV_HASH.to_vec().into()]));
    });
    locked(plans).unwrap_or((0, GENESIS_PREV_HASH))
}

/// Writes the heads this transaction moved (called at pre-commit).
pub fn store_heads(dirty: &[(uuid::Uuid, i64, [u8; 32])]) {
    crate::privilege::as_extension_owner(|| {
        with_plans(|plans| {
            Spi::connect_mut(|client| {
                for (tenant, seq, hash) in dirty {
                    let tenant = pgrx::Uuid::from_bytes(*tenant.as_bytes());
                    let args = [tenant.into(), (*seq).into(), hash.to_vec().into()];
                    spi(client.update(&plans.store_head, None, &args));
                }
            })
        })
    });
}

fn jsonb_arg(j: Option<Jsonb<'_>>) -> DatumWithOid<'static> {
    // SAFETY: the datum is a valid jsonb built by the caller in the current
    // memory context, which outlives the SPI call it is passed to.
    unsafe {
        match j {
            Some(j) => DatumWithOid::new(j.datum, pg_sys::JSONBOID),
            None => DatumWithOid::null_oid(pg_sys::JSONBOID),
        }
    }
}

/// Appends `rec` to its chain as the current user (the caller switches to the
/// extension owner first). Returns the seq it got.
pub fn append(rec: &NewRecord<'_>, db_role: &str, actor: Option<&str>) -> i64 {
    // SAFETY: reads backend-local transaction state; assigning the top-level
    // xid is what any write does anyway.
    let (logged_at, txid) = unsafe {
        (
            pg_sys::GetCurrentStatementStartTimestamp(),
            pg_sys::GetTopFullTransactionId().value as i64,
        )
    };
    let (seq, hash, head_written) = with_plans(|plans| {
        let tenant = pgrx::Uuid::from_bytes(*rec.tenant_id.as_bytes());
        let (last_seq, prev, first_in_transaction) = match heads::get(&rec.tenant_id) {
            Some(head) => (head.seq, head.hash, false),
            None => {
                let (seq, hash) = lock_chain(plans, tenant);
                heads::locked(rec.tenant_id, seq, hash);
                (seq, hash, true)
            }
        };
        let seq = last_seq + 1;
        let record = AuditRecord {
            tenant_id: rec.tenant_id,
            seq,
            prev_hash: prev,
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
        // SAFETY: a TimestampTz is an int8 datum.
        let logged_at_arg = unsafe { DatumWithOid::new(logged_at, pg_sys::TIMESTAMPTZOID) };
        let args = [
            tenant.into(),
            seq.into(),
            prev.to_vec().into(),
            hash.to_vec().into(),
            logged_at_arg,
            txid.into(),
            db_role.into(),
            actor.into(),
            rec.table_name.into(),
            rec.operation.into(),
            jsonb_arg(rec.row_pk),
            jsonb_arg(rec.old_row),
            jsonb_arg(rec.new_row),
            jsonb_arg(rec.changed_cols),
            rec.row_count.into(),
            rec.rows_digest.into(),
            jsonb_arg(rec.detail),
        ];
        let plan = if first_in_transaction { &plans.insert_and_store_head } else { &plans.insert };
        Spi::connect_mut(|client| {
            spi(client.update(plan, None, &args));
        });
        (seq, hash, first_in_transaction)
    });
    if heads::advance(rec.tenant_id, seq, hash, head_written) {
        store_heads(&[(rec.tenant_id, seq, hash)]);
    }
    seq
}
