//! Upgrades. A database created at a released version (`CREATE EXTENSION
//! d5_storage VERSION '0.1.0'`) and used — tenants, audited entities, a cost
//! ingest, a JSON schema, maintenance — then `ALTER EXTENSION d5_storage
//! UPDATE`, must have exactly the objects of a fresh install of the current
//! version (see upgrade/catalog.rs for what is compared), keep every row,
//! keep every audit chain verifying (also against a digest taken before the
//! update), and keep working afterwards.
//!
//! The released scripts themselves are guarded by tests/released_sql.rs.

mod common;
#[path = "upgrade/catalog.rs"]
mod catalog;

use std::sync::Mutex;

use common::*;
use uuid::Uuid;

/// The released versions a database may be upgraded from. Each needs an
/// install script `sql/d5_storage--V.sql`, or an older one and update scripts
/// up to V (Postgres then installs the oldest and updates).
const FROM_VERSIONS: &[&str] = &["0.1.0"];
const CURRENT: &str = env!("CARGO_PKG_VERSION");

/// CREATE EXTENSION touches cluster-wide catalogs (roles, parameter grants):
/// one at a time in this test binary.
static CREATE: Mutex<()> = Mutex::new(());

fn fresh_db() -> TestDb {
    let _guard = CREATE.lock().unwrap_or_else(|e| e.into_inner());
    TestDb::new()
}

/// A database with the extension created at `version`.
fn db_at(version: &str) -> TestDb {
    let db = fresh_db();
    let _guard = CREATE.lock().unwrap_or_else(|e| e.into_inner());
    db.superuser()
        .batch_execute(&format!(
            "DROP EXTENSION d5_storage CASCADE; DROP SCHEMA d5 CASCADE;
             CREATE EXTENSION d5_storage VERSION '{version}'"
        ))
        .unwrap_or_else(|e| {
            panic!(
                "CREATE EXTENSION d5_storage VERSION '{version}' failed: {e:?}\n\
                 (is sql/d5_storage--{version}.sql installed? Every C symbol it names must exist in the current library)"
            )
        });
    db
}

fn extversion(c: &mut Client) -> String {
    c.query_one("SELECT extversion FROM pg_extension WHERE extname = 'd5_storage'", &[]).unwrap().get(0)
}

const HEADER: &str = "BillingAccountId,BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,\
BilledCost,EffectiveCost,ListCost,ContractedCost,BillingCurrency,ChargeCategory,ServiceName,ProviderName,RegionId,Tags";

/// A FOCUS file of `hours` hourly rows for yesterday (so retention keeps them).
fn focus_csv(c: &mut Client, hours: i32, cost: &str) -> String {
    let r = c
        .query_one(
            "SELECT to_char(d, 'YYYY-MM-DD'), to_char(date_trunc('month', d), 'YYYY-MM-DD'),
                    to_char(date_trunc('month', d) + interval '1 month', 'YYYY-MM-DD')
               FROM (SELECT current_date - 1 AS d) x",
            &[],
        )
        .unwrap();
    let (day, bp_start, bp_end): (String, String, String) = (r.get(0), r.get(1), r.get(2));
    let mut csv = format!("{HEADER}\n");
    for h in 0..hours {
        let service = if h % 2 == 0 { "Amazon EC2" } else { "Amazon S3" };
        csv += &format!(
            "111,{bp_start},{bp_end},{day}T{h:02}:00:00Z,{day}T{h:02}:59:59Z,{cost},{cost},{cost},{cost},USD,Usage,\
             {service},AWS,us-east-1,\"{{\"\"team\"\":\"\"web\"\"}}\"\n"
        );
    }
    csv
}

struct Tenant {
    id: Uuid,
    account: Uuid,
}

