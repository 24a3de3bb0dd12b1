//! Backup and restore: `pg_dump -Fc` of a database with rows in every d5
//! table (entities, cost data ingested, rolled up and partitioned by
//! maintenance, archived partitions, the audit log, configuration), restored
//! with `pg_restore --exit-on-error` (plainly, in one transaction, and in
//! parallel by the README's recipe) into a fresh
//! cluster. Everything comes back, chains verify against a digest taken
//! before the dump, isolation and tokens hold, and life goes on.

use std::process::Command;

use super::*;

const NOW: &str = "2024-03-12 06:00+00";

struct Seed {
    a: Uuid,
    b: Uuid,
    account_a: Uuid,
    token_a: String,
}

/// Puts rows into every d5 table, the way applications and operators do.
fn populate(db: &TestDb) -> Seed {
    let mut su = db.superuser();
    let (_, mut admin) = db.login("d5_admin");
    let (_, mut app) = db.login("d5_app");
    let a: Uuid = admin.query_one("SELECT d5.create_tenant('alpha', 'pro')", &[]).unwrap().get(0);
    let b: Uuid = admin.query_one("SELECT d5.create_tenant('beta', 'starter')", &[]).unwrap().get(0);
    let c: Uuid = admin.query_one("SELECT d5.create_tenant('gamma', 'free')", &[]).unwrap().get(0);
    admin.execute("SELECT d5.suspend_tenant($1)", &[&c]).unwrap();
    // Configuration: edited retention (daily rollups archived), a schema bound for one tenant.
    admin
        .batch_execute(
            "UPDATE d5.retention_policies SET retention = '10 days' WHERE table_name = 'd5.cost_metrics_raw'::regclass;
             UPDATE d5.retention_policies SET action = 'archive' WHERE table_name = 'd5.cost_metrics_daily'::regclass;
             SELECT d5.register_json_schema('team_tags', '{\"type\": \"object\", \"required\": [\"team\"]}');",
        )
        .unwrap();
    admin.execute("SELECT d5.bind_json_schema('d5.resources', 'tags', 'team_tags', $1)", &[&b]).unwrap();
    let mut accounts = Vec::new();
    for (t, name) in [(a, "alpha"), (b, "beta")] {
        let account = as_tenant(&mut app, t, |tx| {
            tx.execute("SELECT d5.set_actor($1)", &[&format!("ops@{name}.example")]).unwrap();
            for i in 0..5 {
                tx.execute(
                    "INSERT INTO d5.users (email, display_name, role) VALUES ($1, $2, 'member')",
                    &[&format!("u{i}@{name}.example"), &format!("User {i}")],
                )
                .unwrap();
            }
            let account: Uuid = tx
                .query_one(
                    "INSERT INTO d5.cloud_accounts (provider, external_account_id, credentials_ref)
                     VALUES ('aws', $1, 'vault://secret/' || $1) RETURNING id",
                    &[&format!("acct-{name}")],
                )
                .unwrap()
                .get(0);
            for i in 0..4 {
                let r: Uuid = tx
                    .query_one(
                        "INSERT INTO d5.resources (account_id, resource_type, provider_resource_id, region, tags)
                         VALUES ($1, 'ec2:instance', $2, 'us-east-1', jsonb_build_object('team', 'web')) RETURNING id",
                        &[&account, &format!("i-{name}-{i}")],
                    )
                    .unwrap()
                    .get(0);
                tx.execute(
                    "INSERT INTO d5.recommendations (resource_id, type, impact) VALUES ($1, 'rightsize',
                       '{\"estimated_monthly_savings\": 12.5, \"currency\": \"USD\", \"confidence\": 0.8}')",
                    &[&r],
                )
                .unwrap();
            }
            tx.batch_execute(
                "INSERT INTO d5.policies (name, type, thresholds) VALUES
                   ('budget', 'budget', '{\"amount\": 100, \"currency\": \"USD\", \"period\": \"monthly\"}'),
                   ('alerts', 'budget', NULL);
                 UPDATE d5.users SET role = 'admin' WHERE email LIKE 'u0@%';
                 DELETE FROM d5.users WHERE email LIKE 'u4@%';
                 UPDATE d5.recommendations SET status = 'accepted' WHERE id = (SELECT min(id::text)::uuid FROM d5.recommendations);",
            )
            .unwrap();
            account
        });
        accounts.push(account);
        // Cost data: March 2024 (kept), January 2022 (rolled up, then its daily partition archived).
        let (ins, rej, _, _) = ingest(&mut app, t, account, &focus_csv("111", &days("2024-03-08", 4), 6, 150, 2)).unwrap();
        assert_eq!((ins, rej), (24, 2));
        ingest(&mut app, t, account, &focus_csv("222", &days("2022-01-05", 2), 4, 99, 0)).unwrap();
    }
    for _ in 0..2 {
        let (status, failed) = maintain(&mut admin, NOW);
        assert!(failed.is_empty() && status == "ok", "{status} {failed:?}");
    }
    assert_eq!(
        super::count(&mut su, "SELECT count(*) FROM d5.archived_partitions"),
        1,
        "the January 2022 daily partition is archived"
    );
    // Rows beyond the premade partitions wait in the DEFAULT partitions.
    ingest(&mut app, a, accounts[0], &focus_csv("333", &days("2024-09-01", 1), 3, 500, 0)).unwrap();
    assert!(super::count(&mut su, "SELECT count(*) FROM d5.cost_metrics_raw_default") > 0);
    let token_a: String = admin.query_one("SELECT d5.mint_tenant_token($1, '1 day')", &[&a]).unwrap().get(0);
    Seed { a, b, account_a: accounts[0], token_a }
}

