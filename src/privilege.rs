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

/// Runs `f` with the extension owner as current user and
/// `search_path = pg_catalog, pg_temp`, as a SECURITY DEFINER function with a
/// pinned search path would: without the pin, a caller could plant an
/// operator or function in its own schema that our queries would then run
/// with the owner's rights.
///
/// If `f` raises an error, Postgres' (sub)transaction abort restores the
/// previous user and settings, exactly as for a SECURITY DEFINER function.
pub fn as_extension_owner<R>(f: impl FnOnce() -> R) -> R {
    let owner = extension_owner();
    let pin = pin_search_path();
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
    restore_gucs(pin);
    result
}

/// Opens a GUC nesting level with `search_path = pg_catalog, pg_temp`; pass
/// the level to [`restore_gucs`] when done (an error instead unwinds it
/// with the aborted (sub)transaction). Settings cannot change in parallel
/// mode: there the queries must qualify every operator themselves (ours do).
pub fn pin_search_path() -> Option<i32> {
    set_local_guc(c"search_path", c"pg_catalog, pg_temp")
}

/// Opens a GUC nesting level with `name = value`, undone by
/// [`restore_gucs`] (or by the abort of the (sub)transaction), like a
/// function's `SET` clause. No-op in parallel mode, where settings are frozen.
pub fn set_local_guc(name: &std::ffi::CStr, value: &std::ffi::CStr) -> Option<i32> {
    set_local(name, value, pg_sys::GucContext::PGC_USERSET)
}

/// [`set_local_guc`] for a superuser-only setting; only for code running as
/// the extension owner (a superuser: the extension requires one to install).
pub fn set_local_superuser_guc(name: &std::ffi::CStr, value: &std::ffi::CStr) -> Option<i32> {
    set_local(name, value, pg_sys::GucContext::PGC_SUSET)
}

fn set_local(name: &std::ffi::CStr, value: &std::ffi::CStr, context: pg_sys::GucContext::Type) -> Option<i32> {
    // SAFETY: reads backend state.
    if unsafe { pg_sys::IsInParallelMode() } {
        return None;
    }
    // SAFETY: opens a level that restore_gucs (or the abort) pops.
    let level = unsafe { pg_sys::NewGUCNestLevel() };
    set_saved(name, value, context);
    Some(level)
}

/// set_config_option with GUC_ACTION_SAVE: undone when the current GUC
/// level is popped.
fn set_saved(name: &std::ffi::CStr, value: &std::ffi::CStr, context: pg_sys::GucContext::Type) {
    // SAFETY: NUL-terminated strings; errors are raised as Postgres errors.
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            context,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            pgrx::PgLogLevel::ERROR as i32,
            false,
        );
    }
}

pub fn restore_gucs(level: Option<i32>) {
    if let Some(level) = level {
        // SAFETY: pops exactly the level opened by set_local_guc.
        unsafe { pg_sys::AtEOXact_GUC(true, level) };
    }
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

/// Whether the current row change comes from a superuser's `COPY … FROM`:
/// that is how pg_restore (and psql with a plain dump) loads the extension's
/// tables, whose triggers CREATE EXTENSION has already made. Those rows are
/// history coming back as it was: their audit records come back with the
/// audit log, and their timestamps with the rows.
pub fn restoring_copy() -> bool {
    // SAFETY: reads backend-local state; ActivePortal is NULL or the portal
    // being run, valid for the duration of the statement.
    unsafe {
        let portal = pg_sys::ActivePortal;
        pg_sys::superuser() && !portal.is_null() && (*portal).commandTag == pg_sys::CommandTag::CMDTAG_COPY
    }
}

/// SQL face of [`restoring_copy`], for the triggers written in SQL.
#[pgrx::pg_extern(volatile, parallel_safe)]
fn _restoring() -> bool {
    restoring_copy()
}
