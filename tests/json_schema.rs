//! JSON Schema registry and validation, as ordinary LOGIN roles granted d5_app
//! and d5_admin: write-time checks with exact paths, on-demand answers, a new
//! version reaching another open session, refusals, per-tenant tag policy,
//! and a batch of hostile inputs that must never take a backend down.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

/// A tenant with one cloud account; returns (tenant, account).
fn tenant_with_account(db: &TestDb, name: &str) -> (Uuid, Uuid) {
    let tenant = db.create_tenant(name);
    let account: Uuid = db
        .superuser()
        .query_one(
            "INSERT INTO d5.cloud_accounts (tenant_id, provider, external_account_id)
             VALUES ($1, 'aws', $2) RETURNING id",
            &[&tenant, &format!("acct-{name}")],
        )
        .unwrap()
        .get(0);
    (tenant, account)
}

/// Runs `sql` with `params`, expecting SQLSTATE `code`; returns (message, detail).
#[track_caller]
fn expect_err(
    client: &mut Client,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
    code: &str,
) -> (String, String) {
    match client.execute(sql, params) {
        Ok(_) => panic!("expected SQLSTATE {code} from {sql:?}, but it succeeded"),
        Err(e) => {
            assert_eq!(sqlstate(&e), code, "wrong SQLSTATE for {sql:?}: {e:?}");
            let db = e.as_db_error().expect("a server error");
            (db.message().to_string(), db.detail().unwrap_or_default().to_string())
        }
    }
}