/// Per table of d5 and d5_archive: row count and content checksum; plus the
/// partitions' bounds, indexes, triggers and the sequences.
fn snapshot(su: &mut Client) -> Vec<String> {
    su.batch_execute("SET TimeZone = 'UTC'").unwrap();
    let mut out: Vec<String> = su
        .query(
            "SELECT format('%s %s %s', c.oid::regclass, k.row_count, k.checksum)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
                    LATERAL d5.partition_checksum(c.oid::regclass) k
              WHERE n.nspname IN ('d5', 'd5_archive') AND c.relkind = 'r'
                AND c.oid NOT IN ('d5.json_schemas'::regclass, 'd5.json_schema_bindings'::regclass,
                                  'd5.retention_policies'::regclass)
              ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // CREATE EXTENSION makes the shipped schemas and default policies again,
    // stamped with the time of the new install: compare what they say.
    for sql in [
        "SELECT format('schema %s', s) FROM d5.json_schemas s WHERE NOT shipped
         UNION ALL SELECT format('shipped schema %s %s %s', name, version, schema) FROM d5.json_schemas WHERE shipped
         ORDER BY 1",
        "SELECT format('binding %s', b) FROM d5.json_schema_bindings b WHERE NOT shipped
         UNION ALL SELECT format('shipped binding %s %s %s', table_name, column_name, schema_name)
           FROM d5.json_schema_bindings WHERE shipped ORDER BY 1",
        "SELECT format('policy %s %s %s %s', table_name, retention, action, updated_by) FROM d5.retention_policies ORDER BY 1",
    ] {
        out.extend(su.query(sql, &[]).unwrap().iter().map(|r| r.get::<_, String>(0)));
    }
    for sql in [
        "SELECT format('bound %s %s', c.oid::regclass, pg_get_expr(c.relpartbound, c.oid)) FROM pg_class c
          WHERE c.relispartition AND c.relnamespace = 'd5'::regnamespace ORDER BY 1",
        "SELECT format('index %s', indexdef) FROM pg_indexes WHERE schemaname IN ('d5', 'd5_archive') ORDER BY 1",
        "SELECT format('trigger %s %s %s', tgrelid::regclass, tgname, tgenabled) FROM pg_trigger t
           JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace IN ('d5'::regnamespace, 'd5_archive'::regnamespace)
            AND NOT tgisinternal ORDER BY 1",
        "SELECT format('sequence %s %s', s.oid::regclass, pg_sequence_last_value(s.oid)) FROM pg_class s
          WHERE s.relkind = 'S' AND s.relnamespace = 'd5'::regnamespace ORDER BY 1",
    ] {
        out.extend(su.query(sql, &[]).unwrap().iter().map(|r| r.get::<_, String>(0)));
    }
    out
}

/// Removes the dump file at the end, also when the test fails.
struct TempFile(String);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn restore(bin: &str, cluster: &ExtraCluster, db: &str, dump: &str, extra: &[&str]) {
    cluster.connect("postgres", "postgres").batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
    let conn = format!("host=127.0.0.1 port={} user=postgres dbname={db}", cluster.port);
    let out = Command::new(format!("{bin}/pg_restore"))
        .args(["--exit-on-error", "-d", &conn])
        .args(extra)
        .arg(dump)
        .output()
        .expect("run pg_restore");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "pg_restore {extra:?} into {db}:\n{stderr}");
}