/// Runs `f` in a transaction of `c` as `tenant`.
fn as_tenant<T>(c: &mut Client, tenant: Uuid, f: impl FnOnce(&mut postgres::Transaction) -> T) -> T {
    let mut tx = c.transaction().unwrap();
    tx.execute("SELECT d5.set_tenant($1)", &[&tenant]).unwrap();
    let out = f(&mut tx);
    tx.commit().unwrap();
    out
}

/// What an application, an admin and the scheduler do with the extension,
/// using only what every released version has.
fn load(db: &TestDb, admin: &mut Client, app: &mut Client, name: &str) -> Tenant {
    let id: Uuid = admin.query_one("SELECT d5.create_tenant($1, 'pro')", &[&name]).unwrap().get(0);
    admin
        .query_one(
            "SELECT d5.register_json_schema($1, '{\"type\": \"object\", \"required\": [\"team\"]}')",
            &[&format!("{name}_tags")],
        )
        .unwrap();
    admin
        .execute("SELECT d5.bind_json_schema('d5.resources', 'tags', $1, $2)", &[&format!("{name}_tags"), &id])
        .unwrap();
    let account: Uuid = as_tenant(app, id, |tx| {
        tx.batch_execute(&format!(
            "SELECT d5.set_actor('ops@{name}.example');
             INSERT INTO d5.users (email, role) VALUES ('a@{name}.example', 'owner'), ('b@{name}.example', 'member');
             INSERT INTO d5.cloud_accounts (provider, external_account_id, credentials_ref)
                  VALUES ('aws', '111', 'arn:aws:secretsmanager:us-east-1:111:secret:{name}');
             INSERT INTO d5.resources (account_id, resource_type, provider_resource_id, region, tags)
                  SELECT id, 'vm', 'i-' || g, 'us-east-1', '{{\"team\": \"web\"}}' FROM d5.cloud_accounts, generate_series(1, 5) g;
             INSERT INTO d5.recommendations (resource_id, type, impact)
                  SELECT id, 'rightsize', '{{\"estimated_monthly_savings\": 5, \"currency\": \"USD\", \"confidence\": 0.5}}'
                    FROM d5.resources WHERE provider_resource_id IN ('i-1', 'i-2');
             INSERT INTO d5.policies (name, type, thresholds)
                  VALUES ('budget', 'budget', '{{\"amount\": 100, \"currency\": \"USD\", \"period\": \"monthly\"}}');
             UPDATE d5.users SET role = 'admin' WHERE email LIKE 'b@%';
             UPDATE d5.recommendations SET status = 'accepted' WHERE type = 'rightsize';
             DELETE FROM d5.resources WHERE provider_resource_id = 'i-5';"
        ))
        .unwrap();
        tx.query_one("SELECT id FROM d5.cloud_accounts", &[]).unwrap().get(0)
    });
    let csv = focus_csv(app, 6, "1.25");
    let inserted: i64 = as_tenant(app, id, |tx| {
        tx.query_one("SELECT inserted FROM d5.ingest_focus($1, $2)", &[&account, &csv]).unwrap().get(0)
    });
    assert_eq!(inserted, 6, "ingest into {}", db.name);
    Tenant { id, account }
}

fn maintain(admin: &mut Client) {
    let rows = admin
        .query("SELECT step, action, status, reason FROM d5.run_maintenance() WHERE status <> 'done'", &[])
        .unwrap();
    for r in &rows {
        let (step, action, status, reason): (String, String, String, Option<String>) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        assert!(status == "ok" && action == "run", "maintenance: {step} {action} {status} {reason:?}");
    }
}

