//! Tenant isolation, proven as ordinary LOGIN roles granted d5_app that try to
//! reach another tenant's rows by every road the contract names.

mod common;

use common::*;
use uuid::Uuid;

const ENTITY_TABLES: [&str; 5] = ["users", "cloud_accounts", "resources", "recommendations", "policies"];

/// One row in each entity table for a tenant; returns (account, resource, user) ids.
struct Seed {
    tenant: Uuid,
    account: Uuid,
    resource: Uuid,
    user: Uuid,
}

fn seed(db: &TestDb, name: &str) -> Seed {
    let tenant = db.create_tenant(name);
    let mut su = db.superuser();
    let account: Uuid = su
        .query_one(
            "INSERT INTO d5.cloud_accounts (tenant_id, provider, external_account_id, credentials_ref)
             VALUES ($1, 'aws', $2, 'vault://secret/finops/' || $2) RETURNING id",
            &[&tenant, &format!("acct-{name}")],
        )
        .unwrap()
        .get(0);
    let resource: Uuid = su
        .query_one(
            "INSERT INTO d5.resources (tenant_id, account_id, resource_type, provider_resource_id, region)
             VALUES ($1, $2, 'ec2:instance', $3, 'us-east-1') RETURNING id",
            &[&tenant, &account, &format!("i-{name}")],
        )
        .unwrap()
        .get(0);
    let user: Uuid = su
        .query_one(
            "INSERT INTO d5.users (tenant_id, email, role) VALUES ($1, $2, 'admin') RETURNING id",
            &[&tenant, &format!("ops@{name}.example")],
        )
        .unwrap()
        .get(0);
    su.execute(
        "INSERT INTO d5.recommendations (tenant_id, resource_id, type, impact)
         VALUES ($1, $2, 'rightsize', '{\"estimated_monthly_savings\": 12.5, \"currency\": \"USD\", \"confidence\": 0.8}')",
        &[&tenant, &resource],
    )
    .unwrap();
    su.execute(
        "INSERT INTO d5.policies (tenant_id, name, type, thresholds)
         VALUES ($1, 'monthly budget', 'budget', '{\"amount\": 1000, \"currency\": \"USD\", \"period\": \"monthly\", \"alert_percentages\": [50, 100]}')",
        &[&tenant],
    )
    .unwrap();
    Seed { tenant, account, resource, user }
}

fn count(client: &mut Client, table: &str) -> i64 {
    client.query_one(&format!("SELECT count(*) FROM d5.{table}"), &[]).unwrap().get(0)
}

#[test]
fn each_tenant_reads_only_its_own_rows() {
    let db = TestDb::new();
    let a = seed(&db, "alpha");
    let b = seed(&db, "beta");
    let (_, mut app) = db.login("d5_app");
    for (me, other) in [(&a, &b), (&b, &a)] {
        begin_as(&mut app, me.tenant);
        for table in ENTITY_TABLES {
            assert_eq!(count(&mut app, table), 1, "{table}");
            let foreign: i64 = app
                .query_one(&format!("SELECT count(*) FROM d5.{table} WHERE tenant_id = $1"), &[&other.tenant])
                .unwrap()
                .get(0);
            assert_eq!(foreign, 0, "{table} shows another tenant's rows");
        }
        let tenants: Vec<Uuid> = app.query("SELECT id FROM d5.tenants", &[]).unwrap().iter().map(|r| r.get(0)).collect();
        assert_eq!(tenants, vec![me.tenant]);
        let by_id = app.query("SELECT 1 FROM d5.resources WHERE id = $1", &[&other.resource]).unwrap();
        assert!(by_id.is_empty());
        app.batch_execute("COMMIT").unwrap();
    }
}

#[test]
fn without_a_tenant_everything_reads_empty_and_writes_fail() {
    let db = TestDb::new();
    let a = seed(&db, "alpha");
    let (_, mut app) = db.login("d5_app");
    for table in ENTITY_TABLES.iter().chain(["tenants"].iter()) {
        assert_eq!(count(&mut app, table), 0, "{table} readable without a tenant");
    }
    let none: Option<Uuid> = app.query_one("SELECT d5.current_tenant()", &[]).unwrap().get(0);
    assert_eq!(none, None);
    expect_error(&mut app, "INSERT INTO d5.users (email) VALUES ('x@y.z')", "42501");
    let msg = expect_error(
        &mut app,
        &format!("INSERT INTO d5.users (tenant_id, email) VALUES ('{}', 'x@y.z')", a.tenant),
        "42501",
    );
    assert!(msg.contains("row-level security"), "{msg}");
    assert_eq!(app.execute("UPDATE d5.users SET role = 'owner'", &[]).unwrap(), 0);
    assert_eq!(app.execute("DELETE FROM d5.resources", &[]).unwrap(), 0);
}