/// Inside a transaction: runs a failing statement under a savepoint.
#[track_caller]
fn expect_err_in_tx(
    client: &mut Client,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
    code: &str,
) -> (String, String) {
    client.batch_execute("SAVEPOINT s").unwrap();
    let out = expect_err(client, sql, params, code);
    client.batch_execute("ROLLBACK TO SAVEPOINT s").unwrap();
    out
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

const INSERT_RESOURCE: &str = "INSERT INTO d5.resources (account_id, resource_type, provider_resource_id, tags)
                               VALUES ($1, 'ec2:instance', $2, $3)";

#[test]
fn shipped_schemas_are_enforced_on_write_with_exact_paths() {
    let db = TestDb::new();
    let (tenant, account) = tenant_with_account(&db, "alpha");
    let (_, mut app) = db.login("d5_app");
    begin_as(&mut app, tenant);

    // resources.tags
    let good = json(r#"{"env": "prod", "cost-center": "FI-1234", "kubernetes.io/cluster/eu": "owned"}"#);
    app.execute(INSERT_RESOURCE, &[&account, &"i-1", &good]).unwrap();
    let bad = json(r#"{"env": 1, "aws:owner": "x", "ok": "fine", "bad key!": "v", "nested": {"a": "b"}}"#);
    let (msg, detail) = expect_err_in_tx(&mut app, INSERT_RESOURCE, &[&account, &"i-2", &bad], "23514");
    assert_eq!(
        msg,
        r#"new row for relation "resources" violates JSON schema "resource_tags" (version 1) for column "tags""#
    );
    assert_eq!(
        detail,
        [
            r#"/aws:owner: invalid key: "aws:owner" must not match {"pattern":"^[aA][wW][sS]:"}"#,
            r#"/bad key!: invalid key: "bad key!" does not match "^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$""#,
            r#"/env: 1 is not of type "string""#,
            r#"/nested: an object (1 key) is not of type "string""#,
        ]
        .join("\n")
    );
    // An UPDATE is checked too.
    let (_, detail) = expect_err_in_tx(
        &mut app,
        "UPDATE d5.resources SET tags = '{\"ok\": 5}'",
        &[],
        "23514",
    );
    assert_eq!(detail, r#"/ok: 5 is not of type "string""#);
    let resource: Uuid = app.query_one("SELECT id FROM d5.resources", &[]).unwrap().get(0);

    // recommendations.impact
    let insert_rec = "INSERT INTO d5.recommendations (resource_id, type, impact) VALUES ($1, 'rightsize', $2)";
    let good = json(r#"{"estimated_monthly_savings": 12.5, "currency": "USD", "confidence": 0.8, "effort": "low"}"#);
    app.execute(insert_rec, &[&resource, &good]).unwrap();
    let bad = json(r#"{"estimated_monthly_savings": -5, "currency": "usd", "confidence": 1.5, "typo": 1}"#);
    let (msg, detail) = expect_err_in_tx(&mut app, insert_rec, &[&resource, &bad], "23514");
    assert!(msg.contains(r#""recommendation_impact" (version 1) for column "impact""#), "{msg}");
    assert_eq!(
        detail,
        [
            "/: Additional properties are not allowed ('typo' was unexpected)",
            "/confidence: 1.5 is greater than the maximum of 1",
            r#"/currency: "usd" does not match "^[A-Z]{3}$""#,
            "/estimated_monthly_savings: -5 is less than the minimum of 0",
        ]
        .join("\n")
    );

    // policies.thresholds
    let insert_policy = "INSERT INTO d5.policies (name, type, thresholds) VALUES ($1, 'budget', $2)";
    let good = json(r#"{"amount": 1000, "currency": "EUR", "period": "monthly", "alert_percentages": [50, 80, 100]}"#);
    app.execute(insert_policy, &[&"ok", &good]).unwrap();
    let bad = json(r#"{"amount": 0, "currency": "EUR", "period": "hourly", "alert_percentages": [50, 50, 2000]}"#);
    let (msg, detail) = expect_err_in_tx(&mut app, insert_policy, &[&"bad", &bad], "23514");
    assert!(msg.contains(r#""policy_thresholds" (version 1) for column "thresholds""#), "{msg}");
    assert_eq!(
        detail,
        [
            "/alert_percentages: an array (3 items) has non-unique elements",
            "/alert_percentages/2: 2000 is greater than the maximum of 1000",
            "/amount: 0 is less than or equal to the minimum of 0",
            r#"/period: "hourly" is not one of "daily", "weekly" or 3 other candidates"#,
        ]
        .join("\n")
    );
    let (_, detail) = expect_err_in_tx(&mut app, insert_policy, &[&"arr", &json("[]")], "23514");
    assert_eq!(detail, r#"/: [] is not of type "object""#);
    app.batch_execute("COMMIT").unwrap();

    // The valid rows are there; the DETAIL is capped at 20 violations.
    begin_as(&mut app, tenant);
    let many: serde_json::Value = (0..30).map(|i| (format!("k{i}"), serde_json::json!(i))).collect::<serde_json::Map<_, _>>().into();
    let (_, detail) = expect_err_in_tx(&mut app, INSERT_RESOURCE, &[&account, &"i-3", &many], "23514");
    assert_eq!(detail.lines().count(), 21, "{detail}");
    assert_eq!(detail.lines().last(), Some("… and 10 more"));
    let n: i64 = app
        .query_one("SELECT (SELECT count(*) FROM d5.resources) + (SELECT count(*) FROM d5.recommendations) + (SELECT count(*) FROM d5.policies)", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
    app.batch_execute("COMMIT").unwrap();
}

#[test]
fn validate_json_and_json_errors_answer_on_demand() {
    let db = TestDb::new();
    let (_, mut app) = db.login("d5_app");
    let valid = |c: &mut Client, name: &str, doc: &str| -> Option<bool> {
        c.query_one("SELECT d5.validate_json($1, $2::text::jsonb)", &[&name, &doc]).unwrap().get(0)
    };
    assert_eq!(valid(&mut app, "resource_tags", r#"{"env": "prod"}"#), Some(true));
    assert_eq!(valid(&mut app, "resource_tags", r#"{"env": 1}"#), Some(false));
    assert_eq!(valid(&mut app, "resource_tags", "5"), Some(false));
    assert_eq!(valid(&mut app, "policy_thresholds", r#"{"amount": 1e400, "currency": "USD", "period": "daily"}"#), Some(true));
    let null: Option<bool> = app.query_one("SELECT d5.validate_json('resource_tags', NULL)", &[]).unwrap().get(0);
    assert_eq!(null, None);
    let rows: Vec<(String, String)> = app
        .query(
            "SELECT path, message FROM d5.json_errors('recommendation_impact', $1::text::jsonb)",
            &[&r#"{"currency": "EURO", "confidence": "high"}"#],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected = [
        ("", r#""estimated_monthly_savings" is a required property"#),
        ("/confidence", r#""high" is not of type "number""#),
        ("/currency", r#""EURO" does not match "^[A-Z]{3}$""#),
    ];
    assert_eq!(rows, expected.map(|(p, m)| (p.to_string(), m.to_string())));
    let none = app.query("SELECT * FROM d5.json_errors('resource_tags', '{}')", &[]).unwrap();
    assert!(none.is_empty());
    // Unknown schema: P0002, for both.
    let (msg, _) = expect_err(&mut app, "SELECT d5.validate_json('no_such_schema', '{}')", &[], "P0002");
    assert_eq!(msg, r#"JSON schema "no_such_schema" does not exist"#);
    expect_err(&mut app, "SELECT * FROM d5.json_errors('no_such_schema', '{}')", &[], "P0002");
}

#[test]
fn a_new_version_takes_effect_in_another_open_session() {
    let db = TestDb::new();
    let (tenant, account) = tenant_with_account(&db, "alpha");
    let (_, mut admin) = db.login("d5_admin");
    let (_, mut app) = db.login("d5_app");
    let v: i32 = admin.query_one("SELECT d5.register_json_schema('team_tags', '{}')", &[]).unwrap().get(0);
    assert_eq!(v, 1);
    admin.execute("SELECT d5.bind_json_schema('d5.resources', 'tags', 'team_tags', $1)", &[&tenant]).unwrap();

    // The app session warms its cache on version 1 (permissive) ...
    let check = |c: &mut Client| -> bool {
        c.query_one("SELECT d5.validate_json('team_tags', '{\"env\": \"prod\"}')", &[]).unwrap().get(0)
    };
    assert!(check(&mut app));
    begin_as(&mut app, tenant);
    app.execute(INSERT_RESOURCE, &[&account, &"i-1", &json(r#"{"env": "prod"}"#)]).unwrap();
    app.batch_execute("COMMIT").unwrap();

    // ... then an admin registers version 2, which requires a cost-center.
    let v: i32 = admin
        .query_one("SELECT d5.register_json_schema('team_tags', '{\"required\": [\"cost-center\"]}')", &[])
        .unwrap()
        .get(0);
    assert_eq!(v, 2);
    // Same connection, no reconnect: on demand and on write.
    assert!(!check(&mut app));
    begin_as(&mut app, tenant);
    let (msg, detail) = expect_err_in_tx(
        &mut app,
        INSERT_RESOURCE,
        &[&account, &"i-2", &json(r#"{"env": "prod"}"#)],
        "23514",
    );
    assert!(msg.contains(r#"JSON schema "team_tags" (version 2)"#), "{msg}");
    assert_eq!(detail, r#"/: "cost-center" is a required property"#);
    app.batch_execute("COMMIT").unwrap();

    // Binding changes travel the same way: unbinding lifts the tenant's rule.
    let changed: bool = admin
        .query_one("SELECT d5.unbind_json_schema('d5.resources', 'tags', $1)", &[&tenant])
        .unwrap()
        .get(0);
    assert!(changed);
    begin_as(&mut app, tenant);
    app.execute(INSERT_RESOURCE, &[&account, &"i-3", &json(r#"{"env": "prod"}"#)]).unwrap();
    app.batch_execute("COMMIT").unwrap();
}

#[test]
fn a_cached_schema_is_compiled_once_and_the_cache_is_bounded() {
    let db = TestDb::new();
    let mut su = db.superuser();
    let stats = |c: &mut Client| -> (i64, i64) {
        let r = c.query_one("SELECT cached, compiled FROM d5._json_schema_cache_stats()", &[]).unwrap();
        (r.get(0), r.get(1))
    };
    for _ in 0..50 {
        su.query_one("SELECT d5.validate_json('resource_tags', '{\"a\": \"b\"}')", &[]).unwrap();
    }
    assert_eq!(stats(&mut su), (1, 1));
    su.batch_execute("SET d5.json_schema_cache_size = 2").unwrap();
    for name in ["resource_tags", "recommendation_impact", "policy_thresholds", "resource_tags"] {
        su.query_one("SELECT d5.validate_json($1, '{}')", &[&name]).unwrap();
    }
    // Three names through two slots: resource_tags was evicted and compiled again.
    assert_eq!(stats(&mut su), (2, 4));
    su.batch_execute("SET d5.json_schema_cache_size = 0").unwrap();
    su.query_one("SELECT d5.validate_json('resource_tags', '{}')", &[]).unwrap();
    assert_eq!(stats(&mut su).1, 5, "size 0 compiles on every call");
    // Ordinary roles can neither read the stats nor switch the cache off
    // (once the library is loaded; a placeholder set before is discarded).
    let (_, mut app) = db.login("d5_app");
    app.query_one("SELECT d5.validate_json('resource_tags', '{}')", &[]).unwrap();
    expect_err(&mut app, "SELECT * FROM d5._json_schema_cache_stats()", &[], "42501");
    expect_err(&mut app, "SET d5.json_schema_cache_size = 0", &[], "42501");
}

#[test]
fn invalid_schemas_remote_refs_and_non_admins_are_refused() {
    let db = TestDb::new();
    let (_, mut admin) = db.login("d5_admin");
    let register = "SELECT d5.register_json_schema($1, $2::text::jsonb)";
    let (msg, detail) = expect_err(&mut admin, register, &[&"s1", &r#"{"type": "objekt", "minimum": "a"}"#], "22023");
    assert_eq!(msg, "schema is not valid JSON Schema (draft 2020-12): 2 problem(s)");
    assert!(detail.starts_with("/minimum: \"a\" is not of type \"number\"\n/type: "), "{detail}");
    let (msg, detail) = expect_err(
        &mut admin,
        register,
        &[&"s2", &r#"{"properties": {"a": {"$ref": "https://evil.example/x.json"}}}"#],
        "22023",
    );
    assert!(msg.contains("points outside the schema") && msg.contains("nothing is ever fetched"), "{msg}");
    assert_eq!(detail, "path: /properties/a/$ref");
    expect_err(&mut admin, register, &[&"s3", &r#"{"$schema": "http://json-schema.org/draft-04/schema#"}"#], "22023");
    expect_err(&mut admin, register, &[&"bad name", &"{}"], "22023");
    expect_err(&mut admin, "SELECT d5.register_json_schema(NULL, '{}')", &[], "22023");
    let deep = format!("{}{}", r#"{"items": "#.repeat(70), format!("{{}}{}", "}".repeat(70)));
    let (msg, _) = expect_err(&mut admin, register, &[&"s4", &deep], "22023");
    assert!(msg.contains("deeper than 64"), "{msg}");
    let none: i64 = db.superuser().query_one("SELECT count(*) FROM d5.json_schemas WHERE NOT shipped", &[]).unwrap().get(0);
    assert_eq!(none, 0, "a refused schema was stored");
    // Draft-07 and 2019-09 are accepted; registering the same schema twice is idempotent.
    for (name, schema) in [
        ("d7", r##"{"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"x": {"type": "string"}}, "$ref": "#/definitions/x"}"##),
        ("d2019", r#"{"$schema": "https://json-schema.org/draft/2019-09/schema", "type": "string"}"#),
    ] {
        let v: i32 = admin.query_one(register, &[&name, &schema]).unwrap().get(0);
        assert_eq!(v, 1);
        let again: i32 = admin.query_one(register, &[&name, &schema]).unwrap().get(0);
        assert_eq!(again, 1);
    }
    // Neither the application nor the auditor may register or bind.
    for group in ["d5_app", "d5_auditor"] {
        let (_, mut c) = db.login(group);
        expect_err(&mut c, register, &[&"mine", &"{}"], "42501");
        expect_err(&mut c, "SELECT d5.bind_json_schema('d5.resources', 'tags', 'd7')", &[], "42501");
        expect_err(&mut c, "INSERT INTO d5.json_schemas (name, version, schema) VALUES ('x', 9, '{}')", &[], "42501");
        expect_err(&mut c, "SELECT count(*) FROM d5.json_schema_bindings", &[], "42501");
    }
    // An admin may not bind to someone else's table.
    db.superuser().batch_execute("CREATE TABLE public.foreign_docs (doc jsonb)").unwrap();
    expect_err(&mut admin, "SELECT d5.bind_json_schema('public.foreign_docs', 'doc', 'd7')", &[], "42501");
}

#[test]
fn oversized_and_deeply_nested_documents_are_refused_cleanly() {
    let db = TestDb::new();
    let (tenant, account) = tenant_with_account(&db, "alpha");
    let (_, mut app) = db.login("d5_app");
    for levels in [65usize, 1000, 5000] {
        let deep = format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
        let (msg, _) = expect_err(&mut app, "SELECT d5.validate_json('resource_tags', $1::text::jsonb)", &[&deep], "54001");
        assert!(msg.starts_with("document nesting is deeper than 64 levels (at /0/0/"), "{msg}");
        let deep_obj = format!("{}{}", r#"{"a": "#.repeat(levels), format!("1{}", "}".repeat(levels)));
        begin_as(&mut app, tenant);
        let insert_text = INSERT_RESOURCE.replace("$3)", "$3::text::jsonb)");
        let (msg, _) = expect_err_in_tx(&mut app, &insert_text, &[&account, &"i-2", &deep_obj], "54001");
        assert!(msg.starts_with("document nesting is deeper than 64 levels (at /a/a/"), "{msg}");
        app.batch_execute("COMMIT").unwrap();
        let one: i32 = app.query_one("SELECT 1", &[]).unwrap().get(0);
        assert_eq!(one, 1);
    }
    // 64 levels is fine.
    let ok = format!("{}1{}", "[".repeat(64), "]".repeat(64));
    let valid: bool = app.query_one("SELECT d5.validate_json('resource_tags', $1::text::jsonb)", &[&ok]).unwrap().get(0);
    assert!(!valid);

    // Size: a superuser lowers the limit for the database; a new session sees it.
    db.superuser()
        .batch_execute(&format!("ALTER DATABASE {} SET d5.max_document_bytes = 4096", db.name))
        .unwrap();
    let (_, mut app) = db.login("d5_app");
    let big: serde_json::Value = (0..400).map(|i| (format!("tag{i:03}"), serde_json::json!("value"))).collect::<serde_json::Map<_, _>>().into();
    let (msg, _) = expect_err(&mut app, "SELECT d5.validate_json('resource_tags', $1)", &[&big], "54000");
    assert!(msg.contains("more than d5.max_document_bytes (4096 bytes)"), "{msg}");
    expect_err(&mut app, "SELECT * FROM d5.json_errors('resource_tags', $1)", &[&big], "54000");
    begin_as(&mut app, tenant);
    expect_err_in_tx(&mut app, INSERT_RESOURCE, &[&account, &"i-1", &big], "54000");
    app.batch_execute("COMMIT").unwrap();
}

#[test]
fn a_tenant_tag_policy_applies_to_that_tenant_only() {
    let db = TestDb::new();
    let (a, account_a) = tenant_with_account(&db, "alpha");
    let (b, account_b) = tenant_with_account(&db, "beta");
    // A row from before the policy existed.
    db.superuser()
        .execute(
            "INSERT INTO d5.resources (tenant_id, account_id, resource_type, provider_resource_id, tags)
             VALUES ($1, $2, 'ec2:instance', 'legacy', '{}')",
            &[&a, &account_a],
        )
        .unwrap();
    let (_, mut admin) = db.login("d5_admin");
    admin
        .query_one(
            r#"SELECT d5.register_json_schema('alpha_tags', '{"required": ["cost-center"],
                 "properties": {"cost-center": {"type": "string", "pattern": "^CC-[0-9]{4}$"}}}')"#,
            &[],
        )
        .unwrap();
    admin.execute("SELECT d5.bind_json_schema('d5.resources', 'tags', 'alpha_tags', $1)", &[&a]).unwrap();
    let (_, mut app) = db.login("d5_app");
    let untagged = json(r#"{"env": "prod"}"#);

    begin_as(&mut app, a);
    let (msg, detail) = expect_err_in_tx(&mut app, INSERT_RESOURCE, &[&account_a, &"i-1", &untagged], "23514");
    assert!(msg.contains(r#"JSON schema "alpha_tags" (version 1) for column "tags""#), "{msg}");
    assert_eq!(detail, r#"/: "cost-center" is a required property"#);
    // Both schemas apply to A: the global one and A's own, violations of both listed.
    let (msg, detail) = expect_err_in_tx(
        &mut app,
        INSERT_RESOURCE,
        &[&account_a, &"i-1", &json(r#"{"cost-center": "X", "env": 1}"#)],
        "23514",
    );
    assert!(msg.contains(r#""resource_tags" (version 1) and JSON schema "alpha_tags" (version 1)"#), "{msg}");
    assert_eq!(detail, "/env: 1 is not of type \"string\"\n/cost-center: \"X\" does not match \"^CC-[0-9]{4}$\"");
    app.execute(INSERT_RESOURCE, &[&account_a, &"i-1", &json(r#"{"cost-center": "CC-1234"}"#)]).unwrap();
    app.batch_execute("COMMIT").unwrap();

    begin_as(&mut app, b);
    app.execute(INSERT_RESOURCE, &[&account_b, &"i-1", &untagged]).unwrap();
    // Aiming a row at A from B is refused by row-level security, before A's
    // policy could answer (its DETAIL would tell B about A's rules).
    let (msg, detail) = expect_err_in_tx(
        &mut app,
        "INSERT INTO d5.resources (tenant_id, account_id, resource_type, provider_resource_id, tags)
         VALUES ($1, $2, 'vm', 'i-9', $3)",
        &[&a, &account_a, &untagged],
        "42501",
    );
    assert!(!msg.contains("alpha_tags") && !detail.contains("cost-center"), "{msg} / {detail}");
    app.batch_execute("COMMIT").unwrap();

    // Unrelated updates of A's older rows are not blocked by the policy;
    // changing their tags is checked.
    begin_as(&mut app, a);
    let n = app.execute("UPDATE d5.resources SET region = 'eu-west-1' WHERE provider_resource_id = 'legacy'", &[]).unwrap();
    assert_eq!(n, 1);
    expect_err_in_tx(&mut app, "UPDATE d5.resources SET tags = '{\"x\": \"y\"}' WHERE provider_resource_id = 'legacy'", &[], "23514");
    app.batch_execute("COMMIT").unwrap();

}

/// Random JSON-ish text: valid and broken, huge numbers, odd unicode, deep nesting.
/// `budget` bounds the number of values, so a document stays small.
fn hostile_text(rng: &mut rand::rngs::StdRng, budget: &mut usize, depth: usize, out: &mut String) {
    const ATOMS: &[&str] = &[
        "null", "true", "false", "0", "-0", "1e400", "-1e400", "1e-400", "123456789012345678901234567890",
        "1.7976931348623157e308", "18446744073709551616", "0.1", r#""""#, r#""\ud800""#, r#""\u0000""#,
        r#""\ud83d\ude00""#, "\"\u{202e}rtl\u{200b}\"", r#""é中🙂""#, r#""aws:x""#, r#""\n\t""#, "NaN", "Infinity",
    ];
    const KEYS: &[&str] = &["", "aws:x", "AWS:y", "cost-center", "~/", "é", "\\ud800", "a\\u0000b", "x_ok", "amount"];
    *budget = budget.saturating_sub(1);
    let pick = if *budget == 0 || depth > 40 { 0 } else { rng.gen_range(0..10) };
    match pick {
        0..=3 => out.push_str(ATOMS[rng.gen_range(0..ATOMS.len())]),
        4 => {
            let n = [1usize, 50, 300, 3000][rng.gen_range(0..4)];
            out.push('"');
            for _ in 0..n {
                out.push(['a', ' ', 'é', '!', '中', '\u{fffd}'][rng.gen_range(0..6)]);
            }
            out.push('"');
        }
        5 | 6 => {
            out.push('[');
            for i in 0..rng.gen_range(0..5) {
                if i > 0 {
                    out.push(',');
                }
                hostile_text(rng, budget, depth + 1, out);
            }
            out.push(']');
        }
        7 | 8 => {
            out.push('{');
            for i in 0..rng.gen_range(0..12) {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&format!("\"{}{i}\":", KEYS[rng.gen_range(0..KEYS.len())]));
                hostile_text(rng, budget, depth + 1, out);
            }
            out.push('}');
        }
        _ => out.push_str(["[", "{\"a\":", "\"\\ud800", "tru", "1e", "]", "\"\\uZZZZ\""][rng.gen_range(0..7)]),
    }
}

#[test]
fn hostile_inputs_never_crash_a_backend() {
    let db = TestDb::new();
    let (_, mut admin) = db.login("d5_admin");
    admin
        .query_one(
            r##"SELECT d5.register_json_schema('recursive', '{"$defs": {"n": {"anyOf": [{"type": "string", "maxLength": 10},
                 {"type": "array", "items": {"$ref": "#/$defs/n"}}, {"type": "object", "additionalProperties": {"$ref": "#/$defs/n"}}]}},
                 "$ref": "#/$defs/n"}')"##,
            &[],
        )
        .unwrap();
    let (_, mut app) = db.login("d5_app");
    let pid: i32 = app.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5EED_D5);
    let mut inputs: Vec<String> = vec![
        format!("{}1{}", "[".repeat(100), "]".repeat(100)),
        format!("{}{}", r#"{"a":"#.repeat(3000), format!("1{}", "}".repeat(3000))),
        format!("\"{}\"", "z".repeat(500_000)),
        "1e1000000".into(),
        "-0.0000000000000000000000000000000000000000001".into(),
        r#"{"a": 1, "a": 2}"#.into(),
        "\u{feff}{}".into(),
        String::new(),
    ];
    while inputs.len() < 260 {
        let mut text = String::new();
        hostile_text(&mut rng, &mut 200, 0, &mut text);
        inputs.push(text);
    }
    let (mut answered, mut refused) = (0, 0);
    for text in &inputs {
        for schema in ["resource_tags", "recommendation_impact", "policy_thresholds", "recursive"] {
            let on_demand = app
                .query_one("SELECT d5.validate_json($1, $2::text::jsonb)", &[&schema, text])
                .map(|r| r.get::<_, bool>(0));
            let errors = app
                .query("SELECT path, message FROM d5.json_errors($1, $2::text::jsonb)", &[&schema, text])
                .map(|rows| rows.len());
            match (&on_demand, &errors) {
                (Ok(valid), Ok(n)) => {
                    assert_eq!(*valid, *n == 0, "validate_json and json_errors disagree on {text:.200}");
                    answered += 1;
                }
                (Err(a), Err(b)) => {
                    for e in [a, b] {
                        // Bad JSON text, bad unicode escape, too deep for Postgres or for us.
                        let code = sqlstate(e);
                        assert!(
                            ["22P02", "22P05", "22003", "54001", "54000"].contains(&code.as_str()),
                            "unexpected error for {text:.200}: {e:?}"
                        );
                    }
                    refused += 1;
                }
                _ => panic!("validate_json and json_errors disagree on {text:.200}: {on_demand:?} / {errors:?}"),
            }
            let one: i32 = app.query_one("SELECT 1", &[]).unwrap().get(0);
            assert_eq!(one, 1);
        }
    }
    let same: i32 = app.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    assert_eq!(same, pid, "the backend was replaced");
    assert!(inputs.len() >= 200 && answered >= 400, "answered {answered}, refused {refused}");
    println!("hostile: {} inputs x 4 schemas: {answered} answered, {refused} refused", inputs.len());
}

/// pg_dump carries registered schemas and bindings, not the shipped rows that
/// CREATE EXTENSION makes again (they would clash on restore).
#[test]
fn dump_and_restore_keeps_registrations_without_duplicating_shipped_rows() {
    let src = TestDb::new();
    let tenant = src.create_tenant("alpha");
    let (_, mut admin) = src.login("d5_admin");
    admin.query_one("SELECT d5.register_json_schema('alpha_tags', '{\"required\": [\"cost-center\"]}')", &[]).unwrap();
    admin.query_one("SELECT d5.register_json_schema('resource_tags', '{\"type\": \"object\"}')", &[]).unwrap();
    admin.execute("SELECT d5.bind_json_schema('d5.resources', 'tags', 'alpha_tags', $1)", &[&tenant]).unwrap();
    admin.query_one("SELECT d5.unbind_json_schema('d5.policies', 'thresholds')", &[]).unwrap();

    let dst = TestDb::new();
    dst.superuser().batch_execute("DROP EXTENSION d5_storage CASCADE; DROP SCHEMA d5 CASCADE").unwrap();
    let c = cluster();
    let bin = std::env::var("PG_BINDIR").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    let conn = |db: &str| format!("host={} port={} user=postgres dbname={db}", c.host, c.port);
    let dump = std::process::Command::new(format!("{bin}/pg_dump"))
        .args(["-Fc", "-d", &conn(&src.name)])
        .output()
        .expect("run pg_dump");
    assert!(dump.status.success(), "pg_dump: {}", String::from_utf8_lossy(&dump.stderr));
    let mut restore = std::process::Command::new(format!("{bin}/pg_restore"))
        .args(["--exit-on-error", "-d", &conn(&dst.name)])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run pg_restore");
    use std::io::Write as _;
    restore.stdin.take().unwrap().write_all(&dump.stdout).unwrap();
    let out = restore.wait_with_output().unwrap();
    assert!(out.status.success(), "pg_restore: {}", String::from_utf8_lossy(&out.stderr));

    let state = |db: &TestDb| -> Vec<String> {
        let mut su = db.superuser();
        let mut rows: Vec<String> = su
            .query("SELECT format('%s v%s shipped=%s', name, version, shipped) FROM d5.json_schemas", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        rows.extend(
            su.query(
                "SELECT format('%s.%s tenant=%s schema=%s shipped=%s', table_name, column_name,
                               tenant_id IS NOT NULL, schema_name, shipped)
                 FROM d5.json_schema_bindings",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0)),
        );
        rows.sort();
        rows
    };
    let before = state(&src);
    assert_eq!(before.len(), 5 + 5, "{before:#?}");
    assert_eq!(state(&dst), before);
    // And the restored bindings are in force.
    let mut su = dst.superuser();
    let valid: bool = su.query_one("SELECT d5.validate_json('resource_tags', '[]')", &[]).unwrap().get(0);
    assert!(!valid, "version 2 of resource_tags applies");
}