/// The README's parallel recipe: schema, then the extension's own tables
/// serially (their foreign keys exist already), then the partitions' data
/// and the indexes with -j 2.
fn restore_parallel(bin: &str, cluster: &ExtraCluster, db: &str, dump: &str) {
    let list = Command::new(format!("{bin}/pg_restore")).args(["-l", dump]).output().expect("pg_restore -l");
    assert!(list.status.success());
    let toc = String::from_utf8_lossy(&list.stdout).to_string();
    let partition_data = |l: &&str| {
        l.contains(" TABLE DATA d5_archive ")
            || (l.contains(" TABLE DATA d5 ")
                && l.split_whitespace().nth(6).and_then(|t| t.rsplit_once("_p")).is_some_and(|(_, d)| d.bytes().all(|b| b.is_ascii_digit())))
    };
    let (parts, own): (Vec<&str>, Vec<&str>) = toc
        .lines()
        .filter(|l| l.contains(" TABLE DATA ") || l.contains(" SEQUENCE SET "))
        .partition(partition_data);
    assert!(parts.len() > 10, "{parts:?}");
    let write = |name: &str, lines: &[&str]| {
        let path = format!("{dump}.{name}");
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        TempFile(path)
    };
    let (parts, own) = (write("parts", &parts), write("own", &own));
    restore(bin, cluster, db, dump, &["--section=pre-data"]);
    let conn = format!("host=127.0.0.1 port={} user=postgres dbname={db}", cluster.port);
    for args in [
        vec!["--section=data", "-L", own.0.as_str()],
        vec!["--section=data", "-j", "2", "-L", parts.0.as_str()],
        vec!["--section=post-data", "-j", "2"],
    ] {
        let out = Command::new(format!("{bin}/pg_restore"))
            .args(["--exit-on-error", "-d", &conn])
            .args(&args)
            .arg(dump)
            .output()
            .expect("run pg_restore");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && stderr.trim().is_empty(), "pg_restore {args:?} into {db}:\n{stderr}");
    }
}

