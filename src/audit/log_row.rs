//! A record's row in `d5.audit_log`, inserted directly into the partition its
//! `logged_at` routes to, as COPY does: `table_tuple_insert` and the
//! partition's indexes, no INSERT statement.
//!
//! Why: after the head row (`head_row`), the record's INSERT was most of
//! what the audit trigger cost, and about half of that INSERT was executor
//! start-up and teardown (a projection for the 17-column VALUES list, tuple
//! routing set up and torn down per statement; `perf`, bench/RESULTS.md).
//!
//! When: only where the direct insert does exactly what the INSERT would.
//! [`insert`] returns false, having written nothing, whenever the parent or
//! the partition has anything the statement would also run or check (INSERT
//! triggers, rules, row security for the current user, a missing INSERT
//! privilege, CHECK constraints, generated columns, deferrable unique
//! indexes), when their columns are not the 17 sql/audit.sql makes, in
//! order, when a NOT NULL column would get a NULL, or when no plain leaf
//! table takes the row. The caller then runs the INSERT statement, which
//! applies all of that and raises the right error. Every index is
//! maintained, with unique checks (`ExecInsertIndexTuples`), so an index a
//! DBA adds binds the direct path too.

use std::cell::Cell;
use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::Spi;

/// The columns of d5.audit_log in order, with their types.
pub const COLUMNS: [(&CStr, pg_sys::Oid); 17] = [
    (c"tenant_id", pg_sys::UUIDOID),
    (c"seq", pg_sys::INT8OID),
    (c"prev_hash", pg_sys::BYTEAOID),
    (c"hash", pg_sys::BYTEAOID),
    (c"logged_at", pg_sys::TIMESTAMPTZOID),
    (c"txid", pg_sys::INT8OID),
    (c"db_role", pg_sys::TEXTOID),
    (c"actor", pg_sys::TEXTOID),
    (c"table_name", pg_sys::TEXTOID),
    (c"operation", pg_sys::TEXTOID),
    (c"row_pk", pg_sys::JSONBOID),
    (c"old_row", pg_sys::JSONBOID),
    (c"new_row", pg_sys::JSONBOID),
    (c"changed_cols", pg_sys::JSONBOID),
    (c"row_count", pg_sys::INT8OID),
    (c"rows_digest", pg_sys::TEXTOID),
    (c"detail", pg_sys::JSONBOID),
];

/// A record's column values in [`COLUMNS`] order (None = NULL).
pub type RecordValues = [Option<pg_sys::Datum>; COLUMNS.len()];

thread_local! {
    /// The d5.audit_log whose partition key was found to be RANGE
    /// (logged_at). A table's partition key never changes, so one check per
    /// table per backend is enough.
    static KEY_CHECKED: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::Oid::INVALID) };
}

/// Inserts the record's row directly, or returns false without writing
/// anything when only an INSERT statement does everything it should.
pub fn insert(values: &RecordValues, logged_at: pg_sys::TimestampTz) -> bool {
    // SAFETY: relations are opened with the lock an INSERT takes and closed
    // (locks kept to transaction end) on every path; the executor state,
    // slot and indexes are released before returning, or by the abort of
    // the transaction if a constraint or unique check raises an error.
    unsafe {
        let nsp = pg_sys::get_namespace_oid(c"d5".as_ptr(), false);
        let parent_id = pg_sys::get_relname_relid(c"audit_log".as_ptr(), nsp);
        if parent_id == pg_sys::InvalidOid
            || pg_sys::pg_class_aclcheck(parent_id, pg_sys::GetUserId(), pg_sys::ACL_INSERT as pg_sys::AclMode)
                != pg_sys::AclResult::ACLCHECK_OK
            || pg_sys::check_enable_rls(parent_id, pg_sys::InvalidOid, true)
                == pg_sys::CheckEnableRlsResult::RLS_ENABLED as i32
            || !partition_key_is_logged_at(parent_id)
        {
            return false;
        }
        let parent = pg_sys::table_open(parent_id, pg_sys::RowExclusiveLock as i32);
        let partition_id = if (*parent).rd_rules.is_null() && !has_insert_triggers(parent) && has_record_columns(parent) {
            route(parent, parent_id, logged_at)
        } else {
            None
        };
        pg_sys::table_close(parent, pg_sys::NoLock as i32);
        let Some(partition_id) = partition_id else { return false };
        let partition = pg_sys::table_open(partition_id, pg_sys::RowExclusiveLock as i32);
        let done = insert_into(partition, values);
        pg_sys::table_close(partition, pg_sys::NoLock as i32);
        done
    }
}

