//! Connection pooling: a real PgBouncer in transaction pooling mode with two
//! server connections per pool, and many clients of different tenants
//! interleaving transactions on them: reads, writes, a transaction that
//! forgets to set the tenant, one that fails midway, single statements.
//! No transaction ever starts with a tenant in force or sees another
//! tenant's rows. A session-level setting, set the same way, does travel
//! between clients here: that is what a session-scoped tenant would do, and
//! what these checks would catch.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postgres::SimpleQueryMessage;

use super::*;

/// A PgBouncer of our own (as the postgres user), stopped at the end.
struct PgBouncer {
    child: Child,
    dir: String,
    port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl PgBouncer {
    fn start(db: &str, users: &[&str]) -> PgBouncer {
        let dir = format!("{}/target/pg/res_bouncer_{}", env!("CARGO_MANIFEST_DIR"), std::process::id());
        let upstream = cluster();
        let mut log = String::new();
        for _ in 0..3 {
            // The port is free now; another process could take it before
            // PgBouncer binds it, hence the retries.
            let port = free_port();
            std::fs::create_dir_all(&dir).unwrap();
            let userlist: String = users.iter().map(|u| format!("\"{u}\" \"\"\n")).collect();
            std::fs::write(format!("{dir}/userlist.txt"), userlist).unwrap();
            let ini = format!(
                "[databases]\n{db} = host={host} port={up} dbname={db}\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {dir}/userlist.txt\n\
                 pool_mode = transaction\ndefault_pool_size = 2\nreserve_pool_size = 0\nmax_db_connections = 3\n\
                 max_client_conn = 100\nignore_startup_parameters = extra_float_digits\n\
                 logfile = {dir}/pgbouncer.log\n",
                host = upstream.host,
                up = upstream.port
            );
            std::fs::write(format!("{dir}/pgbouncer.ini"), ini).unwrap();
            Command::new("chown").args(["-R", "postgres:postgres", &dir]).status().unwrap();
            // Debian installs it in /usr/sbin, which a test's PATH may lack.
            let exe = if std::path::Path::new("/usr/sbin/pgbouncer").exists() { "/usr/sbin/pgbouncer" } else { "pgbouncer" };
            let child = Command::new("setpriv")
                .args(["--reuid=postgres", "--regid=postgres", "--clear-groups", exe])
                .arg(format!("{dir}/pgbouncer.ini"))
                .spawn()
                .expect("start pgbouncer (Debian package pgbouncer, see scripts/setup.sh)");
            // Dropped on failure: killed, its directory removed.
            let mut bouncer = PgBouncer { child, dir: dir.clone(), port };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && bouncer.child.try_wait().unwrap().is_none() {
                if bouncer.connect(db, users[0]).is_ok() {
                    return bouncer;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            log = std::fs::read_to_string(format!("{dir}/pgbouncer.log")).unwrap_or_default();
        }
        panic!("pgbouncer did not start: {log}");
    }

    fn connect(&self, db: &str, user: &str) -> Result<Client, postgres::Error> {
        Client::connect(&format!("host=127.0.0.1 port={} user={user} dbname={db}", self.port), NoTls)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Rows of a simple-protocol query (a pooler in transaction mode does not
/// keep named prepared statements across transactions).
fn rows(c: &mut Client, sql: &str) -> Result<Vec<Vec<Option<String>>>, postgres::Error> {
    Ok(c.simple_query(sql)?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(String::from)).collect()),
            _ => None,
        })
        .collect())
}

fn one(c: &mut Client, sql: &str) -> Option<String> {
    rows(c, sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"))[0][0].clone()
}

/// What one client saw, for the checks after all have finished.
#[derive(Default)]
struct Seen {
    violations: Vec<String>,
    /// server backend pid -> tenants it served.
    backends: BTreeMap<String, BTreeSet<Uuid>>,
    /// session settings left by another tenant's client, seen at a transaction start.
    foreign_canaries: usize,
    transactions: usize,
}

/// One client of `tenant`: `n` transactions of every kind, in turn.
fn client(c: &mut Client, tenant: Uuid, worker: usize, n: usize, seen: &Mutex<Seen>) {
    let mut local = Seen::default();
    let mut violation = |v: String| local.violations.push(format!("client {worker} ({tenant}): {v}"));
    let mut backends: Vec<String> = Vec::new();
    let mut canaries = 0;
    for i in 0..n {
        let kind = (i + worker) % 6;
        if kind == 5 {
            // A statement on its own is a transaction of its own.
            let t = one(c, "SELECT d5.current_tenant()");
            if t.is_some() {
                violation(format!("single statement {i} ran with tenant {t:?}"));
            }
            continue;
        }
        c.batch_execute("BEGIN").unwrap();
        // The very first thing every transaction sees.
        let start = rows(c, "SELECT d5.current_tenant(), pg_backend_pid(), current_setting('res.canary', true)").unwrap();
        let (t, pid, canary) = (start[0][0].clone(), start[0][1].clone().unwrap(), start[0][2].clone());
        if t.is_some() {
            violation(format!("transaction {i} started with tenant {t:?}"));
        }
        if canary.as_deref().is_some_and(|v| !v.is_empty() && v != tenant.to_string()) {
            canaries += 1;
        }
        backends.push(pid);
        if kind == 2 {
            // Forgot set_tenant: nothing to read, nothing may be written.
            let n = one(c, "SELECT count(*) FROM d5.users").unwrap();
            if n != "0" {
                violation(format!("{n} users visible without a tenant"));
            }
            match c.batch_execute(&format!("INSERT INTO d5.users (tenant_id, email) VALUES ('{tenant}', 'x{worker}-{i}@pool.example')")) {
                Ok(()) => violation("insert without a tenant succeeded".into()),
                Err(e) if sqlstate(&e) == "42501" => {}
                Err(e) => violation(format!("insert without a tenant: {e:?}")),
            }
            c.batch_execute("ROLLBACK").unwrap();
            continue;
        }
        c.batch_execute(&format!("SELECT d5.set_tenant('{tenant}')")).unwrap();
        // Leave a session-level mark, as a session-scoped tenant would.
        c.batch_execute(&format!("SELECT set_config('res.canary', '{tenant}', false)")).unwrap();
        if one(c, "SELECT d5.current_tenant()") != Some(tenant.to_string()) {
            violation(format!("transaction {i}: set_tenant did not take"));
        }
        if kind == 1 || kind == 3 {
            c.batch_execute(&format!("INSERT INTO d5.users (email) VALUES ('w{worker}-{i}@pool.example')")).unwrap();
        }
        for r in rows(c, "SELECT tenant_id::text FROM d5.users UNION ALL SELECT tenant_id::text FROM d5.resources").unwrap() {
            if r[0] != Some(tenant.to_string()) {
                violation(format!("transaction {i} saw a row of tenant {:?}", r[0]));
            }
        }
        if kind == 4 {
            // Hold the server connection a little so that others queue.
            c.batch_execute("SELECT pg_sleep(0.005)").unwrap();
        }
        if kind == 3 {
            // Fails midway: the pooler gets the connection back after ROLLBACK.
            assert_eq!(sqlstate(&c.batch_execute("SELECT 1 / 0").unwrap_err()), "22012");
            c.batch_execute("ROLLBACK").unwrap();
        } else {
            c.batch_execute("COMMIT").unwrap();
        }
    }
    let mut all = seen.lock().unwrap();
    all.violations.extend(local.violations);
    for pid in backends {
        all.backends.entry(pid).or_default().insert(tenant);
    }
    all.foreign_canaries += canaries;
    all.transactions += n;
}

#[test]
fn transaction_pooling_never_carries_a_tenant_into_another_transaction() {
    let db = TestDb::new();
    let (app1, _) = db.login("d5_app");
    let (app2, _) = db.login("d5_app");
    let mut su = db.superuser();
    let mut tenants = Vec::new();
    for i in 0..4 {
        let t = db.create_tenant(&format!("pool{i}"));
        su.execute(
            "WITH a AS (INSERT INTO d5.cloud_accounts (tenant_id, provider, external_account_id) VALUES ($1, 'aws', $2) RETURNING id)
             INSERT INTO d5.resources (tenant_id, account_id, resource_type, provider_resource_id) SELECT $1, id, 'vm', 'i-1' FROM a",
            &[&t, &format!("pool{i}")],
        )
        .unwrap();
        su.execute(
            "INSERT INTO d5.users (tenant_id, email) SELECT $1, 'seed' || g || '@pool.example' FROM generate_series(1, 3) g",
            &[&t],
        )
        .unwrap();
        tenants.push(t);
    }
    let bouncer = PgBouncer::start(&db.name, &[app1.as_str(), app2.as_str()]);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let per_client = 60;
    let threads: Vec<_> = (0..10)
        .map(|w| {
            // Most clients share one role (one pool of two server connections).
            let role = if w < 8 { app1.clone() } else { app2.clone() };
            let mut c = bouncer.connect(&db.name, &role).expect("connect through pgbouncer");
            let (tenant, seen) = (tenants[w % tenants.len()], seen.clone());
            std::thread::spawn(move || client(&mut c, tenant, w, per_client, &seen))
        })
        .collect();
    for t in threads {
        t.join().expect("a client panicked");
    }
    let seen = seen.lock().unwrap();
    assert!(seen.violations.is_empty(), "isolation broken through the pooler:\n{:#?}", seen.violations);
    assert_eq!(seen.transactions, 10 * per_client);
    // The setup really multiplexes: few server backends, each serving several tenants ...
    assert!(seen.backends.len() <= 3, "more server connections than the pool allows: {:?}", seen.backends);
    assert!(seen.backends.values().any(|t| t.len() >= 3), "no backend served several tenants: {:?}", seen.backends);
    // ... and a session-level setting does leak between clients here.
    assert!(seen.foreign_canaries > 0, "no session state crossed clients: the test would not catch a session-scoped tenant");
    // Every committed write is there, under the tenant of the client that made it.
    let written: Vec<(String, Uuid)> = su
        .query("SELECT email, tenant_id FROM d5.users WHERE email LIKE 'w%@pool.example'", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let kind1 = (0..10).map(|w| (0..per_client).filter(|i| (i + w) % 6 == 1).count()).sum::<usize>();
    assert_eq!(written.len(), kind1, "committed writes (those of kind 3 were rolled back)");
    for (email, t) in &written {
        let w: usize = email[1..email.find('-').unwrap()].parse().unwrap();
        assert_eq!(*t, tenants[w % tenants.len()], "{email} stored under another tenant");
    }
    drop(bouncer);
}
