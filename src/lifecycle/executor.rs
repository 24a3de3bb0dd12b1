//! One maintenance run: begin, plan each step, do each item, finish (the
//! SQL side of each is in sql/lifecycle_steps.sql).
//!
//! In a background worker every call runs in a transaction of its own, so a
//! lock is held for one action only and progress is committed as it goes.
//! Called from SQL without a worker, everything runs in the caller's
//! transaction.

use std::panic::AssertUnwindSafe;

use pgrx::bgworkers::BackgroundWorker;
use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};
use pgrx::pg_sys;
use pgrx::spi::SpiHeapTupleData;
use pgrx::Spi;

use crate::error::spi;

/// The steps of a run, in order.
pub const STEPS: [&str; 5] = ["premake", "move", "rollup", "retention", "tablespace"];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// In the transaction of the SQL caller.
    Transaction,
    /// In a dynamic background worker started by `d5.run_maintenance()`.
    Worker,
    /// In the scheduling background worker (shared_preload_libraries).
    Scheduler,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Transaction => "transaction",
            Mode::Worker => "worker",
            Mode::Scheduler => "scheduler",
        }
    }
}

pub struct Run {
    pub id: i64,
    pub now: TimestampWithTimeZone,
    pub mode: Mode,
    pub requested_by: String,
}

/// One recorded action, as much of it as a NOTICE or a log line needs.
pub struct Action {
    pub seq: i32,
    pub step: String,
    pub action: String,
    pub target: String,
    pub status: String,
    pub rows: Option<i64>,
    pub ms: f64,
    pub reason: Option<String>,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "d5 maintenance: ")?;
        if self.step != self.action {
            write!(f, "{} ", self.step)?;
        }
        write!(f, "{} {}: {}", self.action, self.target, self.status)?;
        if let Some(rows) = self.rows {
            write!(f, ", {rows} rows")?;
        }
        write!(f, ", {:.0} ms", self.ms)?;
        if let Some(reason) = &self.reason {
            write!(f, " ({reason})")?;
        }
        Ok(())
    }
}

/// How a run ended, from `d5._maint_finish`.
pub struct Outcome {
    pub status: String,
    pub actions: i32,
    pub skipped: i32,
    pub failed: i32,
    pub ms: f64,
}

/// The columns [`Action::from_row`] reads, from d5.maintenance_actions or _maint_do.
pub const ACTION_COLUMNS: &str = "seq, step, action, coalesce(partition, table_name, ''), status, rows,
     extract(epoch FROM duration) * 1000, reason";

impl Action {
    pub fn from_row(row: &SpiHeapTupleData) -> Action {
        Action {
            seq: spi(row.get::<i32>(1)).unwrap_or(0),
            step: spi(row.get::<String>(2)).unwrap_or_default(),
            action: spi(row.get::<String>(3)).unwrap_or_default(),
            target: spi(row.get::<String>(4)).unwrap_or_default(),
            status: spi(row.get::<String>(5)).unwrap_or_default(),
            rows: spi(row.get::<i64>(6)),
            ms: spi(row.get::<pgrx::AnyNumeric>(7)).map(|n| f64::try_from(n).unwrap_or(0.0)).unwrap_or(0.0),
            reason: spi(row.get::<String>(8)),
        }
    }
}

struct Item {
    parent: Option<pg_sys::Oid>,
    part: Option<pg_sys::Oid>,
    at: Option<TimestampWithTimeZone>,
    action: String,
}

/// Runs `f` in a transaction of its own in a worker, or as is in the caller's.
pub fn tx<R>(mode: Mode, f: impl FnOnce() -> R) -> R {
    match mode {
        Mode::Transaction => f(),
        Mode::Worker | Mode::Scheduler => BackgroundWorker::transaction(AssertUnwindSafe(f)),
    }
}

/// Executes the run; `on_action` sees every recorded action as it happens.
/// `None` when another run held the maintenance lock (recorded as busy).
pub fn execute(run: &Run, on_action: &mut dyn FnMut(&Action)) -> Option<Outcome> {
    if !tx(run.mode, || begin(run)) {
        tx(run.mode, || busy_action(run)).iter().for_each(&mut *on_action);
        return None;
    }
    for step in STEPS {
        let items = tx(run.mode, || plan(run, step));
        for item in &items {
            for action in tx(run.mode, || do_item(run, step, item)) {
                on_action(&action);
            }
        }
    }
    Some(tx(run.mode, || finish(run.id, None)))
}