fn partition_key_is_logged_at(parent_id: pg_sys::Oid) -> bool {
    if KEY_CHECKED.get() == parent_id {
        return true;
    }
    let key = Spi::get_one_with_args::<String>("SELECT pg_get_partkeydef($1)", &[parent_id.into()]).ok().flatten();
    let ok = key.as_deref() == Some("RANGE (logged_at)");
    if ok {
        KEY_CHECKED.set(parent_id);
    }
    ok
}

unsafe fn has_insert_triggers(rel: pg_sys::Relation) -> bool {
    // SAFETY: per the caller, `rel` is open.
    unsafe {
        let t = (*rel).trigdesc;
        !t.is_null()
            && ((*t).trig_insert_before_row
                || (*t).trig_insert_after_row
                || (*t).trig_insert_instead_row
                || (*t).trig_insert_before_statement
                || (*t).trig_insert_after_statement
                || (*t).trig_insert_new_table)
    }
}

/// The relation has exactly [`COLUMNS`], in order, none dropped, and no
/// generated columns.
unsafe fn has_record_columns(rel: pg_sys::Relation) -> bool {
    // SAFETY: per the caller, `rel` is open; its descriptor has natts entries.
    unsafe {
        let desc = (*rel).rd_att;
        if (*desc).natts as usize != COLUMNS.len() {
            return false;
        }
        let constr = (*desc).constr;
        if !constr.is_null() && (*constr).has_generated_stored {
            return false;
        }
        let atts = std::slice::from_raw_parts((*desc).attrs.as_ptr(), COLUMNS.len());
        atts.iter().zip(COLUMNS).all(|(att, (name, type_oid))| {
            !att.attisdropped && att.atttypid == type_oid && CStr::from_ptr(att.attname.data.as_ptr()) == name
        })
    }
}

/// The leaf partition of d5.audit_log that takes a row logged at
/// `logged_at`, found as the executor's tuple routing finds it (the range
/// whose lower bound is the greatest not above the value, else the
/// default), or None when that is not a plain table or none takes the row.
unsafe fn route(parent: pg_sys::Relation, parent_id: pg_sys::Oid, logged_at: pg_sys::TimestampTz) -> Option<pg_sys::Oid> {
    // SAFETY: per the caller, `parent` is open and locked, which keeps its
    // partition descriptor valid; the arrays are sized as PostgreSQL
    // documents for range bounds (ndatums bounds, ndatums + 1 indexes).
    unsafe {
        let desc = pg_sys::RelationGetPartitionDesc(parent, true);
        if desc.is_null() || (*desc).boundinfo.is_null() {
            return None;
        }
        let bounds = (*desc).boundinfo;
        if (*bounds).strategy as u8 != pg_sys::PARTITION_STRATEGY_RANGE {
            return None;
        }
        let ndatums = (*bounds).ndatums as isize;
        // -1 (below every bound), 0 (equal) or 1: how bound i compares to the value.
        let cmp = |i: isize| -> i32 {
            let kind = *(*(*bounds).kind.offset(i));
            if kind == pg_sys::PartitionRangeDatumKind::PARTITION_RANGE_DATUM_MINVALUE {
                return -1;
            }
            if kind == pg_sys::PartitionRangeDatumKind::PARTITION_RANGE_DATUM_MAXVALUE {
                return 1;
            }
            let bound = (*(*(*bounds).datums.offset(i))).value() as i64;
            bound.cmp(&logged_at) as i32
        };
        // partition_range_datum_bsearch: the greatest bound <= the value.
        let (mut lo, mut hi) = (-1isize, ndatums - 1);
        while lo < hi {
            let mid = (lo + hi + 1) / 2;
            let c = cmp(mid);
            if c <= 0 {
                lo = mid;
                if c == 0 {
                    break;
                }
            } else {
                hi = mid - 1;
            }
        }
        let mut index = *(*bounds).indexes.offset(lo + 1);
        if index < 0 {
            index = (*bounds).default_index;
        }
        if index < 0 || index >= (*desc).nparts || !*(*desc).is_leaf.offset(index as isize) {
            return None;
        }
        let partition_id = *(*desc).oids.offset(index as isize);
        let relkind = pg_sys::get_rel_relkind(partition_id) as u8;
        (relkind == pg_sys::RELKIND_RELATION && partition_id != parent_id).then_some(partition_id)
    }
}

