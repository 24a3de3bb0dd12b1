//! Streams `d5.audit_log` records to a verifier in constant memory.
//!
//! Raw SPI rather than pgrx's row API: each fetched batch is freed before the
//! next (pgrx keeps every batch until the SPI connection closes, 3 GB for a
//! million records), and text columns are read in place instead of copied.
//! Rows are read as the caller, so RLS decides which chains it sees.

use pgrx::pg_sys;
use pgrx::Spi;

use d5_core::audit::{stored_text, AuditRecord};

use super::chain::PG_EPOCH_OFFSET_MICROS;
use crate::error::{raise, InternalError};

const COLUMNS: &str = "SELECT tenant_id, seq, prev_hash, hash, logged_at, txid, db_role, actor, table_name,
        operation, row_pk::text, old_row::text, new_row::text, changed_cols::text,
        row_count, rows_digest, detail::text
   FROM d5.audit_log";

/// Every chain, in whatever order the table is stored.
pub const PHYSICAL_ORDER: &str = "";
/// One chain (`$1`), by seq.
pub const ONE_CHAIN_IN_SEQ_ORDER: &str = " WHERE tenant_id OPERATOR(pg_catalog.=) $1 ORDER BY seq";

const BATCH_ROWS: std::ffi::c_long = 2_000;