/// Whether any step has something to do as of `now` (see d5._maint_has_work).
pub fn has_work(now: TimestampWithTimeZone) -> bool {
    Spi::connect_mut(|client| {
        let table = spi(client.update("SELECT d5._maint_has_work($1)", Some(1), &[now.into()]));
        spi(table.first().get_one::<bool>()).unwrap_or(true)
    })
}

fn begin(run: &Run) -> bool {
    let args: [DatumWithOid; 4] =
        [run.id.into(), run.now.into(), run.mode.label().into(), run.requested_by.as_str().into()];
    Spi::connect_mut(|client| {
        let table = spi(client.update("SELECT d5._maint_begin($1, $2, $3, $4)", Some(1), &args));
        spi(table.first().get_one::<bool>()).unwrap_or(false)
    })
}

fn busy_action(run: &Run) -> Vec<Action> {
    actions_after(run.id, 0)
}

/// Recorded actions of `run` after `seq` (a fresh snapshot each call, so a
/// waiting caller sees what a worker has committed).
pub fn actions_after(run: i64, seq: i32) -> Vec<Action> {
    let query =
        format!("SELECT {ACTION_COLUMNS} FROM d5.maintenance_actions WHERE run_id = $1 AND seq > $2 ORDER BY seq");
    Spi::connect_mut(|client| {
        let rows = spi(client.update(&query, None, &[run.into(), seq.into()]));
        rows.map(|r| Action::from_row(&r)).collect()
    })
}

fn plan(run: &Run, step: &str) -> Vec<Item> {
    let args: [DatumWithOid; 3] = [run.id.into(), step.into(), run.now.into()];
    Spi::connect_mut(|client| {
        let rows = spi(client.update(
            "SELECT parent::oid, part::oid, at, action FROM d5._maint_plan($1, $2, $3)",
            None,
            &args,
        ));
        rows.map(|r| Item {
            parent: spi(r.get::<pg_sys::Oid>(1)),
            part: spi(r.get::<pg_sys::Oid>(2)),
            at: spi(r.get::<TimestampWithTimeZone>(3)),
            action: spi(r.get::<String>(4)).unwrap_or_default(),
        })
        .collect()
    })
}

fn do_item(run: &Run, step: &str, item: &Item) -> Vec<Action> {
    let query =
        format!("SELECT {ACTION_COLUMNS} FROM d5._maint_do($1, $2, $3::oid::regclass, $4::oid::regclass, $5, $6, $7)");
    let args: [DatumWithOid; 7] = [
        run.id.into(),
        step.into(),
        item.parent.into(),
        item.part.into(),
        item.at.into(),
        item.action.as_str().into(),
        run.now.into(),
    ];
    Spi::connect_mut(|client| {
        let rows = spi(client.update(&query, None, &args));
        rows.map(|r| Action::from_row(&r)).collect()
    })
}

/// Closes the run (and, for a worker, releases the run lock).
pub fn finish(run: i64, error: Option<&str>) -> Outcome {
    Spi::connect_mut(|client| {
        let table = spi(client.update(
            "SELECT status, actions, skipped, failed, extract(epoch FROM finished_at - started_at) * 1000
               FROM d5._maint_finish($1, $2)",
            Some(1),
            &[run.into(), error.into()],
        ));
        let row = table.first();
        Outcome {
            status: spi(row.get::<String>(1)).unwrap_or_else(|| "unknown".into()),
            actions: spi(row.get::<i32>(2)).unwrap_or(0),
            skipped: spi(row.get::<i32>(3)).unwrap_or(0),
            failed: spi(row.get::<i32>(4)).unwrap_or(0),
            ms: spi(row.get::<pgrx::AnyNumeric>(5)).map(|n| f64::try_from(n).unwrap_or(0.0)).unwrap_or(0.0),
        }
    })
}
