//! Every `d5.*` setting, defined in one place.
//!
//! The tenant and actor live in superuser-only settings that only
//! `d5.set_tenant` / `d5.set_actor` change, always with `SET LOCAL`
//! semantics; see `tenancy::context` for why.

use std::ffi::{CStr, CString};

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};

pub const TENANT_GUC: &CStr = c"d5.tenant";
pub const ACTOR_GUC: &CStr = c"d5.actor";

pub static TENANT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static ACTOR: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static REQUIRE_TENANT_TOKEN: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static MAX_DOCUMENT_BYTES: GucSetting<i32> = GucSetting::<i32>::new(1024 * 1024);
pub static JSON_SCHEMA_CACHE_SIZE: GucSetting<i32> = GucSetting::<i32>::new(64);
/// kB of audit records a transaction keeps for its commit (`audit::pending`).
pub static AUDIT_PENDING_LIMIT: GucSetting<i32> = GucSetting::<i32>::new(1024);

/// Flags for the context settings: never read from a file, never shown as
/// something to configure; only our functions set them.
fn context_flags() -> GucFlags {
    GucFlags::NO_SHOW_ALL | GucFlags::DISALLOW_IN_FILE | GucFlags::DISALLOW_IN_AUTO_FILE
}

pub fn init() {
    GucRegistry::define_string_guc(
        TENANT_GUC,
        c"Tenant in force for this transaction (set only by d5.set_tenant).",
        c"Superuser-only so that SET, set_config, ALTER ROLE and placeholders cannot forge it.",
        &TENANT,
        GucContext::Suset,
        context_flags(),
    );
    GucRegistry::define_string_guc(
        ACTOR_GUC,
        c"Application actor recorded in the audit log (set only by d5.set_actor).",
        c"",
        &ACTOR,
        GucContext::Suset,
        context_flags(),
    );
    GucRegistry::define_bool_guc(
        c"d5.require_tenant_token",
        c"When on, d5_app may set a tenant only with a signed token.",
        c"Only a superuser or d5_admin (GRANT SET ON PARAMETER) can change it.",
        &REQUIRE_TENANT_TOKEN,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"d5.max_document_bytes",
        c"Largest JSON document d5 validates; larger ones are refused (54000).",
        c"",
        &MAX_DOCUMENT_BYTES,
        1024,
        256 * 1024 * 1024,
        GucContext::Suset,
        GucFlags::UNIT_BYTE,
    );
    GucRegistry::define_int_guc(
        c"d5.json_schema_cache_size",
        c"Compiled JSON Schema validators kept per session; 0 disables every JSON Schema cache.",
        c"0 makes each validation read and compile its schema again (for benchmarks only).",
        &JSON_SCHEMA_CACHE_SIZE,
        0,
        4096,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"d5.audit_pending_limit",
        c"Audit records a transaction keeps in memory until it commits; past this they join their chains at once.",
        c"A kept record takes its tenant's chain lock only at commit, so a transaction still open does not hold up \
          the tenant's other writers. 0 appends each record when its row changes.",
        &AUDIT_PENDING_LIMIT,
        0,
        256 * 1024,
        GucContext::Userset,
        GucFlags::UNIT_KB,
    );
    define_lifecycle();
    reserve_prefix();
}

/// After this, `SET d5.anything_unknown` fails instead of creating a placeholder.
#[cfg(not(any(feature = "pg13", feature = "pg14")))]
fn reserve_prefix() {
    // SAFETY: called once from _PG_init with a static NUL-terminated name.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"d5".as_ptr()) }
}

#[cfg(any(feature = "pg13", feature = "pg14"))]
fn reserve_prefix() {
    // SAFETY: same as above; PG13/14 call this EmitWarningsOnPlaceholders.
    unsafe { pgrx::pg_sys::EmitWarningsOnPlaceholders(c"d5".as_ptr()) }
}

// ---- Lifecycle (maintenance) settings ----

pub static MAINTENANCE_LOCK_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(100);
pub static MAINTENANCE_LOCK_RETRIES: GucSetting<i32> = GucSetting::<i32>::new(2);
pub static MAINTENANCE_IN_WORKER: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static ARCHIVE_TABLESPACE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static MAINTENANCE_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(300);
pub static MAINTENANCE_DATABASE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));

fn define_lifecycle() {
    GucRegistry::define_int_guc(
        c"d5.maintenance_lock_timeout",
        c"Longest wait of maintenance for any one lock, per attempt.",
        c"A step that cannot get its locks within the attempts is skipped and retried next run.",
        &MAINTENANCE_LOCK_TIMEOUT,
        1,
        60_000,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"d5.maintenance_lock_retries",
        c"How many times maintenance retries a step whose lock it could not get (with back-off).",
        c"",
        &MAINTENANCE_LOCK_RETRIES,
        0,
        10,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"d5.maintenance_in_worker",
        c"When on, d5.run_maintenance() runs in a background worker that commits after every action.",
        c"When off (or in a REPEATABLE READ/SERIALIZABLE transaction) it runs in the caller's transaction.",
        &MAINTENANCE_IN_WORKER,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"d5.archive_tablespace",
        c"Tablespace that archived partitions are moved to (empty: they stay where they are).",
        c"",
        &ARCHIVE_TABLESPACE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"d5.maintenance_interval",
        c"Seconds between two runs of the maintenance background worker (0: the worker stays idle).",
        c"Only with shared_preload_libraries = 'd5_storage'.",
        &MAINTENANCE_INTERVAL,
        0,
        7 * 86_400,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_string_guc(
        c"d5.maintenance_database",
        c"Database in which the maintenance background worker runs d5 maintenance.",
        c"On a change (reload), the worker restarts to connect to the new database.",
        &MAINTENANCE_DATABASE,
        // Not Postmaster: a library loaded after startup may not define those.
        GucContext::Sighup,
        GucFlags::default(),
    );
}

/// A string setting as Rust text ("" when unset).
pub fn text(setting: &GucSetting<Option<CString>>) -> String {
    setting.get().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}