#[test]
fn writes_cannot_reach_another_tenant() {
    let db = TestDb::new();
    let a = seed(&db, "alpha");
    let b = seed(&db, "beta");
    let (_, mut app) = db.login("d5_app");
    begin_as(&mut app, a.tenant);
    // Insert into B, explicitly.
    let insert_b = format!(
        "INSERT INTO d5.policies (tenant_id, name, type, thresholds) VALUES ('{}', 'x', 'budget', '{}')",
        b.tenant, r#"{"amount": 100, "currency": "USD", "period": "monthly"}"#
    );
    app.batch_execute("SAVEPOINT s").unwrap();
    expect_error(&mut app, &insert_b, "42501");
    app.batch_execute("ROLLBACK TO SAVEPOINT s").unwrap();
    // Update and delete B's rows: invisible, so nothing happens.
    for table in ENTITY_TABLES {
        let n = app
            .execute(&format!("UPDATE d5.{table} SET updated_at = now() WHERE tenant_id = $1"), &[&b.tenant])
            .unwrap();
        assert_eq!(n, 0, "update {table}");
    }
    for table in ["recommendations", "policies"] {
        let n = app.execute(&format!("DELETE FROM d5.{table} WHERE tenant_id = $1"), &[&b.tenant]).unwrap();
        assert_eq!(n, 0, "delete {table}");
    }
    // Moving an own row into B is refused by WITH CHECK.
    app.batch_execute("SAVEPOINT s").unwrap();
    let mv = format!("UPDATE d5.policies SET tenant_id = '{}'", b.tenant);
    expect_error(&mut app, &mv, "42501");
    app.batch_execute("ROLLBACK TO SAVEPOINT s").unwrap();
    // ON CONFLICT on B's primary key does not see B's row: it inserts into A.
    app.execute(
        "INSERT INTO d5.users (id, email) VALUES ($1, 'ops@beta.example')
         ON CONFLICT (tenant_id, id) DO UPDATE SET role = 'owner'",
        &[&b.user],
    )
    .unwrap();
    // Upsert aimed explicitly at B is refused.
    app.batch_execute("SAVEPOINT s").unwrap();
    let upsert_b = format!(
        "INSERT INTO d5.users (tenant_id, id, email) VALUES ('{}', '{}', 'ops@beta.example')
         ON CONFLICT (tenant_id, id) DO UPDATE SET role = 'owner'",
        b.tenant, b.user
    );
    expect_error(&mut app, &upsert_b, "42501");
    app.batch_execute("ROLLBACK TO SAVEPOINT s").unwrap();
    app.batch_execute("COMMIT").unwrap();

    // B is untouched, seen from behind the guards.
    let mut su = db.superuser();
    let b_rows: i64 = su
        .query_one(
            "SELECT (SELECT count(*) FROM d5.users WHERE tenant_id = $1 AND role = 'admin')
                  + (SELECT count(*) FROM d5.policies WHERE tenant_id = $1)
                  + (SELECT count(*) FROM d5.recommendations WHERE tenant_id = $1)",
            &[&b.tenant],
        )
        .unwrap()
        .get(0);
    assert_eq!(b_rows, 3);
    let b_user_role: String =
        su.query_one("SELECT role FROM d5.users WHERE id = $1 AND tenant_id = $2", &[&b.user, &b.tenant]).unwrap().get(0);
    assert_eq!(b_user_role, "admin");
}

