//! Lifecycle: d5.run_maintenance premakes partitions, moves stray rows out of
//! DEFAULT partitions, rolls up, and retires old partitions (drop or archive)
//! without stalling on locks. Maintenance is always called by a LOGIN role
//! granted d5_admin; the superuser only loads data and inspects.

mod common;

#[path = "lifecycle/dump.rs"]
mod dump;
#[path = "lifecycle/locks.rs"]
mod locks;
#[path = "lifecycle/replay.rs"]
mod replay;
#[path = "lifecycle/schedulers.rs"]
mod schedulers;

use common::*;
use uuid::Uuid;

/// One row of d5.run_maintenance().
#[derive(Debug, Clone)]
pub struct Act {
    pub step: String,
    pub table: Option<String>,
    pub partition: Option<String>,
    pub action: String,
    pub status: String,
    pub rows: Option<i64>,
    pub digest: Option<String>,
    pub reason: Option<String>,
    pub ms: f64,
}

/// Runs maintenance as of `now` (a timestamptz literal); returns every row.
pub fn maintain(c: &mut Client, now: &str) -> Vec<Act> {
    c.query(
        "SELECT step, table_name, partition, action, status, rows, digest, reason,
                (extract(epoch FROM duration) * 1000)::float8
           FROM d5.run_maintenance($1::text::timestamptz)",
        &[&now],
    )
    .unwrap_or_else(|e| panic!("run_maintenance({now}): {e:?}"))
    .iter()
    .map(|r| Act {
        step: r.get(0),
        table: r.get(1),
        partition: r.get(2),
        action: r.get(3),
        status: r.get(4),
        rows: r.get(5),
        digest: r.get(6),
        reason: r.get(7),
        ms: r.get(8),
    })
    .collect()
}

/// The closing 'run' row.
pub fn run_row(acts: &[Act]) -> &Act {
    acts.iter().find(|a| a.action == "run").expect("a run row")
}

/// The actions that are not the closing row.
pub fn actions(acts: &[Act]) -> Vec<&Act> {
    acts.iter().filter(|a| a.action != "run").collect()
}

/// A tenant with one AWS account; returns (tenant, account).
pub fn tenant_with_account(db: &TestDb, name: &str) -> (Uuid, Uuid) {
    let t = db.create_tenant(name);
    let mut su = db.superuser();
    let a: Uuid = su
        .query_one(
            "INSERT INTO d5.cloud_accounts (tenant_id, provider, external_account_id) VALUES ($1, 'aws', $2) RETURNING id",
            &[&t, &name],
        )
        .unwrap()
        .get(0);
    (t, a)
}

/// Inserts `n` raw cost rows for `day` (a date literal), one per hour, each
/// costing `cents` cents, and marks the tenant-day pending — what
/// d5.ingest_focus does.
pub fn ingest_day(su: &mut Client, t: Uuid, a: Uuid, day: &str, n: i32, cents: i64) {
    su.execute(
        "INSERT INTO d5.cost_metrics_raw (tenant_id, cloud_account_id, billed_cost, effective_cost, list_cost,
                contracted_cost, billing_account_id, billing_currency, billing_period_start, billing_period_end,
                charge_category, charge_period_start, charge_period_end, provider_name, service_name, ingest_batch_id)
         SELECT $1, $2, c, c, c, c, 'acct', 'USD',
                date_trunc('month', d), date_trunc('month', d) + interval '1 month', 'Usage',
                d + h * interval '1 hour', d + (h + 1) * interval '1 hour', 'AWS',
                CASE WHEN h % 2 = 0 THEN 'EC2' ELSE 'S3' END, gen_random_uuid()
           FROM (SELECT $3::text::date::timestamp AT TIME ZONE 'UTC' AS d, round($5::bigint::numeric / 100, 2) AS c) x,
                generate_series(0, $4 - 1) h",
        &[&t, &a, &day, &n, &cents],
    )
    .unwrap();
    su.execute(
        "INSERT INTO d5.cost_rollup_pending (tenant_id, day) VALUES ($1, $2::text::date) ON CONFLICT DO NOTHING",
        &[&t, &day],
    )
    .unwrap();
}