/// Calls `f` with each record of the query `COLUMNS || filter` and its stored hash.
pub fn for_each(filter: &str, tenant: Option<uuid::Uuid>, mut f: impl FnMut(&AuditRecord<'_>, &[u8; 32])) {
    scan(&format!("{COLUMNS}{filter}"), tenant, |row| {
        // SAFETY: the row comes from COLUMNS.
        let (rec, stored) = unsafe { row.record() };
        f(&rec, &stored);
    });
}

/// The same columns with the jsonb ones left binary, for a reader that
/// writes their text itself ([`Row::jsonb_bytes`]).
const RAW_COLUMNS: &str = "SELECT tenant_id, seq, prev_hash, hash, logged_at, txid, db_role, actor, table_name,
        operation, row_pk, old_row, new_row, changed_cols, row_count, rows_digest, detail
   FROM d5.audit_log";

/// Calls `f` with each row of `RAW_COLUMNS || filter`.
pub fn for_each_raw(filter: &str, mut f: impl FnMut(&Row)) {
    scan(&format!("{RAW_COLUMNS}{filter}"), None, |row| f(row));
}

/// Runs `sql` (one optional uuid parameter) through a cursor and calls `f`
/// with each row, freeing each batch before the next.
fn scan(sql: &str, tenant: Option<uuid::Uuid>, mut f: impl FnMut(&Row)) {
    let sql = std::ffi::CString::new(sql).unwrap_or_else(|_| raise(InternalError("audit query contains NUL".into())));
    let tenant = tenant.map(|t| pgrx::Uuid::from_bytes(*t.as_bytes()));
    Spi::connect(|_client| {
        // SAFETY: SPI is connected for this closure; the portal, tuple tables
        // and batch context are released before it returns (or by the abort
        // of the transaction if an error escapes).
        unsafe {
            let mut argtypes = [pg_sys::UUIDOID];
            let mut values = [tenant
                .as_ref()
                .map_or(pg_sys::Datum::from(0), |u| pg_sys::Datum::from(u.as_bytes().as_ptr()))];
            let nargs = if tenant.is_some() { 1 } else { 0 };
            let portal = pg_sys::SPI_cursor_open_with_args(
                std::ptr::null(),
                sql.as_ptr(),
                nargs,
                argtypes.as_mut_ptr(),
                values.as_mut_ptr(),
                std::ptr::null(),
                true,
                0,
            );
            let batch_cxt = pg_sys::AllocSetContextCreateExtended(
                pg_sys::CurrentMemoryContext,
                c"d5 audit verify batch".as_ptr(),
                pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
                pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
                pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
            );
            loop {
                pg_sys::SPI_cursor_fetch(portal, true, BATCH_ROWS);
                let table = pg_sys::SPI_tuptable;
                let rows = pg_sys::SPI_processed as usize;
                if table.is_null() || rows == 0 {
                    break;
                }
                let old = pg_sys::MemoryContextSwitchTo(batch_cxt);
                let desc = (*table).tupdesc;
                if (*desc).natts as usize > MAX_COLUMNS {
                    raise(InternalError("audit query returns too many columns".into()));
                }
                let mut row = Row { values: [pg_sys::Datum::from(0); MAX_COLUMNS], nulls: [true; MAX_COLUMNS] };
                for i in 0..rows {
                    // One pass over the tuple for every column: reading the
                    // columns one by one would walk it from the start each
                    // time past the first variable-width one.
                    pg_sys::heap_deform_tuple(*(*table).vals.add(i), desc, row.values.as_mut_ptr(), row.nulls.as_mut_ptr());
                    f(&row);
                }
                pg_sys::MemoryContextSwitchTo(old);
                pg_sys::MemoryContextReset(batch_cxt);
                pg_sys::SPI_freetuptable(table);
            }
            pg_sys::MemoryContextDelete(batch_cxt);
            pg_sys::SPI_cursor_close(portal);
        }
    });
}

/// One fetched row; borrows are valid until its batch is freed.
pub struct Row {
    values: [pg_sys::Datum; MAX_COLUMNS],
    nulls: [bool; MAX_COLUMNS],
}

const MAX_COLUMNS: usize = 32;

/// Stand-ins for stored hashes of the wrong length: different, so that two
/// unreadable values never pass the link check between two records.
const BAD_HASH: [u8; 32] = [0xff; 32];
const BAD_PREV_HASH: [u8; 32] = [0xfe; 32];

impl Row {
    fn datum(&self, col: i32) -> Option<pg_sys::Datum> {
        // Columns are numbered from 1, as in SQL.
        let i = col as usize - 1;
        (!self.nulls[i]).then_some(self.values[i])
    }

    pub unsafe fn bytes<'a>(&self, col: i32) -> Option<&'a [u8]> {
        // SAFETY: the column is text or bytea; detoasting allocates in the
        // batch context, which outlives the borrow.
        unsafe {
            let v = pg_sys::pg_detoast_datum_packed(self.datum(col)?.cast_mut_ptr());
            Some(std::slice::from_raw_parts(
                pgrx::varlena::vardata_any(v).cast::<u8>(),
                pgrx::varlena::varsize_any_exhdr(v),
            ))
        }
    }

    unsafe fn text<'a>(&self, col: i32) -> Option<&'a str> {
        // SAFETY: as for bytes.
        unsafe { self.bytes(col) }.map(stored_text)
    }

    pub unsafe fn int8(&self, col: i32) -> Option<i64> {
        // The column is int8 or timestamptz, both pass-by-value 8 bytes.
        self.datum(col).map(|d| d.value() as i64)
    }

    /// A record's own hash; one of the wrong length matches nothing.
    pub unsafe fn hash(&self, col: i32) -> [u8; 32] {
        // SAFETY: bytea column.
        unsafe { self.bytes(col) }.and_then(|b| b.try_into().ok()).unwrap_or(BAD_HASH)
    }

    /// A record's prev_hash; one of the wrong length links to nothing, not
    /// even to a predecessor whose own hash was unreadable.
    pub unsafe fn prev_hash(&self, col: i32) -> [u8; 32] {
        // SAFETY: bytea column.
        unsafe { self.bytes(col) }.and_then(|b| b.try_into().ok()).unwrap_or(BAD_PREV_HASH)
    }

    /// The uuid in column `col` (nil when NULL).
    pub unsafe fn uuid(&self, col: i32) -> uuid::Uuid {
        // SAFETY: the column is a uuid: a pointer to 16 bytes.
        self.datum(col)
            .map(|d| uuid::Uuid::from_slice(unsafe { std::slice::from_raw_parts(d.cast_mut_ptr::<u8>(), 16) }).unwrap_or_default())
            .unwrap_or_default()
    }

    /// A jsonb column's varlena, detoasted (decompressed or fetched) if
    /// need be, header included.
    pub unsafe fn jsonb_bytes<'a>(&self, col: i32) -> Option<&'a [u8]> {
        // SAFETY: the column is jsonb; detoasting allocates in the batch
        // context, which outlives the borrow.
        unsafe {
            let v = pg_sys::pg_detoast_datum_packed(self.datum(col)?.cast_mut_ptr());
            Some(std::slice::from_raw_parts(v.cast::<u8>(), pgrx::varlena::varsize_any(v)))
        }
    }

    unsafe fn record<'a>(&self) -> (AuditRecord<'a>, [u8; 32]) {
        // SAFETY: column numbers and types follow COLUMNS.
        unsafe {
            let tenant_id = self.uuid(1);
            let rec = AuditRecord {
                tenant_id,
                seq: self.int8(2).unwrap_or(0),
                prev_hash: self.prev_hash(3),
                logged_at_micros: self.int8(5).unwrap_or(0).saturating_add(PG_EPOCH_OFFSET_MICROS),
                txid: self.int8(6).unwrap_or(0),
                db_role: self.text(7).unwrap_or(""),
                actor: self.text(8),
                table_name: self.text(9),
                operation: self.text(10).unwrap_or(""),
                row_pk: self.text(11),
                old_row: self.text(12),
                new_row: self.text(13),
                changed_cols: self.text(14),
                row_count: self.int8(15),
                rows_digest: self.text(16),
                detail: self.text(17),
            };
            (rec, self.hash(4))
        }
    }
}
