//! Write-time validation of bound jsonb columns, and the statement trigger
//! that tells every backend to drop its caches.

use std::ffi::CStr;

use pgrx::prelude::*;
use pgrx::{pg_sys, AllocatedByPostgres};

use super::cache::{self, ColumnBinding};
use super::jsonb::{self, RawJsonb};
use super::{document_limits, JsonSchemaError};
use crate::error::raise;

/// Violations listed in DETAIL, over all schemas of a column.
const DETAIL_CAP: usize = 20;

/// BEFORE INSERT OR UPDATE ... FOR EACH ROW on every table with a bound column.
#[pg_trigger]
fn _json_schema_check<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, pgrx::PgTriggerError> {
    let td = trigger.trigger_data();
    let event = td.tg_event;
    let is_update = pgrx::trigger_support::trigger_fired_by_update(event);
    if !pgrx::trigger_support::trigger_fired_before(event)
        || !pgrx::trigger_support::trigger_fired_for_row(event)
        || !(is_update || pgrx::trigger_support::trigger_fired_by_insert(event))
    {
        raise(JsonSchemaError::BadTrigger);
    }
    let rel = td.tg_relation;
    // SAFETY: a row trigger's relation is open and valid for the call.
    let relid = unsafe { (*rel).rd_id };
    if let Some(columns) = cache::bindings_for(relid) {
        let (new, old) = if is_update {
            (td.tg_newtuple, Some(td.tg_trigtuple))
        } else {
            (td.tg_trigtuple, None)
        };
        // SAFETY: tuples and descriptor belong to this trigger call.
        unsafe { check_row(rel, new, old, &columns) };
    }
    Ok(trigger.new())
}

/// A column's value in one tuple, `None` when NULL.
///
/// # Safety
/// `tuple` and `desc` belong together and are valid.
unsafe fn attr(tuple: pg_sys::HeapTuple, desc: pg_sys::TupleDesc, attnum: i32) -> Option<pg_sys::Datum> {
    let mut isnull = false;
    // SAFETY: per the function contract; attnum comes from `desc`.
    let datum = unsafe { pg_sys::heap_getattr(tuple, attnum, desc, &mut isnull) };
    (!isnull).then_some(datum)
}

/// Same bytes (an unchanged, possibly TOASTed value compares equal to itself).
///
/// # Safety
/// Both are varlena datums.
unsafe fn same_varlena(a: pg_sys::Datum, b: pg_sys::Datum) -> bool {
    // SAFETY: varlena headers are readable; lengths come from them.
    unsafe {
        let (pa, pb) = (a.cast_mut_ptr::<pg_sys::varlena>(), b.cast_mut_ptr::<pg_sys::varlena>());
        let (la, lb) = (pgrx::varsize_any(pa), pgrx::varsize_any(pb));
        la == lb
            && std::slice::from_raw_parts(pa.cast::<u8>(), la) == std::slice::from_raw_parts(pb.cast::<u8>(), lb)
    }
}

/// 16 bytes of a uuid datum.
///
/// # Safety
/// `d` is a uuid datum (pass by reference, 16 bytes).
unsafe fn uuid_bytes(d: pg_sys::Datum) -> [u8; 16] {
    // SAFETY: per the function contract.
    unsafe { *d.cast_mut_ptr::<[u8; 16]>() }
}

/// Whether row-level security applies to the current user on this table.
fn rls_applies(rel: pg_sys::Relation) -> bool {
    // SAFETY: the trigger's relation is valid; noError = true never raises.
    unsafe {
        pg_sys::check_enable_rls((*rel).rd_id, pg_sys::Oid::INVALID, true)
            == pg_sys::CheckEnableRlsResult::RLS_ENABLED as i32
    }
}

