//! Statements parsed and planned once per backend and kept (SPI_keepplan),
//! for functions on the path of every application transaction: there,
//! parsing and planning a one-row lookup costs more than running it.
//!
//! Postgres re-plans a kept plan itself when what it depends on changes (a
//! function or table is replaced, statistics move, the role differs where
//! row security applies), and, like any prepared statement, parses it again
//! under the search_path in force when it runs if that differs from last
//! time. So a statement kept here names every object with its schema, and
//! one with operators runs only where the search_path is pinned.

use std::cell::OnceCell;
use std::thread::LocalKey;

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::Spi;

use crate::error::spi;

/// Where one statement's plan is kept: a `thread_local!` of this type per
/// statement, so that running one statement may run another (a function
/// called by the first) without borrowing the same cell twice.
pub type Kept = OnceCell<OwnedPreparedStatement>;

/// Runs `f` with the plan of `sql` (argument types `types`), preparing it on
/// first use in this backend.
pub fn with<R>(
    kept: &'static LocalKey<Kept>,
    sql: &str,
    types: &[pg_sys::Oid],
    f: impl FnOnce(&OwnedPreparedStatement) -> R,
) -> R {
    kept.with(|cell| {
        let plan = cell.get_or_init(|| {
            let types: Vec<pgrx::PgOid> = types.iter().map(|&oid| oid.into()).collect();
            Spi::connect_mut(|client| spi(client.prepare_mut(sql, &types)).keep())
        });
        f(plan)
    })
}

/// Runs the statement `sql` (argument types `types`) with `args` through its
/// kept plan, for its effect; SPI errors are raised.
pub fn run(kept: &'static LocalKey<Kept>, sql: &str, types: &[pg_sys::Oid], args: &[DatumWithOid<'_>]) {
    with(kept, sql, types, |plan| {
        Spi::connect_mut(|client| {
            spi(client.update(plan, None, args));
        });
    });
}
