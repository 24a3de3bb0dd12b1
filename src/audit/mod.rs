//! Tamper-evident audit log: capture (row trigger), chain append, bulk and
//! maintenance events, retention seals, and verification. The canonical
//! encoding and the verifier live in `d5_core::audit` so the offline
//! `d5-audit-verify` computes exactly the same thing.

pub mod capture;
pub mod chain;
mod head_row;
mod heads;
mod log_reader;
mod log_row;
mod pending;
mod physical_pass;
pub mod json;
pub mod seal;
pub mod verify;

use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::error::{raise, SqlError};
use crate::privilege;
use crate::tenancy::context;
use chain::NewRecord;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit trigger misconfigured: {0}")]
    Misconfigured(&'static str),
    #[error("audited table has no column \"{0}\" to choose the audit chain")]
    NoChainColumn(String),
    #[error("audited row has NULL in its chain column \"{0}\"")]
    NullTenant(String),
    #[error("digest is not valid: {0}")]
    BadDigest(String),
    #[error("operation must be 1 to 64 characters")]
    BadOperation,
    #[error("an audited value is not valid UTF-8 text (database encoding {0})")]
    NotUtf8(String),
}

impl SqlError for AuditError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            AuditError::BadDigest(_) | AuditError::BadOperation => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            AuditError::NullTenant(_) => PgSqlErrorCode::ERRCODE_NOT_NULL_VIOLATION,
            AuditError::NotUtf8(_) => PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
            _ => PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        }
    }

    fn hint(&self) -> Option<String> {
        matches!(self, AuditError::NotUtf8(_)).then(|| {
            "The audit hash covers each record's text as UTF-8, so audited values with non-ASCII characters \
             need a database created with ENCODING 'UTF8'."
                .to_string()
        })
    }
}

impl From<AuditError> for pgrx::pg_sys::panic::ErrorReport {
    fn from(e: AuditError) -> Self {
        pgrx::pg_sys::panic::ErrorReport::new(e.sqlstate(), e.to_string(), "d5_storage")
    }
}

/// Appends `rec` (an event) now as the extension owner, recording the calling
/// role and the application actor. Returns its seq. Records of its chain
/// kept for the commit are appended first, so a chain keeps the order of its
/// changes.
pub fn append_as_owner(rec: &NewRecord<'_>) -> i64 {
    pending::before_event(&rec.tenant_id);
    append_now(rec)
}

/// [`append_as_owner`] for a record whose chain has no kept records.
fn append_now(rec: &NewRecord<'_>) -> i64 {
    let role = privilege::current_user_name();
    let actor = context::current_actor();
    // SAFETY: reads backend-local transaction state.
    let logged_at = unsafe { pgrx::pg_sys::GetCurrentStatementStartTimestamp() };
    privilege::as_extension_owner(|| chain::append(rec, &role, actor.as_deref(), logged_at))
}

/// One record for a statement or action that touched many rows: table,
/// operation, row count and a digest of the rows (bulk loads, maintenance).
pub struct Event<'a> {
    pub tenant: Option<uuid::Uuid>,
    pub table_name: Option<&'a str>,
    pub operation: &'a str,
    pub row_count: Option<i64>,
    pub rows_digest: Option<&'a str>,
    /// JSON object text with whatever else explains the event.
    pub detail: Option<&'a str>,
}

/// Appends an event to its tenant's chain, or to the system chain.
pub fn append_event(event: &Event<'_>) -> i64 {
    let detail = event.detail.map(json::from_text);
    append_event_with_detail(event, detail.as_ref().map(json::OwnedJsonb::as_ref))
}

/// [`append_event`] with the detail already a jsonb (`event.detail` unused).
fn append_event_with_detail(event: &Event<'_>, detail: Option<chain::Jsonb<'_>>) -> i64 {
    if event.operation.is_empty() || event.operation.len() > 64 {
        raise(AuditError::BadOperation);
    }
    let record = NewRecord {
        tenant_id: event.tenant.unwrap_or(d5_core::audit::SYSTEM_CHAIN),
        table_name: event.table_name,
        operation: event.operation,
        row_pk: None,
        old_row: None,
        new_row: None,
        changed_cols: None,
        row_count: event.row_count,
        rows_digest: event.rows_digest,
        detail,
    };
    append_as_owner(&record)
}

/// SQL entry to [`append_event`] for the extension's own SECURITY DEFINER
/// functions (no role is granted EXECUTE). Returns the record's seq.
#[pg_extern(volatile, parallel_unsafe)]
fn _audit_event(
    tenant: Option<pgrx::Uuid>,
    table_name: Option<&str>,
    operation: &str,
    row_count: Option<i64>,
    rows_digest: Option<&str>,
    detail: Option<crate::json_schema::RawJsonb>,
) -> i64 {
    // The argument is stored as it came; its jsonb_out text (not serde_json,
    // so numbers keep every digit) is what the hash covers.
    let detail_text = detail.map(|d| d.to_text());
    let event = Event {
        tenant: tenant.map(|t| uuid::Uuid::from_bytes(*t.as_bytes())),
        table_name,
        operation,
        row_count,
        rows_digest,
        detail: None,
    };
    let detail = detail.zip(detail_text.as_deref()).map(|(d, text)| chain::Jsonb { datum: d.datum(), text });
    append_event_with_detail(&event, detail)
}