/// # Safety
/// Arguments come from the current row trigger call.
unsafe fn check_row(
    rel: pg_sys::Relation,
    new: pg_sys::HeapTuple,
    old: Option<pg_sys::HeapTuple>,
    columns: &[ColumnBinding],
) {
    // SAFETY: the relation and its descriptor are valid for the call.
    let (desc, relname) = unsafe {
        let desc = (*rel).rd_att;
        let name = CStr::from_ptr((*(*rel).rd_rel).relname.data.as_ptr()).to_string_lossy().into_owned();
        (desc, name)
    };
    // SAFETY: `desc` is valid and has `natts` attributes.
    let attrs = unsafe { (*desc).attrs.as_slice(usize::try_from((*desc).natts).unwrap_or(0)) };
    let find = |name: &str| {
        attrs.iter().find(|a| {
            // SAFETY: attname is a NUL-terminated NameData.
            !a.attisdropped && unsafe { CStr::from_ptr(a.attname.data.as_ptr()) }.to_bytes() == name.as_bytes()
        })
    };
    let tenant_attr = find("tenant_id").filter(|a| a.atttypid == pg_sys::UUIDOID).map(|a| i32::from(a.attnum));
    // SAFETY: tuples belong to `desc`.
    let tenant_of = |t: pg_sys::HeapTuple| tenant_attr.and_then(|n| unsafe { attr(t, desc, n) }).map(|d| unsafe { uuid_bytes(d) });
    let new_tenant = tenant_of(new);
    if tenant_attr.is_some() && rls_applies(rel) {
        let current = crate::tenancy::context::current_tenant().map(|t| *t.as_bytes());
        if current.is_none() || current != new_tenant {
            // Row-level security refuses this row (42501) right after this
            // trigger; checking it first would answer with another tenant's
            // policy in the DETAIL.
            return;
        }
    }

    for binding in columns {
        let bad = |problem| JsonSchemaError::BadBoundColumn {
            relation: relname.clone(),
            column: binding.column.clone(),
            problem,
        };
        let Some(a) = find(&binding.column) else { raise(bad("does not exist")) };
        if a.atttypid != pg_sys::JSONBOID {
            raise(bad("is not of type jsonb"));
        }
        let attnum = i32::from(a.attnum);
        // SAFETY: `new` belongs to `desc`.
        let Some(value) = (unsafe { attr(new, desc, attnum) }) else { continue };
        if let Some(old) = old {
            // Unchanged document and tenant: nothing new to check.
            // SAFETY: `old` belongs to `desc`; both values are jsonb varlenas.
            let unchanged = unsafe { attr(old, desc, attnum) }.is_some_and(|o| unsafe { same_varlena(o, value) });
            if unchanged && tenant_of(old) == new_tenant {
                continue;
            }
        }
        let tenant_schema = new_tenant.and_then(|t| binding.tenants.get(&t));
        let names: Vec<&String> = binding.global.iter().chain(tenant_schema).collect();
        if names.is_empty() {
            continue;
        }
        let schemas: Vec<_> = names.into_iter().map(|name| cache::latest(name)).collect();
        let mut failed = Vec::new();
        let mut lines = Vec::new();
        let mut total = 0;
        jsonb::with_doc(RawJsonb::from_datum(value), document_limits(), |root| {
            for compiled in &schemas {
                if compiled.schema.is_valid(root) {
                    continue;
                }
                let room = DETAIL_CAP.saturating_sub(lines.len());
                let (errors, count) = compiled.schema.errors_counted(root, room);
                total += count;
                lines.extend(errors);
                failed.push(format!("JSON schema \"{}\" (version {})", compiled.name, compiled.version));
            }
        })
        .unwrap_or_else(|e| raise(e));
        if !failed.is_empty() {
            raise(JsonSchemaError::Violation {
                relation: relname,
                column: binding.column.clone(),
                schemas: failed.join(" and "),
                detail: d5_core::json_schema::format_detail(&lines, total),
            });
        }
    }
}

/// AFTER ... FOR EACH STATEMENT on the registry tables: every backend drops
/// its cached versions / bindings when this transaction commits (this one
/// at its next command).
#[pg_trigger]
fn _json_schema_invalidate<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, pgrx::PgTriggerError> {
    let relid = trigger.relid()?;
    // SAFETY: queues an invalidation message for an existing relation.
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(relid) };
    Ok(None)
}
