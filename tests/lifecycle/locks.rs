//! No stalls: a lock held by a reader makes maintenance skip that step within
//! its lock timeout (and do it next run); a second concurrent run returns at
//! once; a partition with rows not yet rolled up is never dropped.

use std::time::{Duration, Instant};

use super::*;

/// A tenant with raw data on 2024-03-01..03 and maintenance run on 2024-03-04.
fn with_three_days(db: &TestDb, admin: &mut Client) {
    let (t, a) = tenant_with_account(db, "acme");
    let mut su = db.superuser();
    for day in ["2024-03-01", "2024-03-02", "2024-03-03"] {
        ingest_day(&mut su, t, a, day, 3, 100);
    }
    let acts = maintain(admin, "2024-03-04 00:00+00");
    assert_eq!(run_row(&acts).status, "ok", "{acts:#?}");
}

#[test]
fn a_reader_holding_a_lock_makes_maintenance_skip_not_wait() {
    let db = TestDb::new();
    let (_, mut admin) = db.login("d5_admin");
    with_three_days(&db, &mut admin);
    admin.batch_execute("SET d5.maintenance_lock_timeout = '100ms'; SET d5.maintenance_lock_retries = 2").unwrap();

    // A long reader on the oldest raw partition; on 03-11 the partitions of
    // 03-01..03 are due for drop.
    let mut reader = db.superuser();
    reader.batch_execute("BEGIN; LOCK TABLE d5.cost_metrics_raw_p20240301 IN ACCESS SHARE MODE").unwrap();
    let t0 = Instant::now();
    let acts = maintain(&mut admin, "2024-03-11 12:00+00");
    let took = t0.elapsed();
    let raw: Vec<_> = acts.iter().filter(|x| x.table.as_deref() == Some("d5.cost_metrics_raw") && x.action == "drop").collect();
    assert_eq!(raw.len(), 3, "{acts:#?}");
    assert!(raw.iter().all(|x| x.status == "skipped"), "{raw:#?}");
    // 3 attempts of 100 ms plus back-off (at most 150 + 300 ms); the later
    // raw partitions are skipped without waiting again.
    assert!(raw[0].ms < 1500.0 && raw[1].ms < 50.0 && raw[2].ms < 50.0, "{raw:#?}");
    assert!(took < Duration::from_secs(5), "maintenance took {took:?}: {acts:#?}");
    assert!(raw[0].reason.as_deref().unwrap().starts_with("lock not available after 3 attempt(s) of 100 ms"), "{raw:#?}");
    assert_eq!(run_row(&acts).status, "partial");
    // Other tables were not held up: the hourly partitions and premake went ahead.
    assert!(acts.iter().any(|x| x.table.as_deref() == Some("d5.cost_metrics_hourly") && x.status == "done"));
    // The reader was never disturbed.
    assert_eq!(count(&mut reader, "SELECT count(*) FROM d5.cost_metrics_raw_p20240301"), 3);
    reader.batch_execute("COMMIT").unwrap();

    // Next run completes the step.
    let acts = maintain(&mut admin, "2024-03-11 12:00+00");
    assert_eq!(run_row(&acts).status, "ok", "{acts:#?}");
    let dropped: Vec<_> = acts.iter().filter(|x| x.action == "drop" && x.status == "done").collect();
    assert_eq!(dropped.len(), 3, "{acts:#?}");
    let mut su = db.superuser();
    assert_eq!(count(&mut su, "SELECT count(*) FROM d5.cost_metrics_raw WHERE charge_period_start < '2024-03-04'"), 0);

    // A reader of the whole table (all partitions and DEFAULT) blocks making
    // a new partition: skipped within the timeout, done next run.
    let mut reader = db.superuser();
    reader.batch_execute("BEGIN; SELECT count(*) FROM d5.cost_metrics_raw").unwrap();
    let acts = maintain(&mut admin, "2024-03-12 12:00+00");
    let create = acts
        .iter()
        .find(|x| x.table.as_deref() == Some("d5.cost_metrics_raw") && x.action == "create")
        .unwrap_or_else(|| panic!("{acts:#?}"));
    assert_eq!(create.status, "skipped", "{create:?}");
    assert!(create.ms < 1500.0, "{create:?}");
    reader.batch_execute("COMMIT").unwrap();
    let acts = maintain(&mut admin, "2024-03-12 12:00+00");
    assert!(
        acts.iter().any(|x| x.table.as_deref() == Some("d5.cost_metrics_raw") && x.action == "create" && x.status == "done"),
        "{acts:#?}"
    );
    assert_eq!(run_row(&acts).status, "ok");
}