#[test]
fn foreign_keys_cannot_point_at_another_tenant() {
    let db = TestDb::new();
    let a = seed(&db, "alpha");
    let b = seed(&db, "beta");
    let (_, mut app) = db.login("d5_app");
    begin_as(&mut app, a.tenant);
    app.batch_execute("SAVEPOINT s").unwrap();
    let msg = expect_error(
        &mut app,
        &format!(
            "INSERT INTO d5.resources (account_id, resource_type, provider_resource_id) VALUES ('{}', 'vm', 'i-x')",
            b.account
        ),
        "23503",
    );
    assert!(!msg.contains(&b.tenant.to_string()), "FK error leaks B's tenant: {msg}");
    app.batch_execute("ROLLBACK TO SAVEPOINT s").unwrap();
    expect_error(
        &mut app,
        &format!(
            "INSERT INTO d5.recommendations (resource_id, type, impact) VALUES ('{}', 'rightsize', '{}')",
            b.resource, r#"{"estimated_monthly_savings": 1, "currency": "USD", "confidence": 0.5}"#
        ),
        "23503",
    );
    app.batch_execute("ROLLBACK").unwrap();
    // And a unique violation only ever concerns the own tenant: B's email is free in A.
    begin_as(&mut app, a.tenant);
    app.execute("INSERT INTO d5.users (email) VALUES ('ops@beta.example')", &[]).unwrap();
    app.batch_execute("COMMIT").unwrap();
}

#[test]
fn views_functions_and_copy_do_not_bypass_rls() {
    let db = TestDb::new();
    let a = seed(&db, "alpha");
    let _b = seed(&db, "beta");
    let (role, mut app) = db.login("d5_app");
    db.superuser().batch_execute(&format!("GRANT CREATE ON DATABASE {} TO {role}", db.name)).unwrap();
    app.batch_execute(
        "CREATE SCHEMA mine;
         CREATE VIEW mine.all_resources AS SELECT * FROM d5.resources;
         CREATE FUNCTION mine.count_all() RETURNS bigint LANGUAGE sql SECURITY DEFINER
             AS 'SELECT count(*) FROM d5.resources';
         CREATE FUNCTION mine.count_plpgsql() RETURNS bigint LANGUAGE plpgsql
             AS 'BEGIN RETURN (SELECT count(*) FROM d5.users); END';",
    )
    .unwrap();
    assert_eq!(count(&mut app, "resources"), 0);
    let v: i64 = app.query_one("SELECT count(*) FROM mine.all_resources", &[]).unwrap().get(0);
    assert_eq!(v, 0, "view without tenant");
    begin_as(&mut app, a.tenant);
    let v: i64 = app.query_one("SELECT count(*) FROM mine.all_resources", &[]).unwrap().get(0);
    let f: i64 = app.query_one("SELECT mine.count_all()", &[]).unwrap().get(0);
    let g: i64 = app.query_one("SELECT mine.count_plpgsql()", &[]).unwrap().get(0);
    assert_eq!((v, f, g), (1, 1, 1));
    // COPY TO runs through the policies.
    let mut out = String::new();
    std::io::Read::read_to_string(&mut app.copy_out("COPY d5.resources (tenant_id) TO STDOUT").unwrap(), &mut out)
        .unwrap();
    assert_eq!(out.trim(), a.tenant.to_string());
    app.batch_execute("COMMIT").unwrap();
    // COPY FROM into an RLS table is refused outright.
    let err = app.copy_in::<_>("COPY d5.users (email) FROM STDIN").err().expect("COPY FROM refused");
    assert_eq!(sqlstate(&err), "0A000");
}

#[test]
fn truncate_ddl_and_ownership_are_refused() {
    let db = TestDb::new();
    let a = seed(&db, "alpha");
    let (_, mut app) = db.login("d5_app");
    begin_as(&mut app, a.tenant);
    app.batch_execute("COMMIT").unwrap();
    for table in ENTITY_TABLES.iter().chain(["tenants"].iter()) {
        expect_error(&mut app, &format!("TRUNCATE d5.{table}"), "42501");
        expect_error(&mut app, &format!("ALTER TABLE d5.{table} DISABLE ROW LEVEL SECURITY"), "42501");
        expect_error(&mut app, &format!("ALTER TABLE d5.{table} NO FORCE ROW LEVEL SECURITY"), "42501");
        expect_error(&mut app, &format!("CREATE POLICY open ON d5.{table} USING (true)"), "42501");
    }
    expect_error(&mut app, "DROP POLICY d5_tenant_select ON d5.resources", "42501");
    expect_error(&mut app, "SELECT * FROM d5.tenant_token_key", "42501");
    expect_error(&mut app, "UPDATE d5.tenants SET status = 'active'", "42501");
    expect_error(&mut app, "SELECT d5.create_tenant('evil', 'pro')", "42501");
    expect_error(&mut app, &format!("SELECT d5.mint_tenant_token('{}', '1 hour')", a.tenant), "42501");
    expect_error(&mut app, "SELECT d5.export_tenant_token_key()", "42501");
    expect_error(&mut app, &format!("SELECT d5.enable_tenancy('d5.users')"), "42501");
    let owns: i64 = app
        .query_one("SELECT count(*) FROM pg_class WHERE relowner = 'd5_app'::regrole", &[])
        .unwrap()
        .get(0);
    assert_eq!(owns, 0);
    let (bypass, superuser): (bool, bool) = {
        let r = app.query_one("SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = 'd5_app'", &[]).unwrap();
        (r.get(0), r.get(1))
    };
    assert!(!bypass && !superuser);
}

