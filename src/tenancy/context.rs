//! Where the tenant and actor of a transaction are stored and read — the only place.
//!
//! They live in the superuser-only settings `d5.tenant` and `d5.actor`,
//! changed here with `SET LOCAL` semantics (`GUC_ACTION_LOCAL`):
//! * the transaction's end (commit or rollback) forgets them, so a pooled
//!   connection never carries a tenant into the next transaction;
//! * `SET`, `set_config`, `RESET`, `ALTER ROLE … SET` and pre-load
//!   placeholders by a non-superuser are refused by Postgres itself;
//! * a `SET LOCAL` is what Citus forwards to worker nodes, so the same
//!   storage works once tables are distributed by `tenant_id`.

use std::ffi::{CStr, CString};

use pgrx::pg_sys;
use pgrx::Uuid;

use crate::gucs;

/// The tenant in force, or `None`. Cheap: reads the setting in place.
pub fn current_tenant() -> Option<Uuid> {
    // SAFETY: the GUC machinery keeps this pointer valid (or NULL) between
    // calls; we only read it and copy the bytes we parse.
    let raw = unsafe { *gucs::TENANT.as_ptr() };
    if raw.is_null() {
        return None;
    }
    // SAFETY: non-NULL GUC string values are NUL-terminated C strings.
    let text = unsafe { CStr::from_ptr(raw) }.to_bytes();
    parse_uuid(text)
}

pub fn current_actor() -> Option<String> {
    gucs::ACTOR
        .get()
        .and_then(|s| s.into_string().ok())
        .filter(|s| !s.is_empty())
}

pub fn set_tenant_local(tenant: Option<Uuid>) {
    let value = tenant.map(|t| t.to_string()).unwrap_or_default();
    set_local(gucs::TENANT_GUC, &value);
}

pub fn set_actor_local(actor: &str) {
    set_local(gucs::ACTOR_GUC, actor);
}

fn set_local(name: &CStr, value: &str) {
    // Interior NULs cannot come from a uuid; an actor with one is refused earlier.
    let value = CString::new(value).unwrap_or_default();
    // SAFETY: both strings are valid NUL-terminated C strings for the call;
    // PGC_SUSET lets our code (and only our code) change a superuser-only
    // setting on behalf of any role, as a SECURITY DEFINER SET would.
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_LOCAL,
            true,
            pgrx::PgLogLevel::ERROR as i32,
            false,
        );
    }
}

/// Whether the caller is inside BEGIN … COMMIT (otherwise a local setting
/// lasts only for the current statement).
pub fn in_transaction_block() -> bool {
    // SAFETY: reads backend-local transaction state.
    unsafe { pg_sys::IsTransactionBlock() }
}

fn parse_uuid(text: &[u8]) -> Option<Uuid> {
    uuid::Uuid::try_parse_ascii(text).ok().map(|u| Uuid::from_bytes(*u.as_bytes()))
}