/// Lower bounds (UTC text) of the non-default partitions of `table`.
pub fn partitions(su: &mut Client, table: &str) -> Vec<String> {
    su.query(
        "SELECT to_char(lo AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM d5._partitions($1::text::regclass)
          WHERE NOT is_default ORDER BY lo",
        &[&table],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

pub fn count(su: &mut Client, sql: &str) -> i64 {
    su.query_one(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e:?}")).get(0)
}

/// Every chain verifies (as a d5_auditor login).
pub fn assert_chains_ok(auditor: &mut Client, context: &str) {
    let bad: Vec<(Uuid, Option<i64>, Option<String>)> = auditor
        .query("SELECT tenant_id, first_bad_seq, reason FROM d5.verify_audit_chain() WHERE NOT ok", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(bad.is_empty(), "{context}: audit chains broken: {bad:?}");
}

pub const TABLES: [&str; 5] = [
    "d5.cost_metrics_raw",
    "d5.cost_metrics_hourly",
    "d5.cost_metrics_daily",
    "d5.cost_metrics_monthly",
    "d5.audit_log",
];

/// Rows left in the DEFAULT partitions, per table.
pub fn default_rows(su: &mut Client) -> Vec<(String, i64)> {
    let sql = TABLES
        .iter()
        .map(|t| format!("SELECT '{t}'::text, count(*) FROM {t}_default"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    su.query(&format!("SELECT * FROM ({sql}) s WHERE count > 0"), &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[test]
fn stray_rows_leave_the_default_partitions_and_old_ones_are_retired() {
    let db = TestDb::new();
    let (_, mut admin) = db.login("d5_admin");
    let (t, a) = tenant_with_account(&db, "acme");
    let mut su = db.superuser();
    // No maintenance has run: every row lands in a DEFAULT partition.
    ingest_day(&mut su, t, a, "2024-03-10", 4, 150);
    ingest_day(&mut su, t, a, "2024-03-11", 2, 100);
    // A daily rollup row of 2021: older than its 2 years, stray in DEFAULT.
    su.batch_execute(&format!(
        "INSERT INTO d5.cost_metrics_daily VALUES ('{t}', '{a}', '2021-06-01', 'EC2', '', 'Usage', 'USD', 1, 1, 1, 1, NULL, NULL, 1)"
    ))
    .unwrap();
    let strays = default_rows(&mut su);
    assert_eq!(strays.len(), 3, "{strays:?}"); // raw, daily, audit_log (tenant and account creation)
                                               // The old row's checksum as it will be recorded for its drop.
    su.batch_execute(
        "CREATE TABLE public.old_daily AS SELECT * FROM d5.cost_metrics_daily_default WHERE day < '2022-01-01'",
    )
    .unwrap();
    let expected_digest: String =
        su.query_one("SELECT checksum FROM d5.partition_checksum('public.old_daily')", &[]).unwrap().get(0);

    let acts = maintain(&mut admin, "2024-03-12 06:00+00");
    assert_eq!(run_row(&acts).status, "ok", "{acts:#?}");
    let moved: Vec<_> = actions(&acts).into_iter().filter(|x| x.action == "move").collect();
    let moved_raw: Vec<_> = moved.iter().filter(|x| x.table.as_deref() == Some("d5.cost_metrics_raw")).collect();
    assert_eq!(moved_raw.iter().map(|x| x.rows.unwrap()).sum::<i64>(), 6, "{moved:#?}");
    assert!(moved.iter().all(|x| x.status == "done"), "{moved:#?}");
    assert_eq!(default_rows(&mut su), vec![], "DEFAULT partitions must end empty");
    // The raw rows are in their day partitions, and were rolled up.
    assert_eq!(count(&mut su, "SELECT count(*) FROM d5.cost_metrics_raw_p20240310"), 4);
    assert_eq!(count(&mut su, "SELECT count(*) FROM d5.cost_metrics_raw_p20240311"), 2);
    assert_eq!(count(&mut su, "SELECT sum(row_count)::bigint FROM d5.cost_metrics_daily_p202403"), 6);
    assert_eq!(count(&mut su, "SELECT count(*) FROM d5.cost_rollup_pending"), 0);
    // The 2021 row was moved into a partition of its own, then dropped by retention.
    let dropped = acts
        .iter()
        .find(|x| x.action == "drop" && x.partition.as_deref() == Some("d5.cost_metrics_daily_p202106"))
        .unwrap_or_else(|| panic!("no drop of the 2021-06 partition: {acts:#?}"));
    assert_eq!((dropped.rows, dropped.digest.as_deref()), (Some(1), Some(expected_digest.as_str())));
    assert_eq!(count(&mut su, "SELECT count(*) FROM d5.cost_metrics_daily WHERE day < '2022-01-01'"), 0);
    // Each action is in the system audit chain with its row count and digest.
    let audited = count(
        &mut su,
        "SELECT count(*) FROM d5.audit_log WHERE tenant_id = '00000000-0000-0000-0000-000000000000'
            AND operation = 'MAINTENANCE' AND table_name = 'd5.cost_metrics_daily' AND row_count = 1
            AND rows_digest IS NOT NULL AND detail->>'action' = 'drop'",
    );
    assert_eq!(audited, 1);
    // Idempotent: nothing left to do.
    let again = maintain(&mut admin, "2024-03-12 06:00+00");
    assert_eq!(actions(&again).len(), 0, "{again:#?}");
    let (_, mut auditor) = db.login("d5_auditor");
    assert_chains_ok(&mut auditor, "after maintenance");
}

#[test]
fn the_same_run_in_the_callers_transaction() {
    let db = TestDb::new();
    let (_, mut admin) = db.login("d5_admin");
    let (t, a) = tenant_with_account(&db, "acme");
    let mut su = db.superuser();
    ingest_day(&mut su, t, a, "2024-03-10", 3, 100);
    admin.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ").unwrap();
    let acts = maintain(&mut admin, "2024-03-12 00:00+00");
    // Nothing is visible to others before COMMIT: it all runs in this transaction.
    assert_eq!(count(&mut su, "SELECT count(*) FROM d5.maintenance_runs"), 0);
    admin.batch_execute("COMMIT").unwrap();
    assert_eq!(run_row(&acts).status, "ok", "{acts:#?}");
    let mode: String = su.query_one("SELECT mode FROM d5.maintenance_runs", &[]).unwrap().get(0);
    assert_eq!(mode, "transaction");
    assert_eq!(default_rows(&mut su), vec![]);
    assert_eq!(count(&mut su, "SELECT count(*) FROM d5.cost_metrics_raw_p20240310"), 3);
    // Same outcome with the setting instead of the isolation level.
    admin.batch_execute("SET d5.maintenance_in_worker = off").unwrap();
    let again = maintain(&mut admin, "2024-03-12 00:00+00");
    assert_eq!(actions(&again).len(), 0, "{again:#?}");
}

#[test]
fn only_d5_admin_runs_maintenance_and_edits_retention() {
    let db = TestDb::new();
    let (_, mut app) = db.login("d5_app");
    let (_, mut auditor) = db.login("d5_auditor");
    let (admin_role, mut admin) = db.login("d5_admin");
    for c in [&mut app, &mut auditor] {
        expect_error(c, "SELECT * FROM d5.run_maintenance()", "42501");
        expect_error(c, "UPDATE d5.retention_policies SET retention = '1 day'", "42501");
    }
    for f in [
        "SELECT d5._run_maintenance(now())",
        "SELECT * FROM d5._maint_plan(1, 'premake', now())",
        "SELECT d5._maint_begin(1, now(), 'transaction', 'x')",
        "SELECT * FROM d5._maint_retire(1, 'd5.audit_log', 'd5.audit_log_default', 'drop')",
    ] {
        expect_error(&mut admin, f, "42501");
    }
    let policies: i64 = auditor.query_one("SELECT count(*) FROM d5.retention_policies", &[]).unwrap().get(0);
    assert_eq!(policies, 5);
    let defaults: Vec<(String, String, String)> = admin
        .query("SELECT table_name::text, retention::text, action FROM d5.retention_policies ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let want = [
        ("d5.audit_log", "7 years", "archive"),
        ("d5.cost_metrics_daily", "2 years", "drop"),
        ("d5.cost_metrics_hourly", "30 days", "drop"),
        ("d5.cost_metrics_monthly", "7 years", "drop"),
        ("d5.cost_metrics_raw", "7 days", "drop"),
    ];
    assert_eq!(
        defaults,
        want.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect::<Vec<_>>()
    );
    admin
        .batch_execute(
            "UPDATE d5.retention_policies SET retention = '10 days' WHERE table_name = 'd5.cost_metrics_raw'::regclass",
        )
        .unwrap();
    expect_error(&mut admin, "UPDATE d5.retention_policies SET action = 'shred'", "23514");
    // Only a restore (superuser) may INSERT over an existing policy.
    expect_error(
        &mut admin,
        "INSERT INTO d5.retention_policies VALUES ('d5.cost_metrics_raw', '1 day', 'drop')",
        "23505",
    );
    // The change is audited in the system chain, naming the admin.
    let mut su = db.superuser();
    let who: String = su
        .query_one(
            "SELECT detail->'new'->>'updated_by' FROM d5.audit_log
              WHERE table_name = 'd5.retention_policies' AND operation = 'UPDATE'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(who, admin_role);
    // The history is readable by the auditor, not the app.
    expect_error(&mut app, "SELECT * FROM d5.maintenance_runs", "42501");
    auditor.batch_execute("SELECT * FROM d5.maintenance_actions; SELECT * FROM d5.archived_partitions").unwrap();
}

/// A tablespace in a directory the server owns, dropped with its directory
/// at the end (also when the test fails).
struct Tablespace {
    name: String,
    dir: String,
}

impl Tablespace {
    fn new() -> Tablespace {
        let name = format!("d5ts_{}_{}", std::process::id(), Uuid::new_v4().simple());
        let dir = format!("{}/target/pg/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::create_dir_all(&dir).unwrap();
        std::process::Command::new("chown").args(["postgres:postgres", &dir]).status().unwrap();
        connect("postgres", "postgres").batch_execute(&format!("CREATE TABLESPACE {name} LOCATION '{dir}'")).unwrap();
        Tablespace { name, dir }
    }
}

impl Drop for Tablespace {
    fn drop(&mut self) {
        let mut pg = connect("postgres", "postgres");
        for _ in 0..5 {
            if pg.batch_execute(&format!("DROP TABLESPACE IF EXISTS {}", self.name)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn archive_keeps_old_partitions_readable_checksummed_and_read_only() {
    // Declared first, so it is dropped last: after the database using it.
    let tablespace = Tablespace::new();
    let ts = tablespace.name.clone();
    let db = TestDb::new();
    let (_, mut admin) = db.login("d5_admin");
    let (t, a) = tenant_with_account(&db, "acme");
    let mut su = db.superuser();
    admin
        .batch_execute(&format!(
            "UPDATE d5.retention_policies SET action = 'archive' WHERE table_name = 'd5.cost_metrics_daily'::regclass;
             SET d5.archive_tablespace = '{ts}'"
        ))
        .unwrap();
    ingest_day(&mut su, t, a, "2022-01-05", 5, 200);
    ingest_day(&mut su, t, a, "2022-01-06", 5, 300);
    let first = maintain(&mut admin, "2022-01-07 00:00+00");
    assert_eq!(run_row(&first).status, "ok", "{first:#?}");
    // Two years and a month later the January 2022 daily partition is archived.
    let acts = maintain(&mut admin, "2024-02-02 00:00+00");
    assert_eq!(run_row(&acts).status, "ok", "{acts:#?}");
    let archived = acts
        .iter()
        .find(|x| x.action == "archive" && x.table.as_deref() == Some("d5.cost_metrics_daily"))
        .unwrap_or_else(|| panic!("no archive action: {acts:#?}"));
    assert_eq!(archived.partition.as_deref(), Some("d5_archive.cost_metrics_daily_p202201"));
    assert!(acts.iter().any(|x| x.action == "tablespace" && x.status == "done"), "{acts:#?}");
    assert!(!partitions(&mut su, "d5.cost_metrics_daily").contains(&"2022-01-01".to_string()));
    // The auditor reads it and can check it against the catalog.
    let (_, mut auditor) = db.login("d5_auditor");
    auditor.batch_execute("SET TimeZone = 'UTC'").unwrap();
    let (rows, sum, range, ok): (i64, String, String, bool) = {
        let r = auditor
            .query_one(
                "SELECT a.row_count, (SELECT sum(billed_cost)::text FROM d5_archive.cost_metrics_daily_p202201),
                        tstzrange(a.range_from, a.range_to)::text,
                        a.checksum = (SELECT c.checksum FROM d5.partition_checksum('d5_archive.cost_metrics_daily_p202201') c)
                   FROM d5.archived_partitions a WHERE a.archived_table = 'd5_archive.cost_metrics_daily_p202201'",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3))
    };
    assert_eq!(rows, 4); // two days x two services
    assert_eq!(sum, "25.00");
    assert_eq!(range, "[\"2022-01-01 00:00:00+00\",\"2022-02-01 00:00:00+00\")");
    assert!(ok, "archived checksum differs from the catalog");
    assert!(archived.digest.is_some() && archived.rows == Some(4), "{archived:?}");
    let spc: String = su
        .query_one(
            "SELECT coalesce(t.spcname::text, '') FROM pg_class c LEFT JOIN pg_tablespace t ON t.oid = c.reltablespace
              WHERE c.oid = 'd5_archive.cost_metrics_daily_p202201'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(spc, ts);
    // Read-only for everyone, invisible to the app.
    let (_, mut app) = db.login("d5_app");
    expect_error(&mut app, "SELECT * FROM d5_archive.cost_metrics_daily_p202201", "42501");
    for c in [&mut su, &mut admin] {
        expect_error(c, "DELETE FROM d5_archive.cost_metrics_daily_p202201", "42501");
        expect_error(c, "TRUNCATE d5_archive.cost_metrics_daily_p202201", "42501");
    }
    // The archive outlives the account it refers to (no foreign keys left).
    let fks = count(
        &mut su,
        "SELECT count(*) FROM pg_constraint WHERE conrelid = 'd5_archive.cost_metrics_daily_p202201'::regclass AND contype = 'f'",
    );
    assert_eq!(fks, 0);
    assert_chains_ok(&mut auditor, "after archiving");
}

#[test]
fn old_audit_partitions_are_sealed_then_archived_and_chains_still_verify() {
    let db = TestDb::new();
    let (_, mut admin) = db.login("d5_admin");
    let (_, mut auditor) = db.login("d5_auditor");
    let mut su = db.superuser();
    let t = db.create_tenant("acme");
    // A chain whose records were written monthly in 2015 and 2016 (day 16436 = 2015-01-01).
    let old = Uuid::new_v4();
    let records = replay::backdated_chain(&mut su, old, 16_436, 16_436 + 731);
    assert_eq!(records, 24);
    let first = maintain(&mut admin, "2022-06-01 00:00+00");
    assert_eq!(run_row(&first).status, "ok", "{first:#?}");
    assert_chains_ok(&mut auditor, "before retention");
    // On 2024-06-01 the 2015 and 2016 partitions are older than 7 years.
    let acts = maintain(&mut admin, "2024-06-01 00:00+00");
    let archived: Vec<_> =
        acts.iter().filter(|a| a.table.as_deref() == Some("d5.audit_log") && a.action == "archive").collect();
    assert_eq!(archived.len(), 2, "{acts:#?}");
    assert!(archived.iter().all(|a| a.status == "done" && a.rows == Some(12)), "{archived:#?}");
    assert_eq!(
        count(&mut su, &format!("SELECT count(*) FROM d5.audit_log WHERE tenant_id = '{old}' AND operation <> 'SEAL'")),
        0
    );
    assert_chains_ok(&mut auditor, "after archiving the audit partitions");
    // One seal per archived partition, each anchoring the first record that stays.
    let seals: Vec<(i64, serde_json::Value)> = su
        .query(
            &format!(
                "SELECT seq, detail FROM d5.audit_log WHERE tenant_id = '{old}' AND operation = 'SEAL' ORDER BY seq"
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(seals.len(), 2, "{seals:?}");
    assert_eq!(seals[0].1["records_dropped"], 12);
    // The second seal anchors the first one, now the oldest record left.
    assert_eq!(seals[1].1["first_kept_seq"], seals[0].0);
    // The archived records are still there for the auditor, under their catalog checksum.
    let n: i64 = auditor.query_one("SELECT count(*) FROM d5_archive.audit_log_p2015", &[]).unwrap().get(0);
    assert_eq!(n, 12);
    let ok: bool = auditor
        .query_one(
            "SELECT a.checksum = c.checksum FROM d5.archived_partitions a, d5.partition_checksum('d5_archive.audit_log_p2016') c
              WHERE a.archived_table = 'd5_archive.audit_log_p2016'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(ok);
    // And the records of the live tenant chain were never touched.
    assert!(count(&mut su, &format!("SELECT count(*) FROM d5.audit_log WHERE tenant_id = '{t}'")) >= 1);
}