#[test]
fn context_never_outlives_its_transaction() {
    let db = TestDb::new();
    let a = seed(&db, "alpha");
    let (_, mut app) = db.login("d5_app");
    for end in ["COMMIT", "ROLLBACK"] {
        begin_as(&mut app, a.tenant);
        assert_eq!(count(&mut app, "resources"), 1);
        app.batch_execute(end).unwrap();
        let t: Option<Uuid> = app.query_one("SELECT d5.current_tenant()", &[]).unwrap().get(0);
        assert_eq!(t, None, "tenant survived {end}");
        assert_eq!(count(&mut app, "resources"), 0, "rows visible after {end}");
    }
    // A tenant set in a rolled-back savepoint is gone too.
    app.batch_execute("BEGIN; SAVEPOINT s").unwrap();
    app.execute("SELECT d5.set_tenant($1)", &[&a.tenant]).unwrap();
    app.batch_execute("ROLLBACK TO SAVEPOINT s").unwrap();
    assert_eq!(count(&mut app, "resources"), 0);
    app.batch_execute("COMMIT").unwrap();
    // clear_tenant forgets it within the transaction.
    begin_as(&mut app, a.tenant);
    app.batch_execute("SELECT d5.clear_tenant()").unwrap();
    assert_eq!(count(&mut app, "resources"), 0);
    app.batch_execute("COMMIT").unwrap();
    // DISCARD ALL, as a pooler sends it, also forgets it.
    begin_as(&mut app, a.tenant);
    app.batch_execute("COMMIT").unwrap();
    app.batch_execute("DISCARD ALL").unwrap();
    assert_eq!(count(&mut app, "resources"), 0);
}

#[test]
fn the_setting_cannot_be_spoofed() {
    let db = TestDb::new();
    let a = seed(&db, "alpha");
    let b = seed(&db, "beta");
    let (role, mut app) = db.login("d5_app");
    let bt = b.tenant;
    // Load the library in this session first (the placeholder road is tested below).
    app.batch_execute("SELECT d5.current_tenant()").unwrap();
    for sql in [
        format!("SET d5.tenant = '{bt}'"),
        format!("SET SESSION d5.tenant = '{bt}'"),
        format!("SELECT set_config('d5.tenant', '{bt}', false)"),
        format!("SELECT set_config('d5.tenant', '{bt}', true)"),
        "RESET d5.tenant".to_string(),
        format!("ALTER ROLE {role} SET d5.tenant = '{bt}'"),
        format!("ALTER ROLE CURRENT_USER SET d5.tenant = '{bt}'"),
        "SET d5.require_tenant_token = off".to_string(),
        format!("SET d5.actor = 'someone else'"),
    ] {
        expect_error(&mut app, &sql, "42501");
    }
    app.batch_execute("BEGIN").unwrap();
    expect_error(&mut app, &format!("SET LOCAL d5.tenant = '{bt}'"), "42501");
    app.batch_execute("ROLLBACK").unwrap();
    // A function carrying a SET clause is checked against its owner: refused.
    expect_error(
        &mut app,
        &format!("CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql SET d5.tenant = '{bt}' AS 'SELECT 1'"),
        "42501",
    );
    // Unknown d5.* names cannot be planted once the library is loaded.
    let err = app.batch_execute("SET d5.tenant_id = 'x'").unwrap_err();
    assert!(["42602", "42704", "42501"].contains(&sqlstate(&err).as_str()), "{err:?}");

    // Placeholder planted in a fresh session before the library is loaded.
    // The test cluster does not preload d5_storage, so this is the real road.
    for plant in [
        format!("SET d5.tenant = '{bt}'"),
        format!("SELECT set_config('d5.tenant', '{bt}', false)"),
    ] {
        let mut fresh = db.connect_as(&role);
        fresh.batch_execute(&plant).unwrap();
        let t: Option<Uuid> = fresh.query_one("SELECT d5.current_tenant()", &[]).unwrap().get(0);
        assert_eq!(t, None, "placeholder {plant:?} became the tenant");
        assert_eq!(count(&mut fresh, "resources"), 0);
    }
    let mut fresh = db.connect_as(&role);
    fresh.batch_execute("BEGIN").unwrap();
    fresh.batch_execute(&format!("SET LOCAL d5.tenant = '{bt}'")).unwrap();
    assert_eq!(count(&mut fresh, "resources"), 0);
    fresh.batch_execute("ROLLBACK").unwrap();
    let _ = a;
}

