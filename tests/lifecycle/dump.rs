//! pg_dump / pg_restore carry the lifecycle state: edited retention
//! policies (over the defaults CREATE EXTENSION makes again), the run
//! history, the archive catalog and the archived partitions themselves.

use std::io::Write as _;
use std::process::{Command, Stdio};

use super::*;

/// (policies, archive catalog, runs, audit records) of a database, as text.
fn state(su: &mut Client) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT format('%s %s %s %s', table_name, retention, action, updated_by) FROM d5.retention_policies ORDER BY 1",
        "SELECT format('%s %s %s %s %s', archived_table, parent_table, range_from, row_count, checksum)
           FROM d5.archived_partitions ORDER BY 1",
        "SELECT format('%s %s %s %s', id, mode, status, actions) FROM d5.maintenance_runs ORDER BY id",
        "SELECT format('maintenance and policy audit records: %s', count(*)) FROM d5.audit_log
          WHERE operation = 'MAINTENANCE' OR table_name = 'd5.retention_policies'",
    ] {
        out.extend(su.query(sql, &[]).unwrap().iter().map(|r| r.get::<_, String>(0)));
    }
    out
}

#[test]
fn dump_and_restore_keep_policies_history_and_archive() {
    let src = TestDb::new();
    let (_, mut admin) = src.login("d5_admin");
    let (t, a) = tenant_with_account(&src, "acme");
    let mut su = src.superuser();
    su.batch_execute("SET TimeZone = 'UTC'").unwrap();
    admin
        .batch_execute(
            "UPDATE d5.retention_policies SET retention = '10 days' WHERE table_name = 'd5.cost_metrics_raw'::regclass;
             UPDATE d5.retention_policies SET action = 'archive' WHERE table_name = 'd5.cost_metrics_daily'::regclass",
        )
        .unwrap();
    ingest_day(&mut su, t, a, "2022-01-05", 4, 100);
    maintain(&mut admin, "2022-01-07 00:00+00");
    let acts = maintain(&mut admin, "2024-02-02 00:00+00");
    assert!(acts.iter().any(|x| x.action == "archive" && x.status == "done"), "{acts:#?}");
    let before = state(&mut su);

    let dst = TestDb::new();
    dst.superuser().batch_execute("DROP EXTENSION d5_storage CASCADE; DROP SCHEMA d5 CASCADE").unwrap();
    let c = cluster();
    let bin = bindir();
    let conn = |db: &str| format!("host={} port={} user=postgres dbname={db}", c.host, c.port);
    let dump = Command::new(format!("{bin}/pg_dump")).args(["-Fc", "-d", &conn(&src.name)]).output().expect("pg_dump");
    assert!(dump.status.success(), "pg_dump: {}", String::from_utf8_lossy(&dump.stderr));
    let mut restore = Command::new(format!("{bin}/pg_restore"))
        .args(["--exit-on-error", "-d", &conn(&dst.name)])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pg_restore");
    restore.stdin.take().unwrap().write_all(&dump.stdout).unwrap();
    let out = restore.wait_with_output().unwrap();
    // Dated partitions carry their own indexes (see sql/partitions.sql), so
    // nothing of the restore fails.
    assert!(out.status.success(), "pg_restore: {}", String::from_utf8_lossy(&out.stderr));

    let mut su2 = dst.superuser();
    su2.batch_execute("SET TimeZone = 'UTC'").unwrap();
    assert_eq!(state(&mut su2), before, "state after restore");
    let (_, mut auditor) = dst.login("d5_auditor");
    assert_chains_ok(&mut auditor, "after restore");
    let ok: bool = auditor
        .query_one(
            "SELECT a.checksum = c.checksum FROM d5.archived_partitions a,
                    d5.partition_checksum(a.archived_table::regclass) c",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(ok, "the restored archive differs from its catalog row");
    // The restored database maintains on from where it was.
    let (_, mut admin2) = dst.login("d5_admin");
    let acts = maintain(&mut admin2, "2024-02-02 00:00+00");
    assert_eq!(actions(&acts).len(), 0, "{acts:#?}");
    assert_eq!(run_row(&acts).status, "ok");
}
