//! Reads of `d5.json_schemas` and `d5.json_schema_bindings` for the caches.
//!
//! Callers (d5_app during a write) cannot read these tables, and must not:
//! the bindings name other tenants. So the reads run as the tables' owner for
//! their duration (as Postgres' own foreign-key checks do), with fixed,
//! fully qualified queries, and see the latest committed rows.

use std::collections::HashMap;
use std::rc::Rc;

use pgrx::prelude::*;
use pgrx::{pg_sys, Uuid};

use super::cache::{self, Bindings, ColumnBinding};
use crate::error::spi;

/// `(version, schema as JSON text)` of the newest version of `name`.
pub fn load_latest(name: &str) -> Option<(i32, String)> {
    as_owner(|| {
        spi(Spi::connect(|c| {
            let rows = c.select(
                "SELECT version, schema::pg_catalog.text FROM d5.json_schemas
                 WHERE name OPERATOR(pg_catalog.=) $1
                 ORDER BY version DESC LIMIT 1",
                Some(1),
                &[name.into()],
            )?;
            if rows.is_empty() {
                return Ok(None);
            }
            Ok(match rows.first().get_two::<i32, String>()? {
                (Some(v), Some(text)) => Some((v, text)),
                _ => None,
            })
        }))
    })
}

/// The schema text of one version.
pub fn load_version(name: &str, version: i32) -> Option<String> {
    as_owner(|| {
        spi(Spi::connect(|c| {
            let rows = c.select(
                "SELECT schema::pg_catalog.text FROM d5.json_schemas
                 WHERE name OPERATOR(pg_catalog.=) $1 AND version OPERATOR(pg_catalog.=) $2",
                Some(1),
                &[name.into(), version.into()],
            )?;
            if rows.is_empty() {
                return Ok(None);
            }
            rows.first().get_one::<String>()
        }))
    })
}

/// Every binding, grouped by table. A global row added by an admin
/// overrides the shipped one for the same column (NULL schema: none).
pub fn load_bindings() -> Bindings {
    let rows: Vec<(pg_sys::Oid, String, Option<Uuid>, Option<String>, bool)> = as_owner(|| {
        spi(Spi::connect(|c| {
            c.select(
                "SELECT table_name::pg_catalog.oid, column_name::pg_catalog.text, tenant_id,
                        schema_name, shipped
                 FROM d5.json_schema_bindings
                 ORDER BY table_name, column_name, shipped DESC",
                None,
                &[],
            )?
            .map(|row| {
                Ok((
                    row.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::Oid::INVALID),
                    row.get::<String>(2)?.unwrap_or_default(),
                    row.get::<Uuid>(3)?,
                    row.get::<String>(4)?,
                    row.get::<bool>(5)?.unwrap_or(false),
                ))
            })
            .collect::<Result<Vec<_>, pgrx::spi::Error>>()
        }))
    });
    let mut tables: HashMap<pg_sys::Oid, Vec<ColumnBinding>> = HashMap::new();
    // Shipped rows come first per column (ORDER BY shipped DESC), so an
    // admin's global row, read later, replaces them.
    for (table, column, tenant, schema, _shipped) in rows {
        let columns = tables.entry(table).or_default();
        let idx = match columns.iter().position(|b| b.column == column) {
            Some(i) => i,
            None => {
                columns.push(ColumnBinding { column, global: None, tenants: HashMap::new() });
                columns.len() - 1
            }
        };
        let binding = &mut columns[idx];
        match (tenant, schema) {
            (None, schema) => binding.global = schema,
            (Some(t), Some(schema)) => {
                binding.tenants.insert(*t.as_bytes(), schema);
            }
            (Some(_), None) => {}
        }
    }
    tables.into_iter().map(|(k, v)| (k, Rc::new(v))).collect()
}

/// Runs `f` as the owner of d5.json_schemas with a fresh snapshot.
fn as_owner<R>(f: impl FnOnce() -> R) -> R {
    let (schemas, bindings, owner) = spi(Spi::connect(|c| {
        c.select(
            "SELECT 'd5.json_schemas'::pg_catalog.regclass::pg_catalog.oid,
                    'd5.json_schema_bindings'::pg_catalog.regclass::pg_catalog.oid,
                    (SELECT relowner FROM pg_catalog.pg_class
                     WHERE oid OPERATOR(pg_catalog.=) 'd5.json_schemas'::pg_catalog.regclass)",
            Some(1),
            &[],
        )?
        .first()
        .get_three::<pg_sys::Oid, pg_sys::Oid, pg_sys::Oid>()
    }));
    let (Some(schemas), Some(bindings), Some(owner)) = (schemas, bindings, owner) else {
        crate::error::raise(crate::error::InternalError("d5 JSON Schema tables not found".into()));
    };
    cache::set_watched(schemas, bindings);

    let mut saved_user = pg_sys::Oid::INVALID;
    let mut saved_context = 0;
    // SAFETY: reads this backend's current user and security context.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context) };
    // SAFETY: switches user for our fixed queries only; restored below, and
    // by transaction abort if an error escapes.
    unsafe {
        pg_sys::SetUserIdAndSecContext(
            owner,
            saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
        )
    };
    let _restore = RestoreUser(saved_user, saved_context);
    // Our fixed queries must not resolve anything in the caller's schemas.
    let pin = crate::privilege::pin_search_path();

    // SAFETY: plain reads of backend state.
    let (parallel, xact_snapshot, has_xid) = unsafe {
        (
            pg_sys::IsInParallelMode(),
            pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32,
            pg_sys::GetCurrentTransactionIdIfAny() != pg_sys::InvalidTransactionId,
        )
    };
    // Read-only SPI uses the active snapshot: make it the latest one, so an
    // invalidation processed before this read is reflected in it. Writing
    // transactions get a new snapshot per query from SPI, which in
    // REPEATABLE READ is the transaction's: then keep the result only until
    // the transaction ends.
    if parallel || (xact_snapshot && has_xid) {
        cache::set_provisional();
        let result = f();
        crate::privilege::restore_gucs(pin);
        return result;
    }
    // SAFETY: not in parallel mode (checked above); pushed and popped here.
    unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetLatestSnapshot()) };
    let result = f();
    // SAFETY: pops the snapshot pushed above (errors skip this: abort resets the stack).
    unsafe { pg_sys::PopActiveSnapshot() };
    crate::privilege::restore_gucs(pin);
    result
}

struct RestoreUser(pg_sys::Oid, i32);

impl Drop for RestoreUser {
    fn drop(&mut self) {
        // SAFETY: restores the values read by GetUserIdAndSecContext.
        unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) };
    }
}
