//! The row trigger that records every INSERT, UPDATE and DELETE of an
//! audited table in the same transaction. The record is made when the row
//! changes and normally joins its chain at commit (`pending`). If it cannot
//! be made or written, the statement or the commit fails: no change commits
//! without its record.

use pgrx::prelude::*;
use pgrx::{pg_sys, PgRelation};

use super::json::{self, OwnedJsonb};
use super::pending::{self, RowRecord};
use super::AuditError;

/// AFTER INSERT OR UPDATE OR DELETE … FOR EACH ROW EXECUTE FUNCTION
/// d5._audit_row('<chain column>'): the chain column holds the tenant uuid.
#[pg_trigger]
fn _audit_row<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, pgrx::AllocatedByPostgres>>, AuditError> {
    // A restore copies the rows back together with the records of them.
    if crate::privilege::restoring_copy() {
        return Ok(None);
    }
    let data = trigger.trigger_data();
    let chain_column = trigger
        .extra_args()
        .ok()
        .and_then(|a| a.into_iter().next())
        .ok_or(AuditError::Misconfigured("d5._audit_row needs the chain column name as its argument"))?;
    let relation = trigger.relation().map_err(|_| AuditError::Misconfigured("trigger without relation"))?;
    let desc = relation.tuple_desc().as_ptr();
    let op = match trigger.op().map_err(|_| AuditError::Misconfigured("unknown trigger operation"))? {
        PgTriggerOperation::Insert => "INSERT",
        PgTriggerOperation::Update => "UPDATE",
        PgTriggerOperation::Delete => "DELETE",
        PgTriggerOperation::Truncate => return Err(AuditError::Misconfigured("d5._audit_row is a row trigger")),
    };
    // Which tuple is old and which new depends on the operation.
    let (old_tuple, new_tuple) = match op {
        "INSERT" => (std::ptr::null_mut(), data.tg_trigtuple),
        "UPDATE" => (data.tg_trigtuple, data.tg_newtuple),
        _ => (data.tg_trigtuple, std::ptr::null_mut()),
    };
    let any_tuple = if new_tuple.is_null() { old_tuple } else { new_tuple };
    // SAFETY: any_tuple is one of the trigger's tuples for this relation.
    let tenant = unsafe { chain_tenant(any_tuple, desc, &chain_column) }?;
    // SAFETY: tuples come from the trigger data and match the relation's
    // descriptor. An UPDATE's new row is built from its old one, with only
    // the changed columns converted anew.
    let (old_row, new_row, changed_cols) = unsafe {
        match op {
            "INSERT" => (None, Some(json::from_row(new_tuple, desc)), None),
            "DELETE" => (Some(json::from_row(old_tuple, desc)), None, None),
            _ => {
                let old_row = json::from_row(old_tuple, desc);
                let changed = json::changed_attributes(old_tuple, new_tuple, desc);
                let new_row = json::from_updated_row(&old_row, new_tuple, desc, &changed);
                (Some(old_row), Some(new_row), Some(json::names_of(desc, &changed)))
            }
        }
    };
    // Through a SECURITY DEFINER function the current user is its owner; the
    // login behind it is kept too.
    let detail = crate::privilege::session_user_if_different()
        .map(|login| json::from_text(&serde_json::json!({ "session_user": login }).to_string()));
    let record = RowRecord {
        tenant_id: tenant,
        table_name: format!("{}.{}", relation.namespace(), relation.name()),
        operation: op,
        // SAFETY: as above.
        row_pk: unsafe { primary_key_json(&relation, any_tuple, desc) },
        old_row,
        new_row,
        changed_cols,
        detail,
    };
    pending::record(record);
    Ok(None)
}

/// The uuid in the chain column of `tuple`.
unsafe fn chain_tenant(
    tuple: pg_sys::HeapTuple,
    desc: pg_sys::TupleDesc,
    column: &str,
) -> Result<uuid::Uuid, AuditError> {
    let name = std::ffi::CString::new(column).map_err(|_| AuditError::Misconfigured("bad chain column name"))?;
    // SAFETY: desc is valid; SPI_fnumber only reads it.
    let attnum = unsafe { pg_sys::SPI_fnumber(desc, name.as_ptr()) };
    if attnum <= 0 {
        return Err(AuditError::NoChainColumn(column.to_string()));
    }
    let mut isnull = false;
    // SAFETY: attnum is a valid user attribute of this descriptor.
    let datum = unsafe { pg_sys::heap_getattr(tuple, attnum, desc, &mut isnull) };
    if isnull {
        return Err(AuditError::NullTenant(column.to_string()));
    }
    // SAFETY: the column is a uuid (checked by d5.enable_audit); a uuid datum
    // points at 16 bytes.
    let bytes = unsafe { std::slice::from_raw_parts(datum.cast_mut_ptr::<u8>(), 16) };
    uuid::Uuid::from_slice(bytes).map_err(|_| AuditError::NullTenant(column.to_string()))
}

/// `{"col": "value", …}` over the primary key columns, values in their text form.
unsafe fn primary_key_json(relation: &PgRelation, tuple: pg_sys::HeapTuple, desc: pg_sys::TupleDesc) -> Option<OwnedJsonb> {
    // SAFETY: the relation is open; the bitmap is a palloc'd copy.
    let attrs = unsafe {
        pg_sys::RelationGetIndexAttrBitmap(
            relation.as_ptr(),
            pg_sys::IndexAttrBitmapKind::INDEX_ATTR_BITMAP_PRIMARY_KEY,
        )
    };
    if attrs.is_null() {
        return None;
    }
    let mut members: Vec<(*const std::ffi::c_char, Option<*const std::ffi::c_char>)> = Vec::new();
    let mut member = -1;
    loop {
        // SAFETY: iterates the bitmap returned above.
        member = unsafe { pg_sys::bms_next_member(attrs, member) };
        if member < 0 {
            break;
        }
        let attnum = member + pg_sys::FirstLowInvalidHeapAttributeNumber;
        // SAFETY: attnum comes from the relation's own primary key; the
        // output function's text is palloc'd and outlives the object built
        // from it below.
        unsafe {
            let att = (*desc).attrs.as_ptr().add((attnum - 1) as usize);
            let mut isnull = false;
            let datum = pg_sys::heap_getattr(tuple, attnum, desc, &mut isnull);
            let value = (!isnull).then(|| {
                let mut out_fn = pg_sys::Oid::INVALID;
                let mut varlena = false;
                pg_sys::getTypeOutputInfo((*att).atttypid, &mut out_fn, &mut varlena);
                pg_sys::OidOutputFunctionCall(out_fn, datum).cast_const()
            });
            members.push(((*att).attname.data.as_ptr(), value));
        }
    }
    // SAFETY: NUL-terminated names and values in the database encoding.
    Some(unsafe { json::object_of_texts(&members) })
}