/// Every row of every table in the extension's schemas (d5, d5_archive;
/// partitions through their parent) and every sequence, as one line per
/// table: count and md5 of the sorted rows, over the columns it has now.
/// Returns the queries, so the same columns are read after the update.
fn data_queries(su: &mut Client) -> Vec<String> {
    let mut qs: Vec<String> = su
        .query(
            "SELECT format('SELECT %L || '' '' || count(*) || '' '' || md5(coalesce(string_agg(x, E''\\n'' ORDER BY x), ''''))
                              FROM (SELECT ROW(%s)::text AS x FROM %s) s',
                           c.oid::regclass, string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum), c.oid::regclass)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
              WHERE n.nspname IN ('d5', 'd5_archive') AND c.relkind IN ('r', 'p') AND NOT c.relispartition
              GROUP BY c.oid ORDER BY c.oid::regclass::text",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    qs.extend(
        su.query(
            "SELECT format('SELECT %L || '' '' || last_value || '' '' || is_called FROM %s', c.oid::regclass, c.oid::regclass)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname IN ('d5', 'd5_archive') AND c.relkind = 'S' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0)),
    );
    qs
}

fn data(su: &mut Client, queries: &[String]) -> Vec<String> {
    queries.iter().map(|q| su.query_one(q.as_str(), &[]).unwrap_or_else(|e| panic!("{q}: {e:?}")).get(0)).collect()
}

/// (tenant, records, ok, reason) of every chain, by verify_audit_chain() or,
/// with a digest, verify_audit_digest(digest).
fn chains(auditor: &mut Client, digest: Option<&serde_json::Value>) -> Vec<(Uuid, i64, bool, Option<String>)> {
    let rows = match digest {
        None => auditor.query("SELECT tenant_id, records, ok, reason FROM d5.verify_audit_chain() ORDER BY 1", &[]),
        Some(d) => auditor.query("SELECT tenant_id, records, ok, reason FROM d5.verify_audit_digest($1) ORDER BY 1", &[d]),
    };
    rows.unwrap().iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect()
}

#[track_caller]
fn assert_chains_ok(chains: &[(Uuid, i64, bool, Option<String>)], expect: usize) {
    assert_eq!(chains.len(), expect, "chains: {chains:?}");
    assert!(chains.iter().all(|c| c.2 && c.1 > 0), "a chain does not verify: {chains:?}");
}