#[test]
fn a_second_run_returns_at_once_and_progress_is_visible() {
    let db = TestDb::new();
    let (_, mut admin) = db.login("d5_admin");
    with_three_days(&db, &mut admin);
    let mut reader = db.superuser();
    reader.batch_execute("BEGIN; LOCK TABLE d5.cost_metrics_raw_p20240301 IN ACCESS SHARE MODE").unwrap();
    let admin_role = db.login("d5_admin").0;
    let slow = std::thread::scope(|s| {
        let first = s.spawn(|| {
            let mut c = db.connect_as(&admin_role);
            // Waits 1 s per attempt on the locked partition: a slow run.
            c.batch_execute("SET d5.maintenance_lock_timeout = '1s'; SET d5.maintenance_lock_retries = 1").unwrap();
            maintain(&mut c, "2024-03-10 12:00+00")
        });
        // Watch it from here: its progress is committed action by action.
        let mut watcher = db.superuser();
        let deadline = Instant::now() + Duration::from_secs(10);
        let progress = loop {
            let rows = watcher
                .query("SELECT step, actions FROM d5.maintenance_progress WHERE step = 'retention'", &[])
                .unwrap();
            if let Some(r) = rows.first() {
                break (r.get::<_, String>(0), r.get::<_, i32>(1));
            }
            assert!(Instant::now() < deadline, "no run in progress was visible");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(progress.1 > 0, "actions done before retention are visible: {progress:?}");
        // A second run now returns at once, saying why.
        let t0 = Instant::now();
        let second = maintain(&mut admin, "2024-03-10 12:00+00");
        assert!(t0.elapsed() < Duration::from_millis(500), "second run waited {:?}", t0.elapsed());
        assert_eq!(second.len(), 1, "{second:#?}");
        assert_eq!((second[0].action.as_str(), second[0].status.as_str()), ("run", "skipped"));
        assert!(second[0].reason.as_deref().unwrap().starts_with("another maintenance run is in progress"));
        first.join().unwrap()
    });
    reader.batch_execute("COMMIT").unwrap();
    assert_eq!(run_row(&slow).status, "partial", "{slow:#?}");
    let mut su = db.superuser();
    let statuses: Vec<String> = su
        .query("SELECT status FROM d5.maintenance_runs ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(statuses, vec!["ok", "partial", "busy"]);
}

#[test]
fn partitions_with_rows_not_rolled_up_are_never_dropped() {
    let db = TestDb::new();
    let (_, mut admin) = db.login("d5_admin");
    let (t, a) = tenant_with_account(&db, "acme");
    let mut su = db.superuser();
    ingest_day(&mut su, t, a, "2024-03-01", 3, 100);
    // Someone holds the pending tenant-day (an ingest still running, say):
    // the rollup skips it, so its raw and hourly partitions must stay.
    let mut holder = db.superuser();
    holder.batch_execute("BEGIN; SELECT * FROM d5.cost_rollup_pending FOR UPDATE").unwrap();
    let acts = maintain(&mut admin, "2024-04-15 00:00+00");
    let raw = acts
        .iter()
        .find(|x| x.partition.as_deref() == Some("d5.cost_metrics_raw_p20240301") && x.action == "drop")
        .unwrap_or_else(|| panic!("{acts:#?}"));
    assert_eq!(raw.status, "skipped", "{raw:?}");
    assert!(raw.reason.as_deref().unwrap().contains("not rolled up yet"), "{raw:?}");
    assert_eq!(count(&mut su, "SELECT count(*) FROM d5.cost_metrics_raw_p20240301"), 3);
    holder.batch_execute("COMMIT").unwrap();
    // Next run rolls it up first, then drops.
    let acts = maintain(&mut admin, "2024-04-15 00:00+00");
    assert_eq!(run_row(&acts).status, "ok", "{acts:#?}");
    assert!(acts.iter().any(|x| x.action == "rollup" && x.rows == Some(1)), "{acts:#?}");
    assert!(acts
        .iter()
        .any(|x| x.partition.as_deref() == Some("d5.cost_metrics_raw_p20240301") && x.action == "drop" && x.status == "done"));
    assert_eq!(count(&mut su, "SELECT count(*) FROM d5.cost_metrics_raw"), 0);
    assert_eq!(count(&mut su, "SELECT sum(row_count)::bigint FROM d5.cost_metrics_daily WHERE day = '2024-03-01'"), 3);
}
