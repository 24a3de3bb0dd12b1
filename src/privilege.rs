//! Running a piece of Rust as the extension owner, the way a SECURITY
//! DEFINER function runs as its owner — for the audit writer, which must
//! insert into tables no application role may write.

use std::cell::Cell;

use pgrx::pg_sys;

use crate::error::{raise, InternalError};

thread_local! {
    static OWNER: Cell<Option<pg_sys::Oid>> = const { Cell::new(None) };
}

/// The role that owns the extension (and so its tables), cached per backend.
fn extension_owner() -> pg_sys::Oid {
    if let Some(owner) = OWNER.with(Cell::get) {
        return owner;
    }
    let owner = crate::error::spi(pgrx::Spi::get_one::<pg_sys::Oid>(
        "SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'd5_storage'",
    ))
    .unwrap_or_else(|| raise(InternalError("extension d5_storage is not installed".into())));
    OWNER.with(|c| c.set(Some(owner)));
    owner
}

/// Runs `f` with the extension owner as current user.
///
/// If `f` raises an error, Postgres' (sub)transaction abort restores the
/// previous user, exactly as for a SECURITY DEFINER function.
pub fn as_extension_owner<R>(f: impl FnOnce() -> R) -> R {
    let owner = extension_owner();
    let mut saved_user = pg_sys::Oid::INVALID;
    let mut saved_context = 0;
    // SAFETY: plain reads/writes of backend-local user state; the flag
    // SECURITY_LOCAL_USERID_CHANGE forbids SET ROLE while switched.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(
            owner,
            saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
        );
    }
    let result = f();
    // SAFETY: restores exactly what was saved above.
    unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_context) };
    result
}

/// Name of the current user (before any switch).
pub fn current_user_name() -> String {
    // SAFETY: GetUserId is always valid in a backend; GetUserNameFromId
    // returns a palloc'd C string or errors.
    unsafe { role_name(pg_sys::GetUserId()) }
}

/// Name of the session (login) user, when it differs from the current user.
pub fn session_user_if_different() -> Option<String> {
    // SAFETY: as above.
    unsafe {
        let session = pg_sys::GetSessionUserId();
        (session != pg_sys::GetUserId()).then(|| role_name(session))
    }
}

unsafe fn role_name(role: pg_sys::Oid) -> String {
    // SAFETY: caller passes a role oid; noerr=true returns NULL for a dropped role.
    let name = unsafe { pg_sys::GetUserNameFromId(role, true) };
    if name.is_null() {
        return format!("oid:{}", role.to_u32());
    }
    // SAFETY: non-NULL result is a NUL-terminated C string.
    unsafe { std::ffi::CStr::from_ptr(name) }.to_string_lossy().into_owned()
}
