//! Background workers.
//!
//! * `d5_maintenance_run_main`: a dynamic worker that `d5.run_maintenance()`
//!   starts for one run, so the run can commit after every action (a
//!   function cannot), and that the caller waits for.
//! * `d5_maintenance_scheduler_main`: with `shared_preload_libraries =
//!   'd5_storage'`, runs maintenance every `d5.maintenance_interval` seconds
//!   in `d5.maintenance_database`. An error in one run is logged and the loop
//!   goes on; SIGTERM (server shutdown) stops it.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::Spi;

use super::executor::{self, Mode, Run};
use super::LifecycleError;
use crate::error::spi;
use crate::gucs;

pub const LIBRARY: &str = "d5_storage";

/// What the caller hands to its run worker (bgw_extra holds at most 127 bytes).
pub struct RunArgs {
    pub database: pg_sys::Oid,
    pub owner: pg_sys::Oid,
    pub requester: pg_sys::Oid,
    pub now: i64,
    pub lock_timeout_ms: i32,
    pub lock_retries: i32,
    pub archive_tablespace: String,
}

impl RunArgs {
    pub fn encode(&self) -> Result<String, LifecycleError> {
        let s = format!(
            "{} {} {} {:x} {} {} {}",
            self.database.to_u32(),
            self.owner.to_u32(),
            self.requester.to_u32(),
            // The bit pattern: `{:x}` of a negative i64 (before 2000) would not parse back.
            self.now as u64,
            self.lock_timeout_ms,
            self.lock_retries,
            self.archive_tablespace
        );
        if s.len() > 127 {
            return Err(LifecycleError::WorkerArgs(s.len()));
        }
        Ok(s)
    }

    pub fn decode(s: &str) -> Option<RunArgs> {
        let mut it = s.splitn(7, ' ');
        let oid = |v: Option<&str>| v?.parse::<u32>().ok().map(pg_sys::Oid::from);
        Some(RunArgs {
            database: oid(it.next())?,
            owner: oid(it.next())?,
            requester: oid(it.next())?,
            now: u64::from_str_radix(it.next()?, 16).ok()? as i64,
            lock_timeout_ms: it.next()?.parse().ok()?,
            lock_retries: it.next()?.parse().ok()?,
            archive_tablespace: it.next().unwrap_or("").to_string(),
        })
    }
}

// SAFETY: declares Postgres' `void die(SIGNAL_ARGS)` (tcop/tcopprot.h) with its C signature.
unsafe extern "C-unwind" {
    /// Postgres' backend SIGTERM handler (pgrx's `pg_sys::die` is a Rust wrapper, not a handler).
    #[link_name = "die"]
    fn postgres_die(signal: std::ffi::c_int);
}

/// SIGTERM ends the process at the next interrupt check, as in a backend,
/// so a long run stops promptly on shutdown or TerminateBackgroundWorker.
fn die_on_sigterm() {
    // SAFETY: installs Postgres' own `die` handler for SIGTERM, then unblocks
    // signals, as every background worker must once at start.
    unsafe {
        pg_sys::pqsignal(pg_sys::SIGTERM as i32, Some(postgres_die));
        pg_sys::BackgroundWorkerUnblockSignals();
    }
}