#[test]
fn a_dump_restored_into_a_fresh_cluster_gives_back_everything() {
    let src = TestDb::new();
    let seed = populate(&src);
    let mut su = src.superuser();
    let (_, mut auditor) = src.login("d5_auditor");
    assert!(bad_chains(&mut auditor).is_empty());
    let digest: serde_json::Value = auditor.query_one("SELECT d5.audit_digest()", &[]).unwrap().get(0);
    // Indexes live on the partitions, each like its DEFAULT partition's, so
    // that pg_restore's ATTACH builds none of them (see sql/partitions.sql).
    let misfits: Vec<String> = su
        .query(
            "SELECT format('%s: %s indexes, its default %s', i.inhrelid::regclass,
                           (SELECT count(*) FROM pg_index x WHERE x.indrelid = i.inhrelid),
                           (SELECT count(*) FROM pg_index x WHERE x.indrelid = (i.inhparent::regclass::text || '_default')::regclass))
               FROM pg_inherits i JOIN d5.partition_config p ON p.parent = i.inhparent
              WHERE (SELECT count(*) FROM pg_index x WHERE x.indrelid = i.inhrelid)
                    <> (SELECT count(*) FROM pg_index x WHERE x.indrelid = (i.inhparent::regclass::text || '_default')::regclass)
             UNION ALL
             SELECT format('partitioned index %s', c.oid::regclass) FROM pg_class c
              WHERE c.relkind = 'I' AND c.relnamespace = 'd5'::regnamespace",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(misfits.is_empty(), "{misfits:#?}");
    let before = snapshot(&mut su);
    // Every table that is part of the extension has rows (so the comparison means something).
    let empty: Vec<String> = su
        .query(
            "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_depend d ON d.objid = c.oid AND d.deptype = 'e'
              WHERE c.relkind = 'r' AND c.relnamespace = 'd5'::regnamespace
                AND NOT EXISTS (SELECT 1 FROM d5.partition_checksum(c.oid::regclass) k WHERE k.row_count > 0)
              ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Rejects are kept per ingest; the cost DEFAULT partitions other than raw
    // are empty once maintenance has made the partitions ahead.
    let expected_empty =
        ["d5.audit_log_default", "d5.cost_metrics_daily_default", "d5.cost_metrics_hourly_default", "d5.cost_metrics_monthly_default"];
    assert!(empty.iter().all(|t| expected_empty.contains(&t.as_str())), "tables left empty: {empty:?}");
    let heads: Vec<(Uuid, i64)> =
        su.query("SELECT tenant_id, seq FROM d5.audit_chain_heads", &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect();
    let last_run: i64 = su.query_one("SELECT max(id) FROM d5.maintenance_runs", &[]).unwrap().get(0);

    let bin = bindir();
    let c = cluster();
    let file = TempFile(format!("{}/res_{}_{}.dump", std::env::temp_dir().display(), std::process::id(), src.name));
    let conn = format!("host={} port={} user=postgres dbname={}", c.host, c.port, src.name);
    let out = Command::new(format!("{bin}/pg_dump")).args(["-Fc", "-f", &file.0, "-d", &conn]).output().expect("pg_dump");
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));

    let fresh = ExtraCluster::start("res_restore", &[]);
    // A plain -j restore fails: it loads tables in parallel regardless of the
    // foreign keys between extension tables (which CREATE EXTENSION has
    // already made), so a referencing table can come first. Hence the recipe.
    restore(&bin, &fresh, "d5r", &file.0, &[]);
    restore(&bin, &fresh, "d5r_single", &file.0, &["--single-transaction"]);
    restore_parallel(&bin, &fresh, "d5r_parallel", &file.0);
    for db in ["d5r", "d5r_single", "d5r_parallel"] {
        let mut su2 = fresh.connect(db, "postgres");
        let after = snapshot(&mut su2);
        let missing: Vec<_> = before.iter().filter(|l| !after.contains(l)).collect();
        let extra: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
        assert!(missing.is_empty() && extra.is_empty(), "{db}: differs after restore\nlost: {missing:#?}\ngained: {extra:#?}");
        let findings: Vec<String> =
            su2.query("SELECT check_name || ' ' || object FROM d5.self_check()", &[]).unwrap().iter().map(|r| r.get(0)).collect();
        assert!(findings.is_empty(), "{db}: self_check after restore: {findings:?}");
    }

    let db = "d5r";
    let (_, mut auditor2) = login_on(&fresh, db, "d5_auditor");
    let verified: Vec<(bool, Option<String>)> = auditor2
        .query("SELECT ok, reason FROM d5.verify_audit_digest($1)", &[&digest])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(verified.len() >= 3 && verified.iter().all(|v| v.0), "digest after restore: {verified:?}");

    // Isolation, as an ordinary application login of the new cluster.
    let (_, mut app) = login_on(&fresh, db, "d5_app");
    let n: i64 = app.query_one("SELECT count(*) FROM d5.users", &[]).unwrap().get(0);
    assert_eq!(n, 0, "no tenant, no rows");
    let err = app.batch_execute("INSERT INTO d5.users (tenant_id, email) VALUES (gen_random_uuid(), 'x@y.z')").unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    for (t, other) in [(seed.a, seed.b), (seed.b, seed.a)] {
        let (mine, theirs, cost): (i64, i64, String) = as_tenant(&mut app, t, |tx| {
            let r = tx
                .query_one(
                    "SELECT (SELECT count(*) FROM d5.users), (SELECT count(*) FROM d5.resources WHERE tenant_id = $1)
                            + (SELECT count(*) FROM d5.cost_metrics_raw WHERE tenant_id = $1),
                            (SELECT sum(billed_cost)::text FROM d5.daily_costs('2024-03-01', '2024-03-31'))",
                    &[&other],
                )
                .unwrap();
            (r.get(0), r.get(1), r.get(2))
        });
        assert_eq!((mine, theirs, cost.as_str()), (4, 0, "36.00"), "tenant {t} after restore");
    }
    // A token minted before the dump still works; a forged one does not.
    let mut tx = app.transaction().unwrap();
    tx.execute("SELECT d5.set_tenant($1, $2)", &[&seed.a, &seed.token_a]).unwrap();
    let me: Uuid = tx.query_one("SELECT d5.current_tenant()", &[]).unwrap().get(0);
    assert_eq!(me, seed.a);
    tx.rollback().unwrap();
    let last = if seed.token_a.ends_with('A') { 'B' } else { 'A' };
    let forged = format!("{}{last}", &seed.token_a[..seed.token_a.len() - 1]);
    let err = app.execute("SELECT d5.set_tenant($1, $2)", &[&seed.a, &forged]).unwrap_err();
    assert_eq!(sqlstate(&err), "28000");

    // Life goes on: maintenance, new cost data, new audited writes that continue the chains.
    let (_, mut admin) = login_on(&fresh, db, "d5_admin");
    for now in [NOW, "2024-03-25 06:00+00"] {
        let (status, failed) = maintain(&mut admin, now);
        assert!(failed.is_empty() && status == "ok", "maintenance at {now} after restore: {status} {failed:?}");
    }
    let run: i64 = admin.query_one("SELECT max(id) FROM d5.maintenance_runs", &[]).unwrap().get(0);
    assert!(run > last_run + 1, "the run id sequence was restored ({run} after {last_run})");
    let (ins, _, _, _) = ingest(&mut app, seed.a, seed.account_a, &focus_csv("444", &days("2024-03-20", 1), 2, 100, 0)).unwrap();
    assert_eq!(ins, 2);
    as_tenant(&mut app, seed.a, |tx| tx.execute("INSERT INTO d5.users (email) VALUES ('new@alpha.example')", &[]).unwrap());
    // Only a superuser's COPY counts as a restore; an application's COPY
    // into a d5 table is refused by row-level security altogether.
    let mut tx = app.transaction().unwrap();
    tx.execute("SELECT d5.set_tenant($1)", &[&seed.a]).unwrap();
    let refused = tx.copy_in("COPY d5.users (email) FROM STDIN").err().expect("COPY refused");
    assert_eq!(sqlstate(&refused), "0A000");
    drop(tx);
    let mut su2 = fresh.connect(db, "postgres");
    let head_a = heads.iter().find(|h| h.0 == seed.a).expect("a chain of tenant a").1;
    let new_seqs: Vec<i64> = su2
        .query("SELECT seq FROM d5.audit_log WHERE tenant_id = $1 AND seq > $2 ORDER BY seq", &[&seed.a, &head_a])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // The ingest and the insert are recorded right after the old head of a's chain.
    assert!(new_seqs.len() >= 2 && new_seqs.iter().zip(head_a + 1..).all(|(s, want)| *s == want), "{new_seqs:?} after {head_a}");
    assert!(bad_chains(&mut auditor2).is_empty(), "{:?}", bad_chains(&mut auditor2));
    let still: bool = auditor2.query_one("SELECT bool_and(ok) FROM d5.verify_audit_digest($1)", &[&digest]).unwrap().get(0);
    assert!(still, "the old digest still verifies the longer chains");
}