#[test]
fn tokens_are_checked_and_can_be_required() {
    let db = TestDb::new();
    let a = seed(&db, "alpha");
    let b = seed(&db, "beta");
    let (_, mut admin) = db.login("d5_admin");
    let token_a: String = admin
        .query_one("SELECT d5.mint_tenant_token($1, interval '10 minutes')", &[&a.tenant])
        .unwrap()
        .get(0);
    let (_, mut app) = db.login("d5_app");
    // Valid token.
    app.batch_execute("BEGIN").unwrap();
    app.execute("SELECT d5.set_tenant($1, $2)", &[&a.tenant, &token_a]).unwrap();
    assert_eq!(count(&mut app, "resources"), 1);
    app.batch_execute("COMMIT").unwrap();
    // Other tenant's token, forged signature, garbage, expired.
    let key_hex: String = admin.query_one("SELECT d5.export_tenant_token_key()", &[]).unwrap().get(0);
    let key = hex::decode(key_hex).unwrap();
    let expired = d5_core::token::mint(&key, a.tenant, 1_000).unwrap();
    let wrong_key = d5_core::token::mint(&[9u8; 32], a.tenant, i64::MAX / 2).unwrap();
    let forged = token_a.replace(&a.tenant.to_string(), &b.tenant.to_string());
    for (tenant, token) in [
        (b.tenant, token_a.clone()),
        (b.tenant, forged),
        (a.tenant, expired),
        (a.tenant, wrong_key),
        (a.tenant, "garbage".into()),
        (a.tenant, String::new()),
    ] {
        let err = app.execute("SELECT d5.set_tenant($1, $2)", &[&tenant, &token]).unwrap_err();
        assert_eq!(sqlstate(&err), "28000", "{token}: {err:?}");
    }
    let err = app.execute("SELECT d5.set_tenant($1, NULL)", &[&a.tenant]).unwrap_err();
    assert_eq!(sqlstate(&err), "28000");
    // Require tokens: the bare form is refused for d5_app, the token form works.
    db.superuser()
        .batch_execute(&format!("ALTER DATABASE {} SET d5.require_tenant_token = on", db.name))
        .unwrap();
    let (_, mut app) = db.login("d5_app");
    let err = app.execute("SELECT d5.set_tenant($1)", &[&a.tenant]).unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    app.batch_execute("BEGIN").unwrap();
    app.execute("SELECT d5.set_tenant($1, $2)", &[&a.tenant, &token_a]).unwrap();
    app.batch_execute("COMMIT").unwrap();
    expect_error(&mut app, "SET d5.require_tenant_token = off", "42501");
    // d5_admin may switch it (GRANT SET ON PARAMETER), and may skip the token.
    admin.batch_execute("SET d5.require_tenant_token = off; SET d5.require_tenant_token = on").unwrap();
    admin.batch_execute("BEGIN").unwrap();
    admin.execute("SELECT d5.set_tenant($1)", &[&a.tenant]).unwrap();
    admin.batch_execute("COMMIT").unwrap();
    // Rotating the key invalidates every earlier token.
    admin.batch_execute("SELECT d5.rotate_tenant_token_key()").unwrap();
    let err = app.execute("SELECT d5.set_tenant($1, $2)", &[&a.tenant, &token_a]).unwrap_err();
    assert_eq!(sqlstate(&err), "28000");
}

