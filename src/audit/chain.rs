//! Appending one record to a tenant's chain.
//!
//! Order is kept linear by the chain's row in `d5.audit_chain_heads`: the
//! first statement below takes that row's lock (INSERT … ON CONFLICT DO
//! UPDATE) and holds it until the writing transaction ends, because a seq
//! handed to a transaction that later rolls back would leave a gap. Writers of
//! different tenants lock different rows and never wait for each other.

use std::cell::RefCell;

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::Spi;

use d5_core::audit::{record_hash, AuditRecord, GENESIS_PREV_HASH};

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
    claim_seq: OwnedPreparedStatement,
    insert: OwnedPreparedStatement,
}

thread_local! {
    static PLANS: RefCell<Option<Plans>> = const { RefCell::new(None) };
}

const CLAIM_SEQ: &str = "INSERT INTO d5.audit_chain_heads AS h (tenant_id, seq, hash)
     VALUES ($1, 1, $2)
     ON CONFLICT (tenant_id) DO UPDATE SET seq = h.seq OPERATOR(pg_catalog.+) 1
     RETURNING seq, hash";

const INSERT: &str = "WITH appended AS (
       INSERT INTO d5.audit_log (tenant_id, seq, prev_hash, hash, logged_at, txid, db_role, actor,
                                 table_name, operation, row_pk, old_row, new_row, changed_cols,
                                 row_count, rows_digest, detail)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17))
     UPDATE d5.audit_chain_heads SET hash = $4 WHERE tenant_id OPERATOR(pg_catalog.=) $1";

fn prepare() -> Plans {
    use pg_sys::{BYTEAOID, INT8OID, JSONBOID, TEXTOID, TIMESTAMPTZOID, UUIDOID};
    Spi::connect(|client| {
        let claim = spi(client.prepare_mut(CLAIM_SEQ, &[UUIDOID.into(), BYTEAOID.into()])).keep();
        let types = [
            UUIDOID, INT8OID, BYTEAOID, BYTEAOID, TIMESTAMPTZOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
            JSONBOID, JSONBOID, JSONBOID, JSONBOID, INT8OID, TEXTOID, JSONBOID,
        ];
        let types: Vec<_> = types.into_iter().map(Into::into).collect();
        let insert = spi(client.prepare_mut(INSERT, &types)).keep();
        Plans { claim_seq: claim, insert }
    })
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
    PLANS.with(|cell| {
        let mut plans = cell.borrow_mut();
        let plans = plans.get_or_insert_with(prepare);
        let tenant = pgrx::Uuid::from_bytes(*rec.tenant_id.as_bytes());
        let (seq, prev_hash) = Spi::connect_mut(|client| {
            let table = spi(client.update(
                &plans.claim_seq,
                Some(1),
                &[tenant.into(), GENESIS_PREV_HASH.to_vec().into()],
            ));
            let row = spi(table.first().get_two::<i64, Vec<u8>>());
            (row.0.unwrap_or(1), row.1.unwrap_or_default())
        });
        let prev: [u8; 32] = prev_hash.as_slice().try_into().unwrap_or(GENESIS_PREV_HASH);
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
        Spi::connect_mut(|client| {
            spi(client.update(&plans.insert, None, &args));
        });
        seq
    })
}
