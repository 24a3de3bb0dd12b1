//! The audit chain across a transaction: records kept until commit (or
//! appended as rows change, past d5.audit_pending_limit or with it at 0),
//! the head kept in memory while the transaction appends, both restored when
//! a savepoint rolls back, the head row written with the first appended
//! record and once more at commit. Chains must stay gap-free and verifiable
//! whatever the mix of savepoints, rollbacks and concurrent writers.

mod common;

use common::*;
use uuid::Uuid;

fn seqs(su: &mut Client, t: Uuid) -> Vec<i64> {
    su.query("SELECT seq FROM d5.audit_log WHERE tenant_id = $1 ORDER BY seq", &[&t])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The emails of the users records of `t`'s chain, in chain order.
fn logged_emails(su: &mut Client, t: Uuid) -> Vec<String> {
    su.query(
        "SELECT new_row->>'email' FROM d5.audit_log WHERE tenant_id = $1 AND table_name = 'd5.users' ORDER BY seq",
        &[&t],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

fn head_seq(su: &mut Client, t: Uuid) -> i64 {
    su.query_one("SELECT seq FROM d5.audit_chain_heads WHERE tenant_id = $1", &[&t]).unwrap().get(0)
}

fn assert_chain_ok(su: &mut Client, t: Uuid) {
    let seqs = seqs(su, t);
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "seq runs 1.. without gaps");
    assert_eq!(head_seq(su, t), seqs.len() as i64, "the head row points at the newest record");
    // Both reads: the one chain in seq order, and every chain in physical order.
    for sql in [
        "SELECT ok, reason FROM d5.verify_audit_chain($1)",
        "SELECT ok, reason FROM d5.verify_audit_chain() WHERE tenant_id = $1",
    ] {
        let (ok, reason): (bool, Option<String>) =
            su.query_one(sql, &[&t]).map(|r| (r.get(0), r.get(1))).unwrap();
        assert!(ok, "chain verifies ({sql}): {reason:?}");
    }
}

#[test]
fn savepoint_rollbacks_leave_no_gap_and_no_stale_head() {
    // Records kept for the commit, and records appended as rows change.
    for limit in ["1MB", "0"] {
        savepoint_rollbacks_with(limit);
    }
}

fn savepoint_rollbacks_with(limit: &str) {
    let db = TestDb::new();
    let t = db.create_tenant("acme");
    let mut su = db.superuser();
    let before = seqs(&mut su, t).len();
    let (_, mut app) = db.login("d5_app");
    let set_limit = format!("SET LOCAL d5.audit_pending_limit = '{limit}'");
    begin_as(&mut app, t);
    app.batch_execute(&set_limit).unwrap();
    app.batch_execute(
        "INSERT INTO d5.users (email) VALUES ('a@x.example');
         SAVEPOINT s1;
         INSERT INTO d5.users (email) VALUES ('b@x.example');
         SAVEPOINT s2;
         INSERT INTO d5.users (email) VALUES ('c@x.example');
         ROLLBACK TO s2;
         INSERT INTO d5.users (email) VALUES ('d@x.example');
         ROLLBACK TO s1;
         INSERT INTO d5.users (email) VALUES ('e@x.example');
         SAVEPOINT s3;
         INSERT INTO d5.users (email) VALUES ('f@x.example');
         RELEASE s3;
         COMMIT;",
    )
    .unwrap();
    let logged = logged_emails(&mut su, t);
    assert_eq!(logged, ["a@x.example", "e@x.example", "f@x.example"], "only what committed is recorded ({limit})");
    assert_eq!(seqs(&mut su, t).len(), before + 3);
    assert_chain_ok(&mut su, t);

    // A statement that fails inside a PL/pgSQL exception block is a
    // subtransaction too: its record goes, the next one takes its seq.
    begin_as(&mut app, t);
    app.batch_execute(&set_limit).unwrap();
    app.batch_execute(
        "DO $$ BEGIN
             INSERT INTO d5.users (email) VALUES ('g@x.example');
             INSERT INTO d5.users (email) VALUES ('g@x.example');  -- duplicate: fails
         EXCEPTION WHEN unique_violation THEN NULL;
         END $$;
         INSERT INTO d5.users (email) VALUES ('h@x.example');
         COMMIT;",
    )
    .unwrap();
    assert_eq!(seqs(&mut su, t).len(), before + 4);
    assert_chain_ok(&mut su, t);
}

#[test]
fn a_chain_first_locked_in_a_rolled_back_savepoint_is_locked_again() {
    let db = TestDb::new();
    let t = db.create_tenant("acme");
    let mut su = db.superuser();
    let (_, mut first) = db.login("d5_app");
    let (_, mut second) = db.login("d5_app");
    begin_as(&mut first, t);
    // Appending as rows change, so the savepoint takes the chain's lock.
    first
        .batch_execute(
            "SET LOCAL d5.audit_pending_limit = 0;
             SAVEPOINT s;
             INSERT INTO d5.users (email) VALUES ('rolled-back@x.example');
             ROLLBACK TO s;",
        )
        .unwrap();
    // The rollback released the chain's lock: another writer goes ahead
    // (a lock still held would make it wait, and time out here).
    begin_with(&mut second, "SET statement_timeout = '20s'; BEGIN", t);
    second.batch_execute("INSERT INTO d5.users (email) VALUES ('second@x.example'); COMMIT").unwrap();
    // The first transaction must now chain onto the second's record.
    first.batch_execute("INSERT INTO d5.users (email) VALUES ('first@x.example'); COMMIT").unwrap();
    let order = logged_emails(&mut su, t);
    assert_eq!(order, ["second@x.example", "first@x.example"]);
    assert_chain_ok(&mut su, t);
}

#[test]
fn a_bulk_statement_updates_the_head_once_at_commit() {
    let db = TestDb::new();
    let t = db.create_tenant("acme");
    let mut su = db.superuser();
    let (app_role, mut app) = db.login("d5_app");
    // This login also verifies, to check what a verifier inside the writing
    // transaction sees.
    su.batch_execute(&format!("GRANT d5_auditor TO {app_role}")).unwrap();
    begin_as(&mut app, t);
    app.batch_execute(
        "INSERT INTO d5.cloud_accounts (provider, external_account_id) VALUES ('aws', '1');
         INSERT INTO d5.resources (account_id, resource_type, provider_resource_id)
         SELECT a.id, 'vm', 'i-' || g FROM d5.cloud_accounts a, generate_series(1, 3000) g;
         UPDATE d5.resources SET region = 'eu-west-1';",
    )
    .unwrap();
    // 6,001 records so far; the head row was written with the first only.
    let head_updates: i64 = app
        .query_one("SELECT pg_stat_get_xact_tuples_updated('d5.audit_chain_heads'::regclass)", &[])
        .unwrap()
        .get(0);
    assert_eq!(head_updates, 1, "the head is kept in memory while the transaction writes");
    let (ok, records, reason): (bool, i64, Option<String>) = app
        .query_one("SELECT ok, records, reason FROM d5.verify_audit_chain($1)", &[&t])
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .unwrap();
    assert!(ok, "a verifier inside the writing transaction sees its head: {reason:?}");
    app.batch_execute("COMMIT").unwrap();
    assert!(records >= 6001, "{records}");
    assert_eq!(seqs(&mut su, t).len() as i64, records);
    assert_chain_ok(&mut su, t);
}

#[test]
fn a_chain_verifies_in_physical_order_after_its_rows_were_moved_around() {
    // VACUUM FULL of one partition and rows of one chain split across
    // partitions put the heap out of seq order: the physical-order pass must
    // fall back to a seq-ordered read and still report exactly.
    let db = TestDb::new();
    let t = db.create_tenant("acme");
    let mut su = db.superuser();
    let (_, mut app) = db.login("d5_app");
    for i in 0..40 {
        begin_as(&mut app, t);
        app.execute("INSERT INTO d5.users (email) VALUES ($1)", &[&format!("u{i}@x.example")]).unwrap();
        app.batch_execute("COMMIT").unwrap();
    }
    // Reverse the physical order of the chain: copy it out, and back in
    // newest first (as a superuser behind the guards).
    su.batch_execute(
        "BEGIN;
         SET LOCAL session_replication_role = replica;
         CREATE TEMP TABLE saved AS SELECT * FROM d5.audit_log;
         DELETE FROM d5.audit_log;
         INSERT INTO d5.audit_log SELECT * FROM saved ORDER BY seq DESC;
         COMMIT;",
    )
    .unwrap();
    assert_chain_ok(&mut su, t);
    // And a tampered record among reversed ones is still found at its seq.
    su.batch_execute(
        "SET session_replication_role = replica;
         UPDATE d5.audit_log SET actor = 'mallory' WHERE seq = 17;
         RESET session_replication_role;",
    )
    .unwrap();
    let (ok, bad): (bool, Option<i64>) = su
        .query_one("SELECT ok, first_bad_seq FROM d5.verify_audit_chain() WHERE tenant_id = $1", &[&t])
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert!(!ok);
    assert_eq!(bad, Some(17));
}

#[test]
fn repeatable_read_and_serializable_writers_chain_onto_records_committed_after_their_snapshot() {
    // The chain's end is read under the newest snapshot: a transaction whose
    // snapshot predates another writer's commit still appends after that
    // record, instead of failing with a serialization error or forking.
    let db = TestDb::new();
    let t = db.create_tenant("acme");
    let mut su = db.superuser();
    let (_, mut early) = db.login("d5_app");
    let (_, mut other) = db.login("d5_app");
    for (i, level) in ["REPEATABLE READ", "SERIALIZABLE"].into_iter().enumerate() {
        begin_with(&mut early, &format!("BEGIN ISOLATION LEVEL {level}"), t);
        // Takes the transaction's snapshot.
        early.query("SELECT count(*) FROM d5.users", &[]).unwrap();
        begin_as(&mut other, t);
        other.execute("INSERT INTO d5.users (email) VALUES ($1)", &[&format!("other{i}@x.example")]).unwrap();
        other.batch_execute("COMMIT").unwrap();
        // Two records: the first writes the head with itself, the second at commit.
        for n in 0..2 {
            early
                .execute("INSERT INTO d5.users (email) VALUES ($1)", &[&format!("early{i}.{n}@x.example")])
                .unwrap_or_else(|e| panic!("{level} writer after a newer commit: {e}"));
        }
        early.batch_execute("COMMIT").unwrap_or_else(|e| panic!("{level} commit: {e}"));
        assert_chain_ok(&mut su, t);
    }
    let order = logged_emails(&mut su, t);
    assert_eq!(
        order,
        ["other0@x.example", "early0.0@x.example", "early0.1@x.example", "other1@x.example", "early1.0@x.example", "early1.1@x.example"]
    );
}

/// The chain locks (a transaction-scoped advisory lock class of their own,
/// objsubid 213, which pg_advisory_lock's classes 1 and 2 cannot reach)
/// `pid` holds, or waits for when `granted` is false.
fn chain_locks(su: &mut Client, pid: Option<i32>, granted: bool) -> i64 {
    su.query_one(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
          WHERE a.datname = current_database() AND ($1::int IS NULL OR l.pid = $1)
            AND l.locktype = 'advisory' AND l.objsubid = 213 AND l.mode = 'ExclusiveLock' AND l.granted = $2",
        &[&pid, &granted],
    )
    .unwrap()
    .get(0)
}

fn backend_pid(c: &mut Client) -> i32 {
    c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0)
}

#[test]
fn an_open_transaction_does_not_hold_up_its_tenants_other_writers() {
    // Records are kept until commit: a transaction that wrote and stays open
    // holds no chain lock, and another writer of the tenant commits past it.
    let db = TestDb::new();
    let t = db.create_tenant("acme");
    let mut su = db.superuser();
    let (_, mut open) = db.login("d5_app");
    let (_, mut other) = db.login("d5_app");
    begin_as(&mut open, t);
    open.batch_execute(
        "INSERT INTO d5.users (email) VALUES ('open@x.example');
         UPDATE d5.users SET role = 'admin' WHERE email = 'open@x.example';",
    )
    .unwrap();
    let pid = backend_pid(&mut open);
    assert_eq!(chain_locks(&mut su, Some(pid), true), 0, "an open transaction holds no chain lock");
    begin_with(&mut other, "SET lock_timeout = '200ms'; BEGIN", t);
    other
        .batch_execute("INSERT INTO d5.users (email) VALUES ('other@x.example'); COMMIT")
        .unwrap_or_else(|e| panic!("the other writer was held up: {e}"));
    // The open transaction's records join the chain when it commits, after
    // the record committed meanwhile, in the order its changes were made.
    open.batch_execute("COMMIT").unwrap();
    assert_eq!(logged_emails(&mut su, t), ["other@x.example", "open@x.example", "open@x.example"]);
    let ops: Vec<String> = su
        .query("SELECT operation FROM d5.audit_log WHERE tenant_id = $1 AND table_name = 'd5.users' ORDER BY seq", &[&t])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ops, ["INSERT", "INSERT", "UPDATE"]);
    assert_chain_ok(&mut su, t);
}

