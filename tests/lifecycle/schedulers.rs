//! Scheduling: the background worker (shared_preload_libraries) runs
//! maintenance on its interval, survives failing runs and stops with the
//! server; without preloading, the pg_cron job from the README does the same.
//! Each test starts a cluster of its own with those settings.

use std::time::{Duration, Instant};

use super::*;

/// Waits until `sql` returns true, polling; panics with `what` after `limit`.
fn wait_for(c: &mut Client, sql: &str, limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    loop {
        if c.query_one(sql, &[]).map(|r| r.get::<_, bool>(0)).unwrap_or(false) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn scheduler_pid(c: &mut Client) -> Option<i32> {
    c.query_opt("SELECT pid FROM pg_stat_activity WHERE backend_type = 'd5 maintenance scheduler'", &[])
        .unwrap()
        .map(|r| r.get(0))
}

fn last_run_id(c: &mut Client) -> i64 {
    c.query_one("SELECT coalesce(max(id), 0) FROM d5.maintenance_runs", &[]).unwrap().get(0)
}

#[test]
fn the_background_worker_runs_survives_failures_and_stops_with_the_server() {
    let cluster = ExtraCluster::start(
        "life_bgw",
        &[
            "shared_preload_libraries = 'd5_storage'",
            "d5.maintenance_interval = 1",
            "d5.maintenance_database = 'postgres'",
        ],
    );
    let mut su = cluster.connect("postgres", "postgres");
    let pid = scheduler_pid(&mut su).expect("the scheduler runs from server start");
    su.batch_execute("CREATE EXTENSION d5_storage").unwrap();
    wait_for(
        &mut su,
        "SELECT EXISTS (SELECT 1 FROM d5.maintenance_runs WHERE mode = 'scheduler' AND status = 'ok')",
        Duration::from_secs(20),
        "a scheduled run",
    );
    // It made the partitions ahead, like a manual run.
    let made = count(&mut su, "SELECT count(*) FROM d5.maintenance_actions WHERE action = 'create' AND status = 'done'");
    assert!(made > 14, "{made} partitions made");

    // A broken registry row makes an action of each run fail ...
    su.batch_execute(
        "CREATE TABLE public.not_partitioned (t timestamptz);
         INSERT INTO d5.partition_config VALUES ('public.not_partitioned', 'day', 1)",
    )
    .unwrap();
    wait_for(
        &mut su,
        "SELECT EXISTS (SELECT 1 FROM d5.maintenance_runs WHERE mode = 'scheduler' AND status = 'failed')",
        Duration::from_secs(20),
        "a failed run",
    );
    // ... and a broken history table makes whole runs fail.
    su.batch_execute("ALTER TABLE d5.maintenance_runs ADD CONSTRAINT broken CHECK (id < 0) NOT VALID").unwrap();
    std::thread::sleep(Duration::from_millis(3500));
    assert!(cluster.server_log().contains("d5 maintenance run"), "failures are logged");
    assert!(cluster.server_log().contains("failed: new row for relation \"maintenance_runs\" violates check constraint"),
        "the failed run is logged:\n{}", cluster.server_log());
    assert_eq!(scheduler_pid(&mut su), Some(pid), "the scheduler was restarted instead of surviving");
    // Fixed, the next runs succeed again, in the same process.
    su.batch_execute(
        "ALTER TABLE d5.maintenance_runs DROP CONSTRAINT broken;
         DELETE FROM d5.partition_config WHERE parent = 'public.not_partitioned'::regclass",
    )
    .unwrap();
    let after = last_run_id(&mut su);
    wait_for(
        &mut su,
        &format!("SELECT EXISTS (SELECT 1 FROM d5.maintenance_runs WHERE id > {after} AND status = 'ok')"),
        Duration::from_secs(20),
        "a good run after the fix",
    );
    assert_eq!(scheduler_pid(&mut su), Some(pid));
    assert!(cluster.server_log().contains("d5 maintenance run") && cluster.server_log().contains(": ok, "), "runs are logged");
    drop(su);
    // Stops with the server, promptly.
    let took = cluster.stop();
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    let log = cluster.server_log();
    assert!(
        log.contains("terminating background worker \"d5 maintenance scheduler\" due to administrator command"),
        "{log}"
    );
}

#[test]
fn the_pg_cron_job_from_the_readme_runs_maintenance() {
    let cluster = ExtraCluster::start(
        "life_cron",
        &["shared_preload_libraries = 'pg_cron'", "cron.database_name = 'postgres'", "cron.host = '127.0.0.1'"],
    );
    let mut su = cluster.connect("postgres", "postgres");
    su.batch_execute("CREATE EXTENSION pg_cron; CREATE EXTENSION d5_storage").unwrap();
    // The README's job, then the same command every minute (pg_cron 1.4 has
    // no seconds schedule).
    su.batch_execute("SELECT cron.schedule('d5-maintenance', '*/5 * * * *', 'SELECT d5.run_maintenance()')").unwrap();
    let command: String =
        su.query_one("SELECT command FROM cron.job WHERE jobname = 'd5-maintenance'", &[]).unwrap().get(0);
    su.batch_execute(&format!(
        "SELECT cron.unschedule('d5-maintenance'); SELECT cron.schedule('d5-maintenance-test', '* * * * *', $${command}$$)"
    ))
    .unwrap();
    wait_for(
        &mut su,
        "SELECT EXISTS (SELECT 1 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                         WHERE j.jobname = 'd5-maintenance-test' AND d.status = 'succeeded')",
        Duration::from_secs(75),
        "a pg_cron run of d5.run_maintenance()",
    );
    let (mode, status): (String, String) = {
        let r = su.query_one("SELECT mode, status FROM d5.maintenance_runs ORDER BY id LIMIT 1", &[]).unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((mode.as_str(), status.as_str()), ("worker", "ok"));
    assert!(count(&mut su, "SELECT count(*) FROM d5.maintenance_actions WHERE action = 'create'") > 14);
    drop(su);
    cluster.stop();
}