/// Starts a worker for run `run_id`; the caller waits for it.
pub fn start_run_worker(
    run_id: i64,
    args: &RunArgs,
) -> Result<pgrx::bgworkers::DynamicBackgroundWorker, LifecycleError> {
    let extra = args.encode()?;
    // SAFETY: MyProcPid is set for the life of a backend.
    let me = unsafe { pg_sys::MyProcPid };
    BackgroundWorkerBuilder::new(&format!("d5 maintenance run {run_id}"))
        .set_type("d5 maintenance run")
        .set_library(LIBRARY)
        .set_function("d5_maintenance_run_main")
        .set_argument(Some(pg_sys::Datum::from(run_id)))
        .set_extra(&extra)
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(None)
        .set_notify_pid(me)
        .load_dynamic()
        .map_err(|_| LifecycleError::NoWorkerSlot)
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn d5_maintenance_run_main(arg: pg_sys::Datum) {
    die_on_sigterm();
    let run_id = arg.value() as i64;
    let Some(args) = RunArgs::decode(BackgroundWorker::get_extra()) else {
        pgrx::warning!("d5 maintenance run {run_id}: unreadable worker arguments");
        return;
    };
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(args.database), Some(args.owner));
    let Ok(now) = TimestampWithTimeZone::try_from(args.now) else {
        pgrx::warning!("d5 maintenance run {run_id}: bad timestamp");
        return;
    };
    let requested_by = BackgroundWorker::transaction(|| {
        // The caller's settings, so the run behaves as it would in the
        // caller; and asynchronous commit (see async_commit).
        for (name, value) in [
            ("d5.maintenance_lock_timeout", args.lock_timeout_ms.to_string()),
            ("d5.maintenance_lock_retries", args.lock_retries.to_string()),
            ("d5.archive_tablespace", args.archive_tablespace.clone()),
            ("synchronous_commit", "off".into()),
            // As in every SECURITY DEFINER function: nothing planted in a
            // schema on the default path can run as the owner.
            ("search_path", "pg_catalog, pg_temp".into()),
        ] {
            spi(Spi::run_with_args(
                "SELECT pg_catalog.set_config($1, $2, false)",
                &[name.into(), value.as_str().into()],
            ));
        }
        spi(Spi::get_one_with_args::<String>(
            "SELECT coalesce((SELECT rolname::text FROM pg_roles WHERE oid = $1), 'oid:' || $1::text)",
            &[args.requester.into()],
        ))
        .unwrap_or_default()
    });
    let run = Run { id: run_id, now, mode: Mode::Worker, requested_by };
    if let Err(message) = execute_guarded(&run, &mut |_| {}) {
        pgrx::warning!("d5 maintenance run {run_id} failed: {message}");
    }
}

/// Executes `run`; an error is caught, the failed transaction left, and the
/// run closed as failed (its lock released), so this process can go on.
fn execute_guarded(
    run: &Run,
    on_action: &mut dyn FnMut(&executor::Action),
) -> Result<Option<executor::Outcome>, String> {
    let result = PgTryBuilder::new(AssertUnwindSafe(|| Ok(executor::execute(run, on_action))))
        .catch_others(|e| Err(caught_message(&e)))
        .execute();
    if let Err(message) = &result {
        // SAFETY: leaves the failed transaction (a no-op outside one), as a
        // backend does after an error, so the next transaction starts clean.
        unsafe { pg_sys::AbortCurrentTransaction() };
        close_failed_run(Some(run.id), message);
    }
    result
}

/// Each action commits on its own; a crash may lose the last few, which is
/// harmless: an action and its audit record are lost together and the next
/// run does it again. Saves a WAL flush per action. And the search_path of
/// a SECURITY DEFINER function, since the worker runs as a superuser.
fn async_commit() {
    BackgroundWorker::transaction(|| {
        spi(Spi::run(
            "SELECT pg_catalog.set_config('synchronous_commit', 'off', false),
                    pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false)",
        ))
    });
}

/// Registers the scheduler; only while shared_preload_libraries loads us.
pub fn register_scheduler() {
    // SAFETY: a plain read of a global flag set by the postmaster.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    BackgroundWorkerBuilder::new("d5 maintenance scheduler")
        .set_type("d5 maintenance scheduler")
        .set_library(LIBRARY)
        .set_function("d5_maintenance_scheduler_main")
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        // Only reached if the worker exits with an error outside a run (say,
        // its database does not exist yet).
        .set_restart_time(Some(Duration::from_secs(10)))
        .load();
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn d5_maintenance_scheduler_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP);
    die_on_sigterm();
    let database = gucs::text(&gucs::MAINTENANCE_DATABASE);
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    async_commit();
    log!("d5 maintenance scheduler started in database \"{database}\"");
    let mut last_start = Instant::now();
    let mut warned_missing = false;
    loop {
        let interval = gucs::MAINTENANCE_INTERVAL.get();
        let wait = if interval <= 0 {
            Duration::from_secs(3600)
        } else {
            Duration::from_secs(interval as u64).saturating_sub(last_start.elapsed())
        };
        // Returns early on SIGHUP; SIGTERM never returns here (die).
        if !wait.is_zero() && !BackgroundWorker::wait_latch(Some(wait)) {
            break;
        }
        if BackgroundWorker::sighup_received() {
            // SAFETY: the documented way for a worker to re-read its configuration.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            if gucs::text(&gucs::MAINTENANCE_DATABASE) != database {
                // A worker stays in the database it connected to: exit with
                // an error so the postmaster starts it again (10 s).
                log!("d5 maintenance scheduler: d5.maintenance_database changed, restarting");
                // SAFETY: ends this worker process the way Postgres does.
                unsafe { pg_sys::proc_exit(1) };
            }
            continue;
        }
        if interval <= 0 || last_start.elapsed() < Duration::from_secs(interval as u64) {
            continue;
        }
        last_start = Instant::now();
        run_once(&database, &mut warned_missing);
    }
    log!("d5 maintenance scheduler stopping");
}

