//! The audit log: one record per mutation in the same transaction, linear
//! chains under concurrency, append-only guards for every role, and tamper
//! detection by the SQL functions and by the offline verifier.

mod common;

use common::*;
use d5_core::audit::{parse_digest, record_hash, AuditRecord, ChainReport};
use uuid::Uuid;

fn records(su: &mut Client, t: Uuid) -> Vec<(i64, String, String)> {
    su.query(
        "SELECT seq, operation, coalesce(table_name, '') FROM d5.audit_log WHERE tenant_id = $1 ORDER BY seq",
        &[&t],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

/// (records, ok, first_bad_seq, reason) per chain from d5.verify_audit_chain.
fn sql_verify(c: &mut Client, digest: Option<&serde_json::Value>) -> Vec<(Uuid, i64, bool, Option<i64>, Option<String>)> {
    let rows = match digest {
        None => c.query("SELECT * FROM d5.verify_audit_chain() ORDER BY tenant_id", &[]).unwrap(),
        Some(d) => c.query("SELECT * FROM d5.verify_audit_digest($1) ORDER BY tenant_id", &[d]).unwrap(),
    };
    rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect()
}

/// The offline verifier over a plain export, as the README documents it.
fn offline_verify(su: &mut Client, digest: Option<&serde_json::Value>) -> Vec<ChainReport> {
    let lines: Vec<String> = su
        .query("SELECT row_to_json(a)::text FROM d5.audit_log a ORDER BY tenant_id, seq", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let export = lines.join("\n") + "\n";
    let entries = digest.map(|d| parse_digest(&d.to_string()).unwrap()).unwrap_or_default();
    d5_audit_verify::verify_export(export.as_bytes(), None, &entries).unwrap()
}

fn first_bad(reports: &[(Uuid, i64, bool, Option<i64>, Option<String>)], t: Uuid) -> Option<i64> {
    let r = reports.iter().find(|r| r.0 == t).expect("chain reported");
    assert_eq!(r.2, r.3.is_none(), "{r:?}");
    r.3
}

fn offline_first_bad(reports: &[ChainReport], t: Uuid) -> Option<i64> {
    let r = reports.iter().find(|r| r.tenant_id == t).expect("chain reported offline");
    r.first_bad_seq
}

#[test]
fn every_mutation_writes_exactly_one_record_in_its_transaction() {
    let db = TestDb::new();
    let (_, mut admin) = db.login("d5_admin");
    let t: Uuid = admin.query_one("SELECT d5.create_tenant('acme', 'pro')", &[]).unwrap().get(0);
    let (app_role, mut app) = db.login("d5_app");
    begin_as(&mut app, t);
    app.batch_execute(
        "SELECT d5.set_actor('alice@acme.example');
         INSERT INTO d5.users (email) VALUES ('a@acme.example');
         INSERT INTO d5.cloud_accounts (provider, external_account_id) VALUES ('aws', '1');
         INSERT INTO d5.resources (account_id, resource_type, provider_resource_id) SELECT id, 'vm', 'i-1' FROM d5.cloud_accounts;
         INSERT INTO d5.recommendations (resource_id, type, impact) SELECT id, 'rightsize', '{\"estimated_monthly_savings\": 5, \"currency\": \"USD\", \"confidence\": 0.5}' FROM d5.resources;
         INSERT INTO d5.policies (name, type, thresholds) VALUES ('budget', 'budget', '{\"amount\": 100, \"currency\": \"USD\", \"period\": \"monthly\"}');
         UPDATE d5.users SET role = 'admin';
         UPDATE d5.policies SET enabled = false;
         DELETE FROM d5.recommendations;
         COMMIT;",
    )
    .unwrap();
    admin.execute("SELECT d5.suspend_tenant($1)", &[&t]).unwrap();
    let mut su = db.superuser();
    let got = records(&mut su, t);
    let ops: Vec<(&str, &str)> = got.iter().map(|(_, o, tb)| (o.as_str(), tb.as_str())).collect();
    assert_eq!(
        ops,
        vec![
            ("INSERT", "d5.tenants"),
            ("INSERT", "d5.users"),
            ("INSERT", "d5.cloud_accounts"),
            ("INSERT", "d5.resources"),
            ("INSERT", "d5.recommendations"),
            ("INSERT", "d5.policies"),
            ("UPDATE", "d5.users"),
            ("UPDATE", "d5.policies"),
            ("DELETE", "d5.recommendations"),
            ("UPDATE", "d5.tenants"),
        ]
    );
    assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), (1..=10).collect::<Vec<i64>>(), "seq has gaps");
    // Content of one UPDATE: old and new row, changed columns, role, actor.
    let r = su
        .query_one(
            "SELECT db_role, actor, old_row->>'role', new_row->>'role', changed_cols,
                    row_pk = jsonb_build_object('tenant_id', tenant_id::text, 'id', new_row->>'id')
                      AND row_pk::text = format('{\"id\": \"%s\", \"tenant_id\": \"%s\"}', new_row->>'id', tenant_id),
                    txid > 0
               FROM d5.audit_log WHERE tenant_id = $1 AND seq = 7",
            &[&t],
        )
        .unwrap();
    assert_eq!(r.get::<_, String>(0), app_role);
    assert_eq!(r.get::<_, Option<String>>(1).as_deref(), Some("alice@acme.example"));
    assert_eq!(r.get::<_, String>(2), "member");
    assert_eq!(r.get::<_, String>(3), "admin");
    assert_eq!(r.get::<_, serde_json::Value>(4), serde_json::json!(["role"]));
    assert!(r.get::<_, bool>(5), "row_pk is the primary key's columns in their text form");
    assert!(r.get::<_, bool>(6));
    // The admin's change through a SECURITY DEFINER function names the login too.
    let detail: serde_json::Value =
        su.query_one("SELECT detail FROM d5.audit_log WHERE tenant_id = $1 AND seq = 10", &[&t]).unwrap().get(0);
    assert!(detail["session_user"].as_str().unwrap().starts_with("d5_admin_login"), "{detail}");
    // A rolled-back transaction leaves no record.
    admin.execute("SELECT d5.reactivate_tenant($1)", &[&t]).unwrap();
    begin_as(&mut app, t);
    app.batch_execute("INSERT INTO d5.users (email) VALUES ('b@acme.example'); ROLLBACK").unwrap();
    assert_eq!(records(&mut su, t).len(), 11);
    // The app reads its own chain, the auditor all of it, both verify.
    let (_, mut auditor) = db.login("d5_auditor");
    let v = sql_verify(&mut auditor, None);
    assert_eq!(first_bad(&v, t), None);
    assert_eq!(v.iter().find(|r| r.0 == t).unwrap().1, 11);
    assert_eq!(offline_first_bad(&offline_verify(&mut su, None), t), None);
}

#[test]
fn a_failing_audit_write_aborts_the_change() {
    let db = TestDb::new();
    let t = db.create_tenant("acme");
    let mut su = db.superuser();
    let (_, mut app) = db.login("d5_app");
    // The record itself cannot be stored: the statement fails.
    su.batch_execute(
        "ALTER TABLE d5.audit_log ADD CONSTRAINT broken CHECK (table_name IS DISTINCT FROM 'd5.users')",
    )
    .unwrap();
    // Kept for the commit (the default), the record fails the commit.
    begin_as(&mut app, t);
    app.batch_execute("INSERT INTO d5.users (email) VALUES ('a@acme.example')").unwrap();
    let err = app.batch_execute("COMMIT").unwrap_err();
    assert_eq!(sqlstate(&err), "23514", "{err:?}");
    // Appended when the row changes, it fails the statement.
    begin_as(&mut app, t);
    app.batch_execute("SET LOCAL d5.audit_pending_limit = 0").unwrap();
    let err = app.batch_execute("INSERT INTO d5.users (email) VALUES ('a@acme.example')").unwrap_err();
    assert_eq!(sqlstate(&err), "23514", "{err:?}");
    app.batch_execute("ROLLBACK").unwrap();
    su.batch_execute("ALTER TABLE d5.audit_log DROP CONSTRAINT broken").unwrap();
    // A deferred check a DBA put on the log runs for records appended at
    // commit too (after commit has fired the deferred triggers once).
    su.batch_execute(
        "CREATE FUNCTION public.refuse_users_record() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.table_name = 'd5.users' THEN
                 RAISE EXCEPTION 'refused by a deferred check' USING ERRCODE = '23514';
             END IF;
             RETURN NULL;
         END $$;
         CREATE CONSTRAINT TRIGGER deferred_check AFTER INSERT ON d5.audit_log
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.refuse_users_record();",
    )
    .unwrap();
    begin_as(&mut app, t);
    app.batch_execute("INSERT INTO d5.users (email) VALUES ('a@acme.example')").unwrap();
    let err = app.batch_execute("COMMIT").unwrap_err();
    assert_eq!(sqlstate(&err), "23514", "{err:?}");
    assert!(err.to_string().contains("deferred check") || format!("{err:?}").contains("deferred check"), "{err:?}");
    su.batch_execute("DROP TRIGGER deferred_check ON d5.audit_log").unwrap();
    let n: i64 = su.query_one("SELECT count(*) FROM d5.users", &[]).unwrap().get(0);
    assert_eq!(n, 0, "a change committed without its audit record");
    // The chain's head cannot be written at commit (it is written with a
    // transaction's first appended record, and at commit if more followed):
    // the commit fails. Here the writer appends as rows change, and a
    // superuser moves the head row inside the writing transaction, so the
    // version the writer holds is no longer the newest.
    let mut writer = db.superuser();
    begin_as(&mut writer, t);
    writer.batch_execute("SET LOCAL d5.audit_pending_limit = 0").unwrap();
    writer.batch_execute("INSERT INTO d5.users (email) VALUES ('a@acme.example'), ('b@acme.example')").unwrap();
    writer.execute("UPDATE d5.audit_chain_heads SET seq = seq WHERE tenant_id = $1", &[&t]).unwrap();
    let err = writer.batch_execute("COMMIT").unwrap_err();
    assert!(err.as_db_error().is_some_and(|e| e.message().contains("update")), "{err:?}");
    let n: i64 = su.query_one("SELECT count(*) FROM d5.users", &[]).unwrap().get(0);
    assert_eq!(n, 0, "a change committed without its audit record");
    let records: i64 = su
        .query_one("SELECT count(*) FROM d5.audit_log WHERE table_name = 'd5.users'", &[])
        .unwrap()
        .get(0);
    assert_eq!(records, 0, "a record committed without its head");
}

#[test]
fn append_only_guards_refuse_every_role() {
    let db = TestDb::new();
    let t = db.create_tenant("acme");
    let other = db.create_tenant("globex");
    let mut clients = vec![db.login("d5_app").1, db.login("d5_auditor").1, db.login("d5_admin").1, db.superuser()];
    for c in clients.iter_mut() {
        for sql in [
            "UPDATE d5.audit_log SET actor = 'x'",
            "DELETE FROM d5.audit_log",
            "TRUNCATE d5.audit_log",
            "TRUNCATE d5.audit_log_default",
            &format!("TRUNCATE d5.audit_log_{}", 2026),
            "DELETE FROM d5.audit_chain_heads",
            "TRUNCATE d5.audit_chain_heads",
        ] {
            // Partition names depend on the year; skip the ones that do not exist.
            if let Err(e) = c.batch_execute(sql) {
                if sqlstate(&e) == "42P01" {
                    continue;
                }
                assert_eq!(sqlstate(&e), "42501", "{sql}: {e:?}");
            } else {
                panic!("{sql} was allowed");
            }
        }
    }
    for c in clients.iter_mut().take(3) {
        let e = c
            .batch_execute(
                "INSERT INTO d5.audit_log (tenant_id, seq, prev_hash, hash, logged_at, txid, db_role, operation)
                 VALUES (gen_random_uuid(), 1, '', '', now(), 1, 'x', 'INSERT')",
            )
            .unwrap_err();
        assert_eq!(sqlstate(&e), "42501");
        let e = c.batch_execute("SELECT d5._audit_event(NULL, NULL, 'FORGED', 1, NULL, NULL)").unwrap_err();
        assert_eq!(sqlstate(&e), "42501");
    }
    // Records survived all of it; the app sees only its own chain.
    let mut app = db.login("d5_app").1;
    begin_as(&mut app, t);
    let visible: Vec<Uuid> =
        app.query("SELECT DISTINCT tenant_id FROM d5.audit_log", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(visible, vec![t]);
    app.batch_execute("COMMIT").unwrap();
    let mut auditor = db.login("d5_auditor").1;
    let n: i64 = auditor.query_one("SELECT count(DISTINCT tenant_id) FROM d5.audit_log", &[]).unwrap().get(0);
    assert_eq!(n, 2);
    let _ = other;
}

#[test]
fn concurrent_writers_keep_every_chain_linear() {
    let db = TestDb::new();
    let tenants: Vec<Uuid> = (0..3).map(|i| db.create_tenant(&format!("t{i}"))).collect();
    let (role, _) = db.login("d5_app");
    let committed = std::sync::atomic::AtomicI64::new(0);
    std::thread::scope(|s| {
        for worker in 0..8 {
            let (db, role, tenants, committed) = (&db, &role, &tenants, &committed);
            s.spawn(move || {
                let mut c = db.connect_as(role);
                for i in 0..40 {
                    // Half the workers hammer tenant 0, the rest spread out.
                    let t = if worker % 2 == 0 { tenants[0] } else { tenants[(worker + i) % 3] };
                    let mut tx = c.transaction().unwrap();
                    tx.execute("SELECT d5.set_tenant($1)", &[&t]).unwrap();
                    // Some writers append as rows change; the rest keep their
                    // records until commit (the default).
                    if worker % 4 == 1 {
                        tx.batch_execute("SET LOCAL d5.audit_pending_limit = 0").unwrap();
                    }
                    tx.execute("INSERT INTO d5.policies (name, type, thresholds) VALUES ($1, 'budget', '{\"amount\": 100, \"currency\": \"USD\", \"period\": \"monthly\"}')", &[&format!("w{worker}-{i}")])
                        .unwrap();
                    if i % 7 == 3 {
                        // A change rolled back to a savepoint leaves no record.
                        tx.batch_execute(&format!(
                            "SAVEPOINT s;
                             INSERT INTO d5.policies (name, type, thresholds) VALUES ('w{worker}-{i}-undone', 'budget', '{{\"amount\": 1, \"currency\": \"USD\", \"period\": \"monthly\"}}');
                             ROLLBACK TO s;"
                        ))
                        .unwrap();
                    }
                    tx.execute("UPDATE d5.policies SET enabled = NOT enabled WHERE name = $1", &[&format!("w{worker}-{i}")])
                        .unwrap();
                    if i % 5 == 4 {
                        tx.rollback().unwrap();
                    } else {
                        tx.commit().unwrap();
                        committed.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let mut su = db.superuser();
    let policy_records: i64 =
        su.query_one("SELECT count(*) FROM d5.audit_log WHERE table_name = 'd5.policies'", &[]).unwrap().get(0);
    assert_eq!(policy_records, committed.load(std::sync::atomic::Ordering::Relaxed));
    let v = sql_verify(&mut su, None);
    for t in &tenants {
        assert_eq!(first_bad(&v, *t), None, "{v:?}");
    }
    assert!(offline_verify(&mut su, None).iter().all(|r| r.ok));
}

/// Loads `n` records into tenant `t`'s chain.
fn make_chain(db: &TestDb, t: Uuid, n: usize) {
    let mut app = db.login("d5_app").1;
    begin_as(&mut app, t);
    for _ in 0..n {
        app.execute("INSERT INTO d5.policies (name, type, thresholds) VALUES ($1, 'budget', '{\"amount\": 100, \"currency\": \"USD\", \"period\": \"monthly\"}')", &[&format!("p{}", Uuid::new_v4())])
            .unwrap();
    }
    app.batch_execute("COMMIT").unwrap();
}

/// Runs `sql` as superuser behind the guards (triggers off), like an attacker with superuser.
fn tamper(su: &mut Client, sql: &str, t: Uuid) {
    su.batch_execute("SET session_replication_role = replica").unwrap();
    su.execute(sql, &[&t]).unwrap();
    su.batch_execute("RESET session_replication_role").unwrap();
}

fn digest(su: &mut Client) -> serde_json::Value {
    su.query_one("SELECT d5.audit_digest()", &[]).unwrap().get(0)
}

#[test]
fn tampering_is_found_at_the_right_seq_inside_and_outside() {
    // Each case on a fresh chain of 6 records: seq 1 is the tenant's creation, 2..6 policies.
    let cases: [(&str, &str, i64); 4] = [
        ("edited field", "UPDATE d5.audit_log SET new_row = jsonb_set(new_row, '{name}', '\"evil\"') WHERE tenant_id = $1 AND seq = 4", 4),
        ("deleted record", "DELETE FROM d5.audit_log WHERE tenant_id = $1 AND seq = 3", 3),
        (
            "inserted forged record",
            "INSERT INTO d5.audit_log SELECT tenant_id, seq, prev_hash, hash, logged_at + interval '1 microsecond', txid, db_role, 'mallory', table_name,
                    operation, row_pk, old_row, new_row, changed_cols, row_count, rows_digest, detail
               FROM d5.audit_log WHERE tenant_id = $1 AND seq = 5",
            5,
        ),
        (
            "swapped records",
            "UPDATE d5.audit_log SET seq = CASE seq WHEN 3 THEN 4 ELSE 3 END WHERE tenant_id = $1 AND seq IN (3, 4)",
            3,
        ),
    ];
    let db = TestDb::new();
    let mut su = db.superuser();
    for (what, sql, bad) in cases {
        let t = db.create_tenant(what);
        make_chain(&db, t, 5);
        assert_eq!(first_bad(&sql_verify(&mut su, None), t), None, "{what}: clean chain");
        tamper(&mut su, sql, t);
        assert_eq!(first_bad(&sql_verify(&mut su, None), t), Some(bad), "{what}: SQL verifier");
        assert_eq!(offline_first_bad(&offline_verify(&mut su, None), t), Some(bad), "{what}: offline verifier");
    }
}

#[test]
fn cut_back_and_rewritten_chains_are_caught_against_a_digest() {
    let db = TestDb::new();
    let mut su = db.superuser();
    let cut = db.create_tenant("cut");
    let rewritten = db.create_tenant("rewritten");
    make_chain(&db, cut, 5);
    make_chain(&db, rewritten, 5);
    let d = digest(&mut su);
    let (_, mut auditor) = db.login("d5_auditor");
    assert!(sql_verify(&mut auditor, Some(&d)).iter().all(|r| r.2));

    // The newest two records removed, head moved back too: only the digest sees it.
    tamper(&mut su, "DELETE FROM d5.audit_log WHERE tenant_id = $1 AND seq > 4", cut);
    tamper(&mut su, "UPDATE d5.audit_chain_heads SET seq = 4, hash = (SELECT hash FROM d5.audit_log WHERE tenant_id = $1 AND seq = 4) WHERE tenant_id = $1", cut);
    assert_eq!(first_bad(&sql_verify(&mut auditor, None), cut), None);
    assert_eq!(first_bad(&sql_verify(&mut auditor, Some(&d)), cut), Some(5));
    assert_eq!(offline_first_bad(&offline_verify(&mut su, Some(&d)), cut), Some(5));
    // Without touching the head, the head check alone catches it.
    let lone = db.create_tenant("lone");
    make_chain(&db, lone, 3);
    tamper(&mut su, "DELETE FROM d5.audit_log WHERE tenant_id = $1 AND seq = 4", lone);
    assert_eq!(first_bad(&sql_verify(&mut auditor, None), lone), Some(4));

    // Rewrite record 3 and recompute every hash after it.
    rewrite_from(&mut su, rewritten, 3);
    assert_eq!(first_bad(&sql_verify(&mut auditor, None), rewritten), None, "a consistent rewrite passes internally");
    let v = sql_verify(&mut auditor, Some(&d));
    assert_eq!(first_bad(&v, rewritten), Some(6), "{v:?}");
    assert_eq!(offline_first_bad(&offline_verify(&mut su, Some(&d)), rewritten), Some(6));
}

/// Changes the actor of record `from` and re-hashes the chain from there, as
/// a superuser who knows the encoding could.
fn rewrite_from(su: &mut Client, t: Uuid, from: i64) {
    let rows = su
        .query(
            "SELECT seq, prev_hash, (extract(epoch FROM logged_at) * 1000000)::bigint, txid, db_role, actor, table_name,
                    operation, row_pk::text, old_row::text, new_row::text, changed_cols::text, row_count, rows_digest,
                    detail::text
               FROM d5.audit_log WHERE tenant_id = $1 ORDER BY seq",
            &[&t],
        )
        .unwrap();
    let mut prev: Option<[u8; 32]> = None;
    su.batch_execute("SET session_replication_role = replica").unwrap();
    for r in rows {
        let seq: i64 = r.get(0);
        if seq < from {
            continue;
        }
        let mut actor: Option<String> = r.get(5);
        if seq == from {
            actor = Some("mallory".into());
        }
        let stored_prev: Vec<u8> = r.get(1);
        let rec = AuditRecord {
            tenant_id: t,
            seq,
            prev_hash: prev.unwrap_or_else(|| stored_prev.as_slice().try_into().unwrap()),
            logged_at_micros: r.get(2),
            txid: r.get(3),
            db_role: r.get(4),
            actor: actor.as_deref(),
            table_name: r.get(6),
            operation: r.get(7),
            row_pk: r.get(8),
            old_row: r.get(9),
            new_row: r.get(10),
            changed_cols: r.get(11),
            row_count: r.get(12),
            rows_digest: r.get(13),
            detail: r.get(14),
        };
        let hash = record_hash(&rec);
        su.execute(
            "UPDATE d5.audit_log SET actor = $3, prev_hash = $4, hash = $5 WHERE tenant_id = $1 AND seq = $2",
            &[&t, &seq, &actor, &rec.prev_hash.to_vec(), &hash.to_vec()],
        )
        .unwrap();
        su.execute("UPDATE d5.audit_chain_heads SET hash = $2 WHERE tenant_id = $1 AND seq = $3", &[&t, &hash.to_vec(), &seq])
            .unwrap();
        prev = Some(hash);
    }
    su.batch_execute("RESET session_replication_role").unwrap();
}

#[test]
fn a_seal_keeps_a_chain_verifiable_after_old_records_are_dropped() {
    let db = TestDb::new();
    let mut su = db.superuser();
    let t = db.create_tenant("sealed");
    make_chain(&db, t, 1);
    std::thread::sleep(std::time::Duration::from_millis(20));
    make_chain(&db, t, 2);
    // Records 1 and 2 are "old": seal everything logged before record 3.
    let cutoff: String = su
        .query_one("SELECT logged_at::text FROM d5.audit_log WHERE tenant_id = $1 AND seq = 3", &[&t])
        .unwrap()
        .get(0);
    let sealed: i32 = su.query_one("SELECT d5._audit_seal($1::text::timestamptz)", &[&cutoff]).unwrap().get(0);
    assert_eq!(sealed, 1);
    let seal: serde_json::Value = su
        .query_one("SELECT detail FROM d5.audit_log WHERE tenant_id = $1 AND operation = 'SEAL'", &[&t])
        .unwrap()
        .get(0);
    assert_eq!(seal["first_kept_seq"], 3);
    assert_eq!(seal["records_dropped"], 2);
    // Retention drops the old records (here: deleted behind the guards).
    tamper(&mut su, "DELETE FROM d5.audit_log WHERE tenant_id = $1 AND seq < 3", t);
    assert_eq!(first_bad(&sql_verify(&mut su, None), t), None);
    assert_eq!(offline_first_bad(&offline_verify(&mut su, None), t), None);
    // Without the seal the shortened chain is refused at its first record.
    tamper(&mut su, "DELETE FROM d5.audit_log WHERE tenant_id = $1 AND operation = 'SEAL'", t);
    tamper(&mut su, "UPDATE d5.audit_chain_heads SET seq = seq - 1 WHERE tenant_id = $1", t);
    assert_eq!(first_bad(&sql_verify(&mut su, None), t), Some(3));
    assert_eq!(offline_first_bad(&offline_verify(&mut su, None), t), Some(3));
}

#[test]
fn schema_registration_and_binding_are_audited() {
    let db = TestDb::new();
    let t = db.create_tenant("acme");
    let (_, mut admin) = db.login("d5_admin");
    let v: i32 = admin
        .query_one("SELECT d5.register_json_schema('acme_tags', '{\"type\": \"object\", \"required\": [\"cost-center\"]}')", &[])
        .unwrap()
        .get(0);
    admin.execute("SELECT d5.bind_json_schema('d5.resources', 'tags', 'acme_tags', $1)", &[&t]).unwrap();
    let mut su = db.superuser();
    let reg: serde_json::Value = su
        .query_one(
            "SELECT detail FROM d5.audit_log WHERE tenant_id = '00000000-0000-0000-0000-000000000000' AND operation = 'REGISTER_SCHEMA'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!((reg["name"].as_str(), reg["version"].as_i64()), (Some("acme_tags"), Some(v as i64)));
    let bound: i64 = su
        .query_one("SELECT count(*) FROM d5.audit_log WHERE tenant_id = $1 AND operation = 'BIND_SCHEMA'", &[&t])
        .unwrap()
        .get(0);
    assert_eq!(bound, 1);
    assert!(sql_verify(&mut su, None).iter().all(|r| r.2));
}

#[test]
fn operators_planted_in_the_callers_search_path_never_run_as_owner() {
    let db = TestDb::new();
    let t = db.create_tenant("acme");
    let account: Uuid = db
        .superuser()
        .query_one(
            "INSERT INTO d5.cloud_accounts (tenant_id, provider, external_account_id) VALUES ($1, 'aws', '1') RETURNING id",
            &[&t],
        )
        .unwrap()
        .get(0);
    let (role, mut app) = db.login("d5_app");
    db.superuser().batch_execute(&format!("GRANT CREATE ON DATABASE {} TO {role}", db.name)).unwrap();
    // Operators the extension's own queries would pick up if they resolved
    // names through the caller's search_path; each refuses to be called.
    app.batch_execute(
        "CREATE SCHEMA trap;
         CREATE FUNCTION trap.plus(bigint, integer) RETURNS bigint LANGUAGE plpgsql
             AS $$ BEGIN RAISE EXCEPTION 'trap.+ ran as %', current_user; END $$;
         CREATE OPERATOR trap.+ (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = trap.plus);
         CREATE FUNCTION trap.eq(uuid, uuid) RETURNS boolean LANGUAGE plpgsql
             AS $$ BEGIN RAISE EXCEPTION 'trap.= ran as %', current_user; END $$;
         CREATE OPERATOR trap.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = trap.eq);
         SET search_path = trap, pg_catalog, public;",
    )
    .unwrap();
    let mut tx = app.transaction().unwrap();
    tx.execute("SELECT d5.set_tenant($1)", &[&t]).unwrap();
    tx.batch_execute(
        "INSERT INTO d5.users (email) VALUES ('a@acme.example');
         UPDATE d5.users SET role = 'admin';",
    )
    .unwrap();
    let csv = "BillingAccountId,BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,BilledCost,EffectiveCost,ListCost,ContractedCost,BillingCurrency,ChargeCategory,ServiceName,ProviderName\n\
               1,2024-09-01,2024-10-01,2024-09-02T00:00:00Z,2024-09-02T01:00:00Z,1,1,1,1,USD,Usage,EC2,AWS\n";
    tx.query_one("SELECT * FROM d5.ingest_focus($1, $2)", &[&account, &csv]).unwrap();
    tx.query_one("SELECT * FROM d5.ingest_focus($1, $2)", &[&account, &csv]).unwrap();
    tx.commit().unwrap();
    let mut su = db.superuser();
    let n: i64 = su.query_one("SELECT count(*) FROM d5.audit_log WHERE tenant_id = $1", &[&t]).unwrap().get(0);
    assert_eq!(n, 6, "tenant, account, user insert and update, two ingests");
}

/// jsonb values whose `jsonb_out` text has every shape the one-pass verifier
/// writes itself: nesting, key order, escapes, numerics of every size and
/// scale, long (compressed and out-of-line) values, large containers.
fn jsonb_corpus() -> Vec<String> {
    use rand::{Rng, SeedableRng};
    let mut v: Vec<String> = [
        "{}", "[]", "null", "true", "false", r#""""#, r#""plain""#, "0", "-0.0", "1.50", "1e-20", "-1.23e+30",
        "0.000050", "0.00005000", "1e1000", "-9999.9999", "123456789012345678901234567890.000000000001",
        r#"{"bb": 1, "a": 2, "ccc": 3, "": 0, "é": 4}"#,
        r#"{"a": {"b": [1, [2, [3, {"c": null}]]]}, "d": [[], {}, [{}]]}"#,
        r#""\u0001\u001f\b\f\n\r\t\"\\/é€𝄞""#,
        r#"{"k\"ey\n": "v\\al\u0007ue"}"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Long values: compressed in line, and stored out of line.
    v.push(format!(r#"{{"long": "{}"}}"#, "abc".repeat(2_000)));
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let noise: String = (0..20_000).map(|_| rng.sample(rand::distributions::Alphanumeric) as char).collect();
    v.push(serde_json::to_string(&noise).unwrap());
    // Containers past jsonb's offset stride of 32 entries.
    v.push(serde_json::to_string(&(0..300).map(|i| i as f64 / 7.0).collect::<Vec<_>>()).unwrap());
    v.push(serde_json::to_string(&(0..100).map(|i| (format!("key{i}"), serde_json::json!(i))).collect::<serde_json::Map<_, _>>()).unwrap());
    for _ in 0..200 {
        v.push(random_json(&mut rng, 0));
    }
    fn random_json(rng: &mut rand::rngs::StdRng, depth: usize) -> String {
        match rng.gen_range(0..if depth > 3 { 4 } else { 6 }) {
            0 => ["null", "true", "false"][rng.gen_range(0..3)].to_string(),
            1 => {
                let int: i64 = rng.gen_range(-10_i64.pow(12)..10_i64.pow(12));
                let frac = "0123456789".chars().take(rng.gen_range(0..10)).collect::<String>();
                let exp = if rng.gen_bool(0.3) { format!("e{}", rng.gen_range(-40..40)) } else { String::new() };
                if frac.is_empty() { format!("{int}{exp}") } else { format!("{int}.{frac}{exp}") }
            }
            2 | 3 => {
                let s: String = (0..rng.gen_range(0..12))
                    .map(|_| char::from_u32(rng.gen_range(1..0x2_0000)).filter(|c| !c.is_control() || *c != '\0').unwrap_or('?'))
                    .collect();
                serde_json::to_string(&s).unwrap()
            }
            4 => format!("[{}]", (0..rng.gen_range(0..6)).map(|_| random_json(rng, depth + 1)).collect::<Vec<_>>().join(",")),
            _ => {
                let members: Vec<String> = (0..rng.gen_range(0..6))
                    .map(|i| format!("{}:{}", serde_json::to_string(&format!("k{}", i * 7 % 5)).unwrap(), random_json(rng, depth + 1)))
                    .collect();
                format!("{{{}}}", members.join(","))
            }
        }
    }
    v
}

#[test]
fn the_one_pass_verifier_reads_jsonb_as_postgres_prints_it() {
    let db = TestDb::new();
    let t = db.create_tenant("jsonb");
    let mut su = db.superuser();
    let corpus = jsonb_corpus();
    for doc in &corpus {
        su.execute("SELECT d5._audit_event($1, NULL, 'TEST_JSONB', NULL, NULL, $2::text::jsonb)", &[&t, doc])
            .unwrap_or_else(|e| panic!("event with {doc:.80}: {e}"));
    }
    // The largest value really is stored out of line, and another compressed in line.
    let storage: (i64, i64) = su
        .query_one(
            "SELECT count(*) FILTER (WHERE pg_column_size(detail) < octet_length(detail::text) / 2),
                    count(*) FILTER (WHERE pg_column_size(detail) > 8000)
               FROM d5.audit_log WHERE tenant_id = $1 AND operation = 'TEST_JSONB'",
            &[&t],
        )
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert!(storage.0 >= 1 && storage.1 >= 1, "compressed and out-of-line values are among the records: {storage:?}");

    let (auditor_role, _) = db.login("d5_auditor");
    let (mut auditor, notices) = connect_keeping_notices(&db.name, &auditor_role);
    auditor.batch_execute("SET client_min_messages = debug1").unwrap();
    let reports: Vec<(Uuid, bool, Option<String>)> = auditor
        .query("SELECT tenant_id, ok, reason FROM d5.verify_audit_chain()", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(reports.iter().all(|r| r.1), "every chain verifies: {reports:?}");
    let said = notices.lock().unwrap().clone();
    let pass = said
        .iter()
        .find(|m| m.starts_with("d5 audit verification:"))
        .unwrap_or_else(|| panic!("the verifier says how it read the log: {said:?}"));
    assert!(
        pass.contains(&format!("{} chains verified in one pass", reports.len())) && pass.ends_with(" 0 read again in seq order"),
        "every chain, {} jsonb documents among them, was verified from the Rust text without a second read: {pass}",
        corpus.len()
    );

    // The same forgery is still found at its seq after the one pass gives the chain up.
    let seq: i64 = su
        .query_one("SELECT min(seq) FROM d5.audit_log WHERE tenant_id = $1 AND operation = 'TEST_JSONB'", &[&t])
        .unwrap()
        .get(0);
    tamper(&mut su, &format!("UPDATE d5.audit_log SET detail = '{{\"forged\": 1}}' WHERE tenant_id = $1 AND seq = {seq}"), t);
    notices.lock().unwrap().clear();
    let bad: (bool, Option<i64>) = auditor
        .query_one("SELECT ok, first_bad_seq FROM d5.verify_audit_chain() WHERE tenant_id = $1", &[&t])
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(bad, (false, Some(seq)));
    assert!(notices.lock().unwrap().iter().any(|m| m.ends_with(" 1 read again in seq order")), "{:?}", notices.lock().unwrap());
}

#[test]
fn changed_columns_are_the_columns_whose_values_changed() {
    let db = TestDb::new();
    let t = db.create_tenant("acme");
    let mut su = db.superuser();
    let (_, mut app) = db.login("d5_app");
    begin_as(&mut app, t);
    // tags big enough to be stored out of line (TOAST), to be compared by value.
    app.batch_execute(
        "INSERT INTO d5.cloud_accounts (provider, external_account_id) VALUES ('aws', '1');
         INSERT INTO d5.resources (account_id, resource_type, provider_resource_id, region, name, tags)
         SELECT id, 'vm', 'i-1', 'eu-1', 'web',
                (SELECT jsonb_object_agg('k' || g, (SELECT string_agg(md5(g || '-' || i), '') FROM generate_series(1, 7) i))
                   FROM generate_series(1, 49) g)
           FROM d5.cloud_accounts;
         COMMIT;",
    )
    .unwrap();
    // (update, columns that must be listed, columns that must not)
    let cases: [(&str, &[&str], &[&str]); 4] = [
        ("UPDATE d5.resources SET name = NULL, region = 'eu-2'", &["name", "region"], &["tags", "resource_type"]),
        ("UPDATE d5.resources SET name = 'db'", &["name"], &["region", "tags"]),
        ("UPDATE d5.resources SET tags = tags, resource_type = resource_type", &[], &["tags", "resource_type", "name"]),
        ("UPDATE d5.resources SET tags = tags || '{\"x\": \"1\"}'", &["tags"], &["name", "region"]),
    ];
    for (update, listed, unlisted) in cases {
        begin_as(&mut app, t);
        app.batch_execute(&format!("{update}; COMMIT")).unwrap();
        let row = su
            .query_one(
                "SELECT changed_cols,
                        changed_cols = (SELECT coalesce(jsonb_agg(n.key ORDER BY n.key COLLATE \"C\"), '[]')
                                          FROM jsonb_each(new_row) n WHERE n.value IS DISTINCT FROM old_row -> n.key)
                   FROM d5.audit_log WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1",
                &[&t],
            )
            .unwrap();
        let changed: serde_json::Value = row.get(0);
        let names: Vec<&str> = changed.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert!(row.get::<_, bool>(1), "{update}: {changed} is not the columns whose values differ");
        for c in listed {
            assert!(names.contains(c), "{update}: {c} missing from {changed}");
        }
        for c in unlisted {
            assert!(!names.contains(c), "{update}: {c} listed in {changed}");
        }
    }
    assert_eq!(first_bad(&sql_verify(&mut su, None), t), None);
}

/// An UPDATE's new row is built from its old row's jsonb with only the
/// changed columns converted; it must be `to_jsonb` of the new row, byte for
/// byte, for every kind of column `to_jsonb` treats its own way.
#[test]
fn an_updates_new_row_is_to_jsonb_of_the_new_row() {
    let db = TestDb::new();
    let t = db.create_tenant("acme");
    let mut su = db.superuser();
    su.batch_execute(
        "CREATE TYPE public.mood AS ENUM ('calm', 'loud');
         CREATE TYPE public.pair AS (a int, b text);
         CREATE DOMAIN public.small AS int CHECK (VALUE < 1000);
         CREATE DOMAIN public.doc AS jsonb;
         CREATE TABLE public.kinds (
             tenant_id uuid NOT NULL, id int PRIMARY KEY, gone int,
             i2 int2, i8 int8, num numeric, f8 float8, ok bool, t text, c char(3), v varchar,
             u uuid, d date, ts timestamp, tstz timestamptz, tm time, iv interval, b bytea,
             js json, jb jsonb, ia int[], ta text[], p public.pair, s public.small, dj public.doc,
             m public.mood, ip inet, pt point, big text,
             twice int GENERATED ALWAYS AS (i2 * 2) STORED);
         ALTER TABLE public.kinds DROP COLUMN gone;
         SELECT d5.enable_audit('public.kinds');",
    )
    .unwrap();
    su.execute(
        "INSERT INTO public.kinds VALUES ($1, 1, 1, 2, 1.50, 0.5, true, 'a \"quoted\"\nline é', 'ab', 'v',
             gen_random_uuid(), '2026-12-06', '2026-12-06 01:02:03.456', now(), '04:05', '1 day 2 hours', '\\x00ff',
             '{\"k\": 1, \"k\": 2,  \"z\" : [1, 2]}', '{\"b\": [1, {\"c\": null}], \"a\": \"x\"}', '{1,2,NULL}', '{\"x\",NULL}',
             ROW(1, 'one'), 7, '\"scalar\"', 'calm', '10.0.0.1/8', '(1,2)', repeat(md5('x'), 400))",
        &[&t],
    )
    .unwrap();
    // A column added after the row was written: the old tuple lacks it and
    // reads its default (atthasmissing).
    su.batch_execute("ALTER TABLE public.kinds ADD COLUMN late text DEFAULT 'fast default'").unwrap();
    let updates = [
        "i2 = 3",
        "late = 'set'",
        "num = 'NaN', f8 = 'Infinity'",
        "num = 12345678901234567890.000001, f8 = -0.0",
        "ok = NULL",
        "ok = false, t = E'tab\\there \\\\ \\u0001'",
        "c = 'x', v = ''",
        "d = 'infinity', ts = '-infinity', tstz = '2000-01-01 00:00:00+05'",
        "tm = NULL, iv = '-1 mon'",
        "b = NULL",
        "js = '[1, \"two\", {\"three\": 3}]'",
        "js = 'null', jb = 'null'",
        "jb = '{\"deep\": {\"er\": [true, false, null, 1.0e3]}}'",
        "jb = '42', dj = '{\"o\": 1}'",
        "dj = '[]', ia = '{}', ta = NULL",
        "ia = '{{1,2},{3,4}}', p = ROW(NULL, 'two')",
        "p = NULL, s = 999",
        "m = 'loud', ip = NULL, pt = '(3.5,-4)'",
        "big = big || 'x'",
        "big = 'small now', t = NULL",
        "i2 = i2",
        "i2 = NULL, i8 = NULL, num = NULL, f8 = NULL, ok = NULL, t = NULL, c = NULL, v = NULL, u = NULL, d = NULL, ts = NULL,
         tstz = NULL, tm = NULL, iv = NULL, b = NULL, js = NULL, jb = NULL, ia = NULL, ta = NULL, p = NULL, s = NULL,
         dj = NULL, m = NULL, ip = NULL, pt = NULL, big = NULL",
        "i2 = 5, i8 = 9223372036854775807, t = '', jb = '{}', big = repeat('y', 10000)",
    ];
    for set in updates {
        su.batch_execute(&format!("UPDATE public.kinds SET {set}")).unwrap();
        let row = su
            .query_one(
                "SELECT a.new_row::text, (SELECT to_jsonb(k)::text FROM public.kinds k)
                   FROM d5.audit_log a WHERE a.tenant_id = $1 AND a.table_name = 'public.kinds'
                  ORDER BY a.seq DESC LIMIT 1",
                &[&t],
            )
            .unwrap();
        let (recorded, expected): (String, String) = (row.get(0), row.get(1));
        assert_eq!(recorded, expected, "SET {set}: the recorded new row is not to_jsonb of the row");
    }
    assert_eq!(first_bad(&sql_verify(&mut su, None), t), None);
    assert_eq!(offline_first_bad(&offline_verify(&mut su, None), t), None);
}

/// The hash covers each record's text as UTF-8, and the verifiers read text
/// that is not UTF-8 as one replacement character whatever its bytes. So in
/// a database in another encoding, a change whose record would hold such
/// text is refused (nothing is stored), and ASCII values are audited as
/// anywhere else.
#[test]
fn audited_text_that_is_not_utf8_is_refused() {
    let db = TestDb::with_encoding("SQL_ASCII");
    let t = db.create_tenant("ascii");
    let (_, mut app) = db.login("d5_app");
    begin_as(&mut app, t);
    app.batch_execute("INSERT INTO d5.users (email, display_name) VALUES ('a@example.com', 'plain'); COMMIT").unwrap();
    begin_as(&mut app, t);
    let err = app
        .batch_execute("INSERT INTO d5.users (email, display_name) VALUES ('b@example.com', E'caf\\xe9')")
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22021", "{err:?}");
    let message = err.as_db_error().map(|d| format!("{} {}", d.message(), d.hint().unwrap_or(""))).unwrap_or_default();
    assert!(message.contains("SQL_ASCII") && message.contains("ENCODING 'UTF8'"), "{message}");
    app.batch_execute("ROLLBACK").unwrap();
    // An update to such a value is refused as well; the row keeps its value.
    begin_as(&mut app, t);
    let err = app.batch_execute("UPDATE d5.users SET display_name = E'\\xe8t\\xe9'").unwrap_err();
    assert_eq!(sqlstate(&err), "22021", "{err:?}");
    app.batch_execute("ROLLBACK").unwrap();
    let mut su = db.superuser();
    let kept: (i64, String) = su
        .query_one("SELECT count(*), min(display_name) FROM d5.users WHERE tenant_id = $1", &[&t])
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(kept, (1, "plain".to_string()));
    assert_eq!(records(&mut su, t).len(), 2, "the tenant's creation and the one insert");
    assert_eq!(first_bad(&sql_verify(&mut su, None), t), None);
}