#[test]
fn writers_of_one_chain_wait_on_its_lock_not_on_the_head_row() {
    let db = TestDb::new();
    let t = db.create_tenant("acme");
    let u = db.create_tenant("other");
    let mut su = db.superuser();
    let (_, mut holder) = db.login("d5_app");
    let (_, mut waiter) = db.login("d5_app");
    // With d5.audit_pending_limit = 0 a record joins its chain when its row
    // changes, and the chain's lock is held from there to the end of the
    // transaction (as it is from the commit of a transaction that kept its
    // records, or from when they passed the limit).
    begin_as(&mut holder, t);
    holder
        .batch_execute(
            "SET LOCAL d5.audit_pending_limit = 0;
             INSERT INTO d5.users (email) VALUES ('holder@x.example')",
        )
        .unwrap();
    let holder_pid = backend_pid(&mut holder);
    assert_eq!(chain_locks(&mut su, Some(holder_pid), true), 1, "the writer holds its chain's lock");
    // Another tenant's writer does not wait.
    begin_with(&mut waiter, "SET lock_timeout = '200ms'; BEGIN", u);
    waiter.batch_execute("INSERT INTO d5.users (email) VALUES ('elsewhere@x.example'); COMMIT").unwrap();

    // The same tenant's writer keeps its record and waits at its commit on
    // that lock (not on a row or on the holder's transaction id) until the
    // holder commits, then chains after it.
    let (waited, mut waiter) = std::thread::scope(|s| {
        let waiting = s.spawn(move || {
            begin_with(&mut waiter, "SET lock_timeout = '20s'; BEGIN", t);
            waiter.batch_execute("INSERT INTO d5.users (email) VALUES ('waiter@x.example'); COMMIT").unwrap();
            waiter
        });
        let mut seen = false;
        for _ in 0..400 {
            if chain_locks(&mut su, None, false) == 1 {
                seen = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        holder.batch_execute("COMMIT").unwrap();
        (seen, waiting.join().unwrap())
    });
    assert!(waited, "the second writer of the chain waited on the chain lock");

    // Under lock_timeout it gives up (55P03) with its change undone.
    begin_as(&mut holder, t);
    holder
        .batch_execute(
            "SET LOCAL d5.audit_pending_limit = 0;
             INSERT INTO d5.users (email) VALUES ('holder2@x.example')",
        )
        .unwrap();
    begin_with(&mut waiter, "SET lock_timeout = '200ms'; BEGIN", t);
    waiter.batch_execute("INSERT INTO d5.users (email) VALUES ('timed-out@x.example')").unwrap();
    let err = waiter.batch_execute("COMMIT").unwrap_err();
    assert_eq!(sqlstate(&err), "55P03", "{err}");
    holder.batch_execute("COMMIT").unwrap();
    let lost: i64 = su.query_one("SELECT count(*) FROM d5.users WHERE email = 'timed-out@x.example'", &[]).unwrap().get(0);
    assert_eq!(lost, 0, "the change whose record could not join its chain did not commit");
    let order = logged_emails(&mut su, t);
    assert_eq!(order, ["holder@x.example", "waiter@x.example", "holder2@x.example"]);
    assert_chain_ok(&mut su, t);
    assert_chain_ok(&mut su, u);
}

#[test]
fn kept_records_past_the_limit_join_their_chain_at_once() {
    let db = TestDb::new();
    let t = db.create_tenant("acme");
    let mut su = db.superuser();
    let (_, mut app) = db.login("d5_app");
    begin_as(&mut app, t);
    app.batch_execute("SET LOCAL d5.audit_pending_limit = '16kB'").unwrap();
    app.batch_execute("INSERT INTO d5.users (email) VALUES ('first@x.example')").unwrap();
    let pid = backend_pid(&mut app);
    assert_eq!(chain_locks(&mut su, Some(pid), true), 0, "one record is kept");
    app.batch_execute("INSERT INTO d5.users (email) SELECT 'u' || g || '@x.example' FROM generate_series(1, 100) g")
        .unwrap();
    assert_eq!(chain_locks(&mut su, Some(pid), true), 1, "past the limit, the records were appended");
    // From here the chain's records are appended as rows change, in order.
    app.batch_execute(
        "UPDATE d5.users SET role = 'admin' WHERE email = 'first@x.example';
         COMMIT;",
    )
    .unwrap();
    let emails = logged_emails(&mut su, t);
    assert_eq!(emails.len(), 102);
    assert_eq!(emails.first().map(String::as_str), Some("first@x.example"));
    assert_eq!(emails.last().map(String::as_str), Some("first@x.example"), "the UPDATE came last");
    assert_chain_ok(&mut su, t);
}

#[test]
fn setting_the_limit_to_zero_mid_transaction_keeps_the_order_of_changes() {
    let db = TestDb::new();
    let t = db.create_tenant("acme");
    let mut su = db.superuser();
    let (_, mut app) = db.login("d5_app");
    begin_as(&mut app, t);
    app.batch_execute(
        "INSERT INTO d5.users (email) VALUES ('kept@x.example');
         SET LOCAL d5.audit_pending_limit = 0;
         INSERT INTO d5.users (email) VALUES ('at-once@x.example');
         COMMIT;",
    )
    .unwrap();
    assert_eq!(logged_emails(&mut su, t), ["kept@x.example", "at-once@x.example"]);
    assert_chain_ok(&mut su, t);
}

#[test]
fn kept_records_survive_a_failed_append_in_a_rolled_back_savepoint() {
    // Records kept in the transaction, then a subtransaction whose new record
    // passes the limit: the append of all of them fails there (a CHECK a DBA
    // put on the log refuses one) and the exception block rolls it back. The
    // appends it made are undone, and the older records must still join the
    // chain at commit.
    let db = TestDb::new();
    let t = db.create_tenant("acme");
    let mut su = db.superuser();
    su.batch_execute("ALTER TABLE d5.audit_log ADD CONSTRAINT refuse_bad CHECK (new_row->>'email' IS DISTINCT FROM 'bad@x.example')")
        .unwrap();
    let (_, mut app) = db.login("d5_app");
    begin_as(&mut app, t);
    app.batch_execute(
        "INSERT INTO d5.users (email) VALUES ('a@x.example'), ('b@x.example');
         DO $$ BEGIN
             SET LOCAL d5.audit_pending_limit = 1;
             INSERT INTO d5.users (email) VALUES ('bad@x.example');
         EXCEPTION WHEN check_violation THEN NULL;
         END $$;
         INSERT INTO d5.users (email) VALUES ('c@x.example');
         COMMIT;",
    )
    .unwrap();
    let users: Vec<String> =
        su.query("SELECT email FROM d5.users ORDER BY email", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(users, ["a@x.example", "b@x.example", "c@x.example"]);
    assert_eq!(logged_emails(&mut su, t), ["a@x.example", "b@x.example", "c@x.example"], "every committed change has its record");
    assert_chain_ok(&mut su, t);
}

#[test]
fn records_appended_in_a_savepoint_that_rolls_back_are_kept_again() {
    // A record kept in the transaction is appended, past the limit, inside a
    // savepoint; the savepoint rolls back. Its change stands, so its record
    // must join the chain at commit; the savepoint's change and record go.
    // A released savepoint's appends stand with their changes.
    let db = TestDb::new();
    let t = db.create_tenant("acme");
    let mut su = db.superuser();
    let (_, mut app) = db.login("d5_app");
    let pid = backend_pid(&mut app);
    begin_as(&mut app, t);
    app.batch_execute(
        "SET LOCAL d5.audit_pending_limit = '1kB';
         INSERT INTO d5.users (email) VALUES ('kept@x.example');",
    )
    .unwrap();
    assert_eq!(chain_locks(&mut su, Some(pid), true), 0, "the first record is kept");
    app.batch_execute(
        "SAVEPOINT s;
         INSERT INTO d5.users (email) VALUES ('rolled-back@x.example');",
    )
    .unwrap();
    assert_eq!(chain_locks(&mut su, Some(pid), true), 1, "past the limit, both records were appended");
    app.batch_execute("ROLLBACK TO s").unwrap();
    assert_eq!(chain_locks(&mut su, Some(pid), true), 0, "the rollback undid the appends and released the lock");
    app.batch_execute(
        "SAVEPOINT r;
         INSERT INTO d5.users (email) VALUES ('released@x.example');
         RELEASE r;
         COMMIT;",
    )
    .unwrap();
    let users: Vec<String> =
        su.query("SELECT email FROM d5.users ORDER BY email", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(users, ["kept@x.example", "released@x.example"]);
    assert_eq!(logged_emails(&mut su, t), ["kept@x.example", "released@x.example"], "every committed change has its record");
    assert_chain_ok(&mut su, t);
}

#[test]
fn writers_of_two_tenants_in_opposite_orders_do_not_deadlock() {
    // Each transaction locks its chains at commit, in tenant order. Locked as
    // rows changed, the second INSERT of each would wait for the other.
    let db = TestDb::new();
    let a = db.create_tenant("a");
    let b = db.create_tenant("b");
    let mut one = db.superuser();
    let mut two = db.superuser();
    let insert = "INSERT INTO d5.users (tenant_id, email) VALUES ($1, $2)";
    one.batch_execute("SET lock_timeout = '2s'; BEGIN").unwrap();
    two.batch_execute("SET lock_timeout = '2s'; BEGIN").unwrap();
    one.execute(insert, &[&a, &"one@a.example"]).unwrap();
    two.execute(insert, &[&b, &"two@b.example"]).unwrap();
    one.execute(insert, &[&b, &"one@b.example"]).unwrap();
    two.execute(insert, &[&a, &"two@a.example"]).unwrap();
    one.batch_execute("COMMIT").unwrap();
    two.batch_execute("COMMIT").unwrap();
    let mut su = db.superuser();
    assert_eq!(logged_emails(&mut su, a), ["one@a.example", "two@a.example"]);
    assert_eq!(logged_emails(&mut su, b), ["one@b.example", "two@b.example"]);
    assert_chain_ok(&mut su, a);
    assert_chain_ok(&mut su, b);
}

#[test]
fn head_rows_stay_findable_when_their_updates_cannot_be_hot() {
    // The head row is updated directly (no UPDATE statement). When the new
    // version cannot stay on its page (a HOT update), it needs its own index
    // entry, or the next writer's index lookup would miss it. An open
    // snapshot keeps every old version alive, so the head rows' page fills
    // and updates must move to other pages.
    let db = TestDb::new();
    let tenants: Vec<Uuid> = (0..3).map(|i| db.create_tenant(&format!("t{i}"))).collect();
    let mut su = db.superuser();
    let mut holder = db.superuser();
    holder.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM d5.audit_chain_heads").unwrap();
    let (_, mut app) = db.login("d5_app");
    for i in 0..250 {
        for t in &tenants {
            begin_as(&mut app, *t);
            app.execute("INSERT INTO d5.users (email) VALUES ($1)", &[&format!("u{i}@x.example")]).unwrap();
            app.batch_execute("COMMIT").unwrap();
        }
    }
    holder.batch_execute("COMMIT").unwrap();
    // The rows were made on page 0; a version on a later page came from an
    // update that was not HOT.
    let last_page: f64 = su
        .query_one("SELECT max((ctid::text::point)[0]) FROM d5.audit_chain_heads", &[])
        .unwrap()
        .get(0);
    assert!(last_page > 0.0, "the head rows' updates left their page (not HOT)");
    // Found through the index, as the writers find them.
    su.batch_execute("SET enable_seqscan = off; SET enable_bitmapscan = off").unwrap();
    for t in &tenants {
        assert_chain_ok(&mut su, *t);
    }
}