fn self_check(c: &mut Client) -> Vec<(String, String, String)> {
    c.query("SELECT check_name, object, detail FROM d5.self_check()", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[test]
fn an_updated_database_equals_a_fresh_install_and_keeps_its_data() {
    let fresh = fresh_db();
    let expected = catalog::snapshot(&mut fresh.superuser());
    for from in FROM_VERSIONS {
        let db = db_at(from);
        let mut su = db.superuser();
        assert_eq!(extversion(&mut su), *from);
        let (_, mut admin) = db.login("d5_admin");
        let (_, mut app) = db.login("d5_app");
        let (_, mut auditor) = db.login("d5_auditor");
        let acme = load(&db, &mut admin, &mut app, "acme");
        let globex = load(&db, &mut admin, &mut app, "globex");
        maintain(&mut admin);
        // Two tenants and the system chain.
        assert_chains_ok(&chains(&mut auditor, None), 3);
        let digest: serde_json::Value = auditor.query_one("SELECT d5.audit_digest()", &[]).unwrap().get(0);
        let queries = data_queries(&mut su);
        let before = data(&mut su, &queries);

        su.batch_execute("ALTER EXTENSION d5_storage UPDATE").unwrap_or_else(|e| panic!("update from {from}: {e:?}"));
        assert_eq!(extversion(&mut su), CURRENT, "ALTER EXTENSION UPDATE from {from} did not reach {CURRENT}");

        let diff = catalog::diff(&catalog::snapshot(&mut su), &expected);
        assert!(
            diff.is_empty(),
            "after {from} -> {CURRENT} the extension's objects differ from a fresh {CURRENT} install \
             (- upgraded, + fresh); the update script sql/d5_storage--*--{CURRENT}.sql must do what sql/*.sql and src/ do:\n{diff}"
        );
        let after = data(&mut su, &queries);
        let changed: Vec<String> = before.iter().zip(&after).filter(|(b, a)| b != a).map(|(b, a)| format!("{b}\n  now {a}")).collect();
        assert!(changed.is_empty(), "rows changed by the update:\n{}", changed.join("\n"));
        assert_chains_ok(&chains(&mut auditor, Some(&digest)), 3);
        assert_chains_ok(&chains(&mut auditor, None), 3);

        // The updated database keeps working: audited writes, a re-ingest
        // that replaces the period, maintenance; the old digest still holds.
        let (_, mut app) = db.login("d5_app");
        as_tenant(&mut app, acme.id, |tx| {
            tx.execute(
                "INSERT INTO d5.resources (account_id, resource_type, provider_resource_id, tags) VALUES ($1, 'db', 'db-1', '{\"team\": \"data\"}')",
                &[&acme.account],
            )
            .unwrap();
        });
        {
            let mut tx = app.transaction().unwrap();
            tx.execute("SELECT d5.set_tenant($1)", &[&acme.id]).unwrap();
            let err = tx
                .execute("INSERT INTO d5.resources (account_id, resource_type, provider_resource_id, tags) VALUES ($1, 'db', 'db-2', '{}')", &[&acme.account])
                .unwrap_err();
            assert_eq!(sqlstate(&err), "23514", "the JSON schema binding survives the update");
        }
        let csv = focus_csv(&mut app, 6, "2.50");
        let replaced: i64 = as_tenant(&mut app, acme.id, |tx| {
            tx.query_one("SELECT replaced FROM d5.ingest_focus($1, $2)", &[&acme.account, &csv]).unwrap().get(0)
        });
        assert_eq!(replaced, 6);
        maintain(&mut admin);
        assert_chains_ok(&chains(&mut auditor, Some(&digest)), 3);
        let seen: Vec<(i64, i64)> = [acme.id, globex.id]
            .iter()
            .map(|t| {
                as_tenant(&mut app, *t, |tx| {
                    let r = tx
                        .query_one("SELECT (SELECT count(*) FROM d5.resources), (SELECT count(*) FROM d5.users)", &[])
                        .unwrap();
                    (r.get(0), r.get(1))
                })
            })
            .collect();
        assert_eq!(seen, vec![(5, 2), (4, 2)], "each tenant sees only its own rows");
        let version: (String, String, String) = {
            let r = app.query_one("SELECT * FROM d5.version()", &[]).unwrap();
            (r.get(0), r.get(1), r.get(2))
        };
        assert_eq!(version, (CURRENT.into(), CURRENT.into(), CURRENT.into()));
        assert_eq!(self_check(&mut auditor), vec![], "self_check after the update from {from}");
    }
}

#[test]
fn version_is_reported_and_a_pending_update_is_a_finding() {
    let db = fresh_db();
    let (_, mut app) = db.login("d5_app");
    let r = app.query_one("SELECT extension_version, library_version, available_version FROM d5.version()", &[]).unwrap();
    let got: (String, String, String) = (r.get(0), r.get(1), r.get(2));
    assert_eq!(got, (CURRENT.into(), CURRENT.into(), CURRENT.into()));
    let (_, mut admin) = db.login("d5_admin");
    assert_eq!(self_check(&mut admin), vec![]);

    // What a database looks like when the new files are installed but
    // ALTER EXTENSION … UPDATE was not run.
    let mut su = db.superuser();
    su.batch_execute("UPDATE pg_extension SET extversion = '0.0.9' WHERE extname = 'd5_storage'").unwrap();
    let found = self_check(&mut admin);
    assert_eq!(found.len(), 1, "{found:?}");
    let (check, object, detail) = &found[0];
    assert_eq!((check.as_str(), object.as_str()), ("version_mismatch", "d5_storage"));
    assert!(detail.contains("0.0.9") && detail.contains("ALTER EXTENSION d5_storage UPDATE"), "{detail}");
    su.batch_execute(&format!("UPDATE pg_extension SET extversion = '{CURRENT}' WHERE extname = 'd5_storage'")).unwrap();
    assert_eq!(self_check(&mut admin), vec![]);
}
