//! Data lifecycle: partitions made ahead, stray rows moved out of DEFAULT
//! partitions, rollups, retention (drop or archive) — `d5.run_maintenance`.
//!
//! The SQL steps live in sql/lifecycle*.sql; this module decides where a run
//! executes (a background worker committing each action, or the caller's
//! transaction), relays its progress as NOTICEs, and hosts the workers.

pub mod executor;
pub mod worker;

use std::time::Duration;

use pgrx::bgworkers::BackgroundWorkerStatus;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::error::{raise, spi, SqlError};
use crate::gucs;
use executor::{Mode, Run};
use worker::RunArgs;

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("no background worker slot is free (max_worker_processes)")]
    NoWorkerSlot,
    #[error("maintenance worker arguments too long ({0} bytes)")]
    WorkerArgs(usize),
    #[error("the maintenance worker could not be started: {0}")]
    WorkerStart(String),
    #[error("maintenance run {0} ended without finishing: the worker stopped ({1})")]
    WorkerDied(i64, String),
}

impl SqlError for LifecycleError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            LifecycleError::NoWorkerSlot => PgSqlErrorCode::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
            _ => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        }
    }
    fn hint(&self) -> Option<String> {
        matches!(self, LifecycleError::WorkerDied(..))
            .then(|| "The server log has the worker's error; d5.maintenance_runs has the run.".into())
    }
}

/// Executes one maintenance run and returns its id (the SQL wrapper
/// `d5.run_maintenance` reads the recorded actions). Only the SECURITY
/// DEFINER wrapper calls this, so the current user is the extension owner.
#[pg_extern(volatile, parallel_unsafe)]
fn _run_maintenance(now: TimestampWithTimeZone) -> i64 {
    let run_id = spi(Spi::get_one::<i64>("SELECT nextval('d5.maintenance_run_seq')")).unwrap_or(0);
    let requested_by = spi(Spi::get_one::<String>("SELECT session_user::text")).unwrap_or_default();
    // A worker's commits are invisible to a transaction-wide snapshot.
    // SAFETY: plain read of a backend-global.
    let snapshot_per_transaction = unsafe { pg_sys::XactIsoLevel } >= pg_sys::XACT_REPEATABLE_READ as i32;
    // With nothing to do there is no lock to hold long: run here, and spare
    // the worker start (most runs of a schedule are like that).
    if gucs::MAINTENANCE_IN_WORKER.get()
        && !snapshot_per_transaction
        && !another_run_holds_the_lock()
        && executor::has_work(now)
    {
        match run_in_worker(run_id, now) {
            Ok(()) => return run_id,
            Err(e @ (LifecycleError::NoWorkerSlot | LifecycleError::WorkerStart(_))) => {
                pgrx::notice!("d5 maintenance: {e}; running in this transaction instead");
            }
            Err(e) => raise(e),
        }
    }
    let run = Run { id: run_id, now, mode: Mode::Transaction, requested_by };
    executor::execute(&run, &mut |a| pgrx::notice!("{a}"));
    run_id
}

/// True when a run is under way now. Then the caller records a busy run in
/// its own transaction (d5._maint_begin) instead of starting a worker.
fn another_run_holds_the_lock() -> bool {
    let free = spi(Spi::get_one::<bool>(
        "SELECT pg_try_advisory_lock(d5._maintenance_lock_key())
                AND pg_advisory_unlock(d5._maintenance_lock_key())",
    ));
    free != Some(true)
}

fn run_in_worker(run_id: i64, now: TimestampWithTimeZone) -> Result<(), LifecycleError> {
    // SAFETY: plain reads of backend-global identity.
    let (database, owner, requester) =
        unsafe { (pg_sys::MyDatabaseId, pg_sys::GetUserId(), pg_sys::GetSessionUserId()) };
    let args = RunArgs {
        database,
        owner,
        requester,
        now: pg_sys::TimestampTz::from(now),
        lock_timeout_ms: gucs::MAINTENANCE_LOCK_TIMEOUT.get(),
        lock_retries: gucs::MAINTENANCE_LOCK_RETRIES.get(),
        archive_tablespace: gucs::text(&gucs::ARCHIVE_TABLESPACE),
    };
    let handle = worker::start_run_worker(run_id, &args)?;
    match handle.wait_for_startup() {
        Ok(_) | Err(BackgroundWorkerStatus::Stopped) => {}
        Err(status) => return Err(LifecycleError::WorkerStart(format!("{status:?}"))),
    }
    let mut seen = 0;
    let outcome = loop {
        for a in executor::actions_after(run_id, seen) {
            pgrx::notice!("{a}");
            seen = a.seq;
        }
        match handle.pid() {
            Ok(_) | Err(BackgroundWorkerStatus::NotYetStarted) => {}
            Err(status) => break status,
        }
        // SAFETY: the standard latch wait of a backend; the worker's exit
        // (bgw_notify_pid) and any interrupt set our latch.
        unsafe {
            pg_sys::WaitLatch(
                pg_sys::MyLatch,
                (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
                Duration::from_millis(20).as_millis() as _,
                pg_sys::PG_WAIT_EXTENSION,
            );
            pg_sys::ResetLatch(pg_sys::MyLatch);
            // Cancelled (or terminated) while waiting: stop the worker too,
            // then let Postgres raise the interrupt.
            if pg_sys::QueryCancelPending != 0 || pg_sys::ProcDiePending != 0 {
                let _ = handle.terminate();
                pg_sys::check_for_interrupts!();
                return Ok(());
            }
        }
    };
    for a in executor::actions_after(run_id, seen) {
        pgrx::notice!("{a}");
    }
    let status =
        spi(Spi::get_one_with_args::<String>(
        "SELECT (SELECT status FROM d5.maintenance_runs WHERE id = $1)",
        &[run_id.into()],
    ));
    match status.as_deref() {
        Some("running") | None => {
            // The worker died before closing its run; record that here.
            let reason = format!("{outcome:?}");
            spi(Spi::run_with_args(
                "INSERT INTO d5.maintenance_runs (id, as_of, mode, requested_by, status, finished_at, error)
                 VALUES ($1, $2, 'worker', session_user, 'failed', clock_timestamp(), $3)
                 ON CONFLICT (id) DO UPDATE SET status = 'failed', finished_at = clock_timestamp(),
                                                error = excluded.error",
                &[
                    run_id.into(),
                    now.into(),
                    "the maintenance worker stopped before finishing its run; see the server log".into(),
                ],
            ));
            pgrx::warning!("{}", LifecycleError::WorkerDied(run_id, reason));
            Ok(())
        }
        _ => Ok(()),
    }
}