/// A NULL in a NOT NULL column (the INSERT statement reports it).
unsafe fn violates_not_null(rel: pg_sys::Relation, values: &RecordValues) -> bool {
    // SAFETY: per the caller, `rel` is open and has the record's columns.
    unsafe {
        let atts = std::slice::from_raw_parts((*(*rel).rd_att).attrs.as_ptr(), COLUMNS.len());
        atts.iter().zip(values).any(|(att, value)| att.attnotnull && value.is_none())
    }
}

/// Inserts into the open leaf `partition`, or returns false (nothing
/// written) when it has anything that needs the INSERT statement.
unsafe fn insert_into(partition: pg_sys::Relation, values: &RecordValues) -> bool {
    // SAFETY: per the caller; see `insert`.
    unsafe {
        if !(*partition).rd_rules.is_null()
            || has_insert_triggers(partition)
            || !has_record_columns(partition)
            || (*(*partition).rd_rel).relchecks > 0
            || violates_not_null(partition, values)
        {
            return false;
        }
        let estate = pg_sys::CreateExecutorState();
        let info = pg_sys::palloc0(std::mem::size_of::<pg_sys::ResultRelInfo>()).cast::<pg_sys::ResultRelInfo>();
        (*info).type_ = pg_sys::NodeTag::T_ResultRelInfo;
        pg_sys::InitResultRelInfo(info, partition, 0, std::ptr::null_mut(), 0);
        pg_sys::ExecOpenIndices(info, false);
        let indexes = match (*info).ri_NumIndices {
            n if n > 0 => std::slice::from_raw_parts((*info).ri_IndexRelationDescs, n as usize),
            _ => &[],
        };
        // A deferrable unique index would need its check queued for later.
        if indexes.iter().any(|&index| !(*(*index).rd_index).indimmediate) {
            pg_sys::ExecCloseIndices(info);
            pg_sys::FreeExecutorState(estate);
            return false;
        }
        let slot = pg_sys::table_slot_create(partition, std::ptr::null_mut());
        for (i, value) in values.iter().enumerate() {
            *(*slot).tts_values.add(i) = value.unwrap_or(pg_sys::Datum::from(0));
            *(*slot).tts_isnull.add(i) = value.is_none();
        }
        pg_sys::ExecStoreVirtualTuple(slot);
        pg_sys::table_tuple_insert(partition, slot, pg_sys::GetCurrentCommandId(true), 0, std::ptr::null_mut());
        let recheck = pg_sys::ExecInsertIndexTuples(info, slot, estate, false, false, std::ptr::null_mut(), std::ptr::null_mut());
        debug_assert!(recheck.is_null(), "immediate indexes need no recheck");
        pg_sys::ExecCloseIndices(info);
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        pg_sys::FreeExecutorState(estate);
        true
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;
    use pgrx::IntoDatum;

    use super::{insert, RecordValues};

    const HASH: [u8; 32] = [7; 32];

    /// A minimal record (system-chain-like) for `tenant`, logged at `at`.
    fn record(tenant: &uuid::Uuid, at: i64) -> RecordValues {
        let text = |t: &str| t.into_datum();
        [
            Some(pg_sys::Datum::from(tenant.as_bytes().as_ptr())),
            Some(1i64.into()),
            HASH.as_slice().into_datum(),
            HASH.as_slice().into_datum(),
            Some(at.into()),
            Some(0i64.into()),
            text("tester"),
            None,
            None,
            text("TEST"),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ]
    }

    /// The PostgreSQL timestamp (µs since 2000-01-01) of a timestamptz literal.
    fn micros(ts: &str) -> i64 {
        Spi::get_one_with_args::<i64>(
            "SELECT (extract(epoch FROM $1::timestamptz) * 1000000)::int8 - 946684800000000",
            &[ts.into()],
        )
        .unwrap()
        .unwrap()
    }

    /// Where the record of `tenant` is stored (`tableoid`), or None.
    fn stored_in(tenant: &uuid::Uuid) -> Option<String> {
        Spi::get_one_with_args::<String>(
            "SELECT (SELECT tableoid::regclass::text FROM d5.audit_log WHERE tenant_id = $1)",
            &[pgrx::Uuid::from_bytes(*tenant.as_bytes()).into()],
        )
        .unwrap()
    }

    /// Where an INSERT statement routes a record logged at `ts`.
    fn routed_by_insert(ts: &str) -> String {
        Spi::get_one_with_args::<String>(
            "INSERT INTO d5.audit_log (tenant_id, seq, prev_hash, hash, logged_at, txid, db_role, operation)
             VALUES (gen_random_uuid(), 1, '\\x00', '\\x00', $1::timestamptz, 0, 'tester', 'TEST')
             RETURNING tableoid::regclass::text",
            &[ts.into()],
        )
        .unwrap()
        .unwrap()
    }

    #[pg_test]
    fn routes_every_row_where_the_insert_statement_does() {
        // Year partitions as the extension makes them (indexes copied from
        // the default partition), and one from MINVALUE made by hand.
        Spi::run(
            "SELECT d5._ensure_partition('d5.audit_log', '2090-03-01 UTC'), d5._ensure_partition('d5.audit_log', '2092-03-01 UTC');
             CREATE TABLE d5.audit_log_t_early (LIKE d5.audit_log_default INCLUDING ALL);
             ALTER TABLE d5.audit_log ATTACH PARTITION d5.audit_log_t_early FOR VALUES FROM (MINVALUE) TO ('1990-01-01 UTC')",
        )
        .unwrap();
        let probes = [
            "1970-06-01 UTC",
            "1989-12-31 23:59:59.999999 UTC",
            "1990-01-01 UTC",
            "2089-12-31 23:59:59.999999 UTC",
            "2090-01-01 UTC",
            "2090-07-01 12:00 UTC",
            "2091-01-01 UTC",
            "2092-01-01 UTC",
            "2092-12-31 23:59:59.999999 UTC",
            "2093-01-01 UTC",
            "2200-01-01 UTC",
        ];
        for ts in probes {
            let tenant = uuid::Uuid::new_v4();
            assert!(insert(&record(&tenant, micros(ts)), micros(ts)), "direct insert at {ts}");
            assert_eq!(stored_in(&tenant), Some(routed_by_insert(ts)), "partition for {ts}");
        }
        // Every row of every partition has its entry in the partition's
        // primary key index (amcheck's heapallindexed).
        Spi::run("CREATE EXTENSION IF NOT EXISTS amcheck").unwrap();
        let checked = Spi::get_one::<bool>(
            "SELECT count(bt_index_check(i.indexrelid, true)) = (SELECT count(*) FROM pg_inherits
                                                                 WHERE inhparent = 'd5.audit_log'::regclass)
               FROM pg_inherits p JOIN pg_index i ON i.indrelid = p.inhrelid
              WHERE p.inhparent = 'd5.audit_log'::regclass AND i.indisprimary",
        );
        assert_eq!(checked, Ok(Some(true)), "every partition's primary key index checked");
    }

    #[pg_test]
    fn maintains_indexes_with_unique_checks() {
        let now = micros("2090-03-01 UTC");
        Spi::run("CREATE UNIQUE INDEX audit_log_t_unique ON d5.audit_log (txid, db_role, logged_at)").unwrap();
        let first = uuid::Uuid::new_v4();
        assert!(insert(&record(&first, now), now));
        Spi::run("SET LOCAL enable_seqscan = off").unwrap();
        let by_index = Spi::get_one::<i64>(
            "SELECT count(*) FROM d5.audit_log WHERE txid = 0 AND db_role = 'tester' AND logged_at = '2090-03-01 UTC'",
        );
        assert_eq!(by_index, Ok(Some(1)));
        let second = uuid::Uuid::new_v4();
        let duplicate = PgTryBuilder::new(|| insert(&record(&second, now), now))
            .catch_others(|e| match e {
                pg_sys::panic::CaughtError::PostgresError(r) => {
                    assert_eq!(r.sql_error_code(), PgSqlErrorCode::ERRCODE_UNIQUE_VIOLATION);
                    false
                }
                e => e.rethrow(),
            })
            .execute();
        assert!(!duplicate, "the unique index refused the second row");
    }

    #[pg_test]
    fn leaves_to_the_insert_statement_what_it_does_not_do() {
        let now = micros("2090-03-01 UTC");
        let fallbacks = [
            ("ALTER TABLE d5.audit_log ADD CONSTRAINT t_check CHECK (seq > 0)", "ALTER TABLE d5.audit_log DROP CONSTRAINT t_check"),
            (
                "CREATE FUNCTION d5.t_trg() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
                 CREATE TRIGGER t_trg BEFORE INSERT ON d5.audit_log FOR EACH ROW EXECUTE FUNCTION d5.t_trg()",
                "DROP TRIGGER t_trg ON d5.audit_log; DROP FUNCTION d5.t_trg()",
            ),
            (
                "CREATE RULE t_rule AS ON INSERT TO d5.audit_log DO ALSO NOTIFY t_rule",
                "DROP RULE t_rule ON d5.audit_log",
            ),
            ("ALTER TABLE d5.audit_log ADD COLUMN t_extra int", "ALTER TABLE d5.audit_log DROP COLUMN t_extra"),
        ];
        // A NULL where the partition requires a value (its own NOT NULL).
        Spi::run(
            "CREATE TABLE d5.audit_log_t_2090 PARTITION OF d5.audit_log FOR VALUES FROM ('2090-01-01 UTC') TO ('2091-01-01 UTC');
             ALTER TABLE d5.audit_log_t_2090 ALTER COLUMN actor SET NOT NULL",
        )
        .unwrap();
        let tenant = uuid::Uuid::new_v4();
        assert!(!insert(&record(&tenant, now), now), "falls back for a NOT NULL column");
        assert_eq!(stored_in(&tenant), None, "nothing written for a NOT NULL column");
        Spi::run("ALTER TABLE d5.audit_log_t_2090 ALTER COLUMN actor DROP NOT NULL").unwrap();
        let direct = || insert(&record(&uuid::Uuid::new_v4(), now), now);
        assert!(direct(), "the extension's own layout takes the direct path");
        for (make, undo) in fallbacks {
            Spi::run(make).unwrap();
            let tenant = uuid::Uuid::new_v4();
            assert!(!insert(&record(&tenant, now), now), "falls back after: {make}");
            assert_eq!(stored_in(&tenant), None, "nothing written after: {make}");
            Spi::run(undo).unwrap();
            // A dropped column leaves the layout changed for good.
            assert_eq!(direct(), !undo.contains("DROP COLUMN"), "after: {undo}");
        }
    }
}
