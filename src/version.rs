//! Which version is running. The loaded library reports its own version;
//! `d5.version()` (sql/version.sql) sets it beside the version of the SQL
//! objects and of the installed control file, and `d5.self_check()` reports
//! a mismatch (an `ALTER EXTENSION d5_storage UPDATE` not yet run).

use pgrx::prelude::*;

/// The version of the shared library loaded by this session.
#[pg_extern(stable, parallel_safe)]
fn _library_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