/// One scheduled run; an error is logged and the caller's loop goes on.
fn run_once(database: &str, warned_missing: &mut bool) {
    let prepared = PgTryBuilder::new(AssertUnwindSafe(|| {
        BackgroundWorker::transaction(|| {
            let installed =
                spi(Spi::get_one::<bool>("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'd5_storage')"))
                    .unwrap_or(false);
            if !installed {
                return Ok(None);
            }
            let id = spi(Spi::get_one::<i64>("SELECT nextval('d5.maintenance_run_seq')")).unwrap_or(0);
            let now = spi(Spi::get_one::<TimestampWithTimeZone>("SELECT now()"));
            Ok(now.map(|now| (id, now)))
        })
    }))
    .catch_others(|e| Err(caught_message(&e)))
    .execute();
    let (id, now) = match prepared {
        Ok(Some(x)) => x,
        Ok(None) => {
            if !*warned_missing {
                log!("d5 maintenance: extension d5_storage is not installed in database \"{database}\"; waiting");
                *warned_missing = true;
            }
            return;
        }
        Err(message) => {
            // SAFETY: as in execute_guarded.
            unsafe { pg_sys::AbortCurrentTransaction() };
            pgrx::warning!("d5 maintenance: could not start a run: {message}");
            return;
        }
    };
    *warned_missing = false;
    let run = Run { id, now, mode: Mode::Scheduler, requested_by: "d5 maintenance scheduler".into() };
    let log_skips = &mut |a: &executor::Action| {
        if a.status != "done" {
            log!("{a}");
        }
    };
    match execute_guarded(&run, log_skips) {
        Ok(None) => log!("d5 maintenance run {id}: another run is in progress; skipped"),
        Ok(Some(o)) => log!(
            "d5 maintenance run {id}: {}, {} actions, {} skipped, {} failed, {:.0} ms",
            o.status,
            o.actions,
            o.skipped,
            o.failed,
            o.ms
        ),
        Err(message) => pgrx::warning!("d5 maintenance run {id} failed: {message}"),
    }
}

/// Marks a failed run and releases the run lock, whatever state d5 is in.
fn close_failed_run(run_id: Option<i64>, message: &str) {
    let closed = PgTryBuilder::new(AssertUnwindSafe(|| {
        BackgroundWorker::transaction(|| {
            if let Some(id) = run_id {
                executor::finish(id, Some(message));
            }
        });
        true
    }))
    .catch_others(|_| false)
    .execute();
    if !closed {
        // SAFETY: as above.
        unsafe { pg_sys::AbortCurrentTransaction() };
    }
    BackgroundWorker::transaction(|| spi(Spi::run("SELECT pg_advisory_unlock_all()")));
}

pub fn caught_message(e: &pg_sys::panic::CaughtError) -> String {
    match e {
        pg_sys::panic::CaughtError::PostgresError(r) | pg_sys::panic::CaughtError::ErrorReport(r) => {
            r.message().to_string()
        }
        pg_sys::panic::CaughtError::RustPanic { ereport, .. } => ereport.message().to_string(),
    }
}