#[test]
fn bad_input_gets_clear_errors_with_contract_sqlstates() {
    let db = TestDb::new();
    let a = seed(&db, "alpha");
    let (_, mut app) = db.login("d5_app");
    let msg = expect_error(&mut app, "SELECT d5.set_tenant('not-a-uuid')", "22P02");
    assert!(msg.contains("uuid"), "{msg}");
    let msg = expect_error(&mut app, "SELECT d5.set_tenant('00000000-0000-0000-0000-0000000000ff')", "P0002");
    assert!(msg.contains("does not exist"), "{msg}");
    let msg = expect_error(&mut app, "SELECT d5.set_tenant(NULL)", "22023");
    assert!(msg.contains("NULL"), "{msg}");
    let msg = expect_error(&mut app, &format!("SELECT d5.set_tenant('{}', 'x.y.z')", a.tenant), "28000");
    assert!(msg.contains("token"), "{msg}");
    begin_as(&mut app, a.tenant);
    for secret in [
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "-----BEGIN PRIVATE KEY-----",
    ] {
        app.batch_execute("SAVEPOINT s").unwrap();
        let msg = expect_error(
            &mut app,
            &format!(
                "INSERT INTO d5.cloud_accounts (provider, external_account_id, credentials_ref) VALUES ('aws', 'x', '{secret}')"
            ),
            "22023",
        );
        assert!(msg.contains("credentials_ref"), "{msg}");
        app.batch_execute("ROLLBACK TO SAVEPOINT s").unwrap();
    }
    app.batch_execute("COMMIT").unwrap();
    let (_, mut admin) = db.login("d5_admin");
    let msg = expect_error(&mut admin, "SELECT d5.create_tenant('x', 'platinum')", "22023");
    assert!(msg.contains("platinum"), "{msg}");
    expect_error(&mut admin, "SELECT d5.create_tenant(NULL, 'pro')", "22023");
    expect_error(&mut admin, "SELECT d5.suspend_tenant('00000000-0000-0000-0000-0000000000ff')", "P0002");
    // Suspended tenants cannot be set.
    admin.execute("SELECT d5.suspend_tenant($1)", &[&a.tenant]).unwrap();
    let err = app.execute("SELECT d5.set_tenant($1)", &[&a.tenant]).unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    admin.execute("SELECT d5.reactivate_tenant($1)", &[&a.tenant]).unwrap();
    app.batch_execute("BEGIN").unwrap();
    app.execute("SELECT d5.set_tenant($1)", &[&a.tenant]).unwrap();
    app.batch_execute("COMMIT").unwrap();
}

#[test]
fn the_planner_uses_the_tenant_index() {
    let db = TestDb::new();
    let seeds: Vec<Seed> = (0..4).map(|i| seed(&db, &format!("t{i}"))).collect();
    let mut su = db.superuser();
    for s in &seeds {
        su.execute(
            "INSERT INTO d5.resources (tenant_id, account_id, resource_type, provider_resource_id)
             SELECT $1, $2, 'vm', 'i-' || g FROM generate_series(1, 3000) g",
            &[&s.tenant, &s.account],
        )
        .unwrap();
    }
    su.batch_execute("ANALYZE d5.resources").unwrap();
    let (_, mut app) = db.login("d5_app");
    begin_as(&mut app, seeds[0].tenant);
    for sql in [
        format!("EXPLAIN SELECT * FROM d5.resources WHERE id = '{}'", seeds[0].resource),
        format!("EXPLAIN SELECT * FROM d5.resources WHERE account_id = '{}'", seeds[0].account),
        "EXPLAIN SELECT count(*) FROM d5.resources".to_string(),
    ] {
        let plan: Vec<String> = app.query(&sql, &[]).unwrap().iter().map(|r| r.get(0)).collect();
        let plan = plan.join("\n");
        assert!(
            plan.contains("Index Cond: ((tenant_id = d5.current_tenant())")
                || plan.contains("Index Cond: (tenant_id = d5.current_tenant())"),
            "{sql}\n{plan}"
        );
        assert!(!plan.contains("Filter: (tenant_id"), "tenant check is a per-row filter:\n{plan}");
    }
    app.batch_execute("COMMIT").unwrap();
}
