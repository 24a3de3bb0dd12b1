//! Shared harness for integration tests: a real cluster, a fresh database per
//! test with the extension created, and ordinary LOGIN roles granted d5_app /
//! d5_auditor / d5_admin — never a superuser where a claim about privileges
//! is being tested.
#![allow(dead_code)]

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

pub use postgres::{Client, NoTls};

pub struct Cluster {
    pub host: String,
    pub port: u16,
}

/// The cluster started by `scripts/test.sh` (D5_TEST_PGHOST/PORT), or one
/// started here so `cargo test --test X` also works on its own.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        if let (Ok(host), Ok(port)) = (std::env::var("D5_TEST_PGHOST"), std::env::var("D5_TEST_PGPORT")) {
            return Cluster { host, port: port.parse().expect("D5_TEST_PGPORT is a port") };
        }
        let root = env!("CARGO_MANIFEST_DIR");
        let out = Command::new(format!("{root}/scripts/pgcluster"))
            .args(["start", "test"])
            .output()
            .expect("run scripts/pgcluster");
        assert!(out.status.success(), "pgcluster failed: {}", String::from_utf8_lossy(&out.stderr));
        let env_file = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let env = std::fs::read_to_string(env_file).expect("cluster env file");
        let port = env
            .split_whitespace()
            .find_map(|w| w.strip_prefix("PGPORT="))
            .and_then(|p| p.parse().ok())
            .expect("PGPORT in env file");
        Cluster { host: "127.0.0.1".into(), port }
    })
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

pub fn connect(db: &str, user: &str) -> Client {
    let c = cluster();
    Client::connect(&format!("host={} port={} user={user} dbname={db}", c.host, c.port), NoTls)
        .unwrap_or_else(|e| panic!("connect {user}@{db}: {e}"))
}

/// A connection that keeps every notice and log message the server sends it.
pub fn connect_keeping_notices(db: &str, user: &str) -> (Client, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let c = cluster();
    let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&kept);
    let mut config: postgres::Config =
        format!("host={} port={} user={user} dbname={db}", c.host, c.port).parse().expect("connection string");
    config.notice_callback(move |n| sink.lock().unwrap().push(n.message().to_string()));
    let client = config.connect(NoTls).unwrap_or_else(|e| panic!("connect {user}@{db}: {e}"));
    (client, kept)
}

/// A database of its own with `CREATE EXTENSION d5_storage`, dropped at the end.
pub struct TestDb {
    pub name: String,
    roles: std::sync::Mutex<Vec<String>>,
}

impl TestDb {
    pub fn new() -> TestDb {
        TestDb::created_with("")
    }

    /// A database in `encoding` (the cluster's is UTF8), from template0.
    pub fn with_encoding(encoding: &str) -> TestDb {
        TestDb::created_with(&format!("ENCODING '{encoding}' LOCALE 'C' TEMPLATE template0"))
    }

    fn created_with(options: &str) -> TestDb {
        let name = unique("d5t");
        let mut admin = connect("postgres", "postgres");
        admin.batch_execute(&format!("CREATE DATABASE {name} {options}")).unwrap();
        let db = TestDb { name, roles: Default::default() };
        // Roles and parameter grants are cluster-wide catalogs: concurrent
        // CREATE EXTENSION in several databases would race on them.
        static CREATE_EXTENSION: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = CREATE_EXTENSION.lock().unwrap_or_else(|e| e.into_inner());
        db.superuser().batch_execute("CREATE EXTENSION d5_storage").unwrap();
        db
    }

    /// Only for setup and for playing the attacker behind the guards.
    pub fn superuser(&self) -> Client {
        connect(&self.name, "postgres")
    }

    /// A new LOGIN role (no other attributes) granted `group`, and a connection as it.
    pub fn login(&self, group: &str) -> (String, Client) {
        let role = unique(&format!("{group}_login"));
        self.superuser()
            .batch_execute(&format!("CREATE ROLE {role} LOGIN; GRANT {group} TO {role}"))
            .unwrap();
        self.roles.lock().unwrap_or_else(|e| e.into_inner()).push(role.clone());
        let client = connect(&self.name, &role);
        (role, client)
    }

    pub fn connect_as(&self, role: &str) -> Client {
        connect(&self.name, role)
    }

    /// Provisions a tenant as a d5_admin login would.
    pub fn create_tenant(&self, name: &str) -> uuid::Uuid {
        let mut su = self.superuser();
        su.query_one("SELECT d5.create_tenant($1, 'pro')", &[&name]).unwrap().get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let mut admin = connect("postgres", "postgres");
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        for role in self.roles.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = admin.batch_execute(&format!("DROP ROLE IF EXISTS {role}"));
        }
    }
}

/// BEGIN, then `d5.set_tenant(tenant)`: the transaction an application runs.
pub fn begin_as(client: &mut Client, tenant: uuid::Uuid) {
    begin_with(client, "BEGIN", tenant);
}

/// [`begin_as`] with the transaction opened by `begin` (settings before the
/// BEGIN, an isolation level).
pub fn begin_with(client: &mut Client, begin: &str, tenant: uuid::Uuid) {
    client.batch_execute(begin).unwrap();
    client.execute("SELECT d5.set_tenant($1)", &[&tenant]).unwrap();
}

/// The SQLSTATE of a failed statement, for asserting on error classes.
pub fn sqlstate(err: &postgres::Error) -> String {
    err.code().map(|c| c.code().to_string()).unwrap_or_else(|| format!("no sqlstate: {err}"))
}

/// Runs `sql` expecting an error with `code`; returns the message.
#[track_caller]
pub fn expect_error(client: &mut Client, sql: &str, code: &str) -> String {
    match client.batch_execute(sql) {
        Ok(()) => panic!("expected SQLSTATE {code} from {sql:?}, but it succeeded"),
        Err(e) => {
            assert_eq!(sqlstate(&e), code, "wrong SQLSTATE for {sql:?}: {e:?}");
            e.as_db_error().map(|d| d.message().to_string()).unwrap_or_default()
        }
    }
}

/// Another throwaway cluster (scripts/pgcluster) for tests that need their
/// own server settings, such as shared_preload_libraries. It runs the same
/// server binaries as the main test cluster: PG_BINDIR if set, else the
/// BINDIR of that cluster, so a private install is used throughout.
pub struct ExtraCluster {
    pub name: String,
    pub port: u16,
}

/// The server binaries of the test cluster: PG_BINDIR if set, else the
/// cluster's own BINDIR (a private install reports its own directory).
pub fn bindir() -> String {
    std::env::var("PG_BINDIR").unwrap_or_else(|_| {
        let mut su = connect("postgres", "postgres");
        su.query_one("SELECT setting FROM pg_config WHERE name = 'BINDIR'", &[])
            .map(|r| r.get(0))
            .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into())
    })
}

fn pgcluster(args: &[&str]) -> std::process::Output {
    let root = env!("CARGO_MANIFEST_DIR");
    Command::new(format!("{root}/scripts/pgcluster"))
        .args(args)
        .env("PG_BINDIR", bindir())
        .output()
        .expect("run scripts/pgcluster")
}

impl ExtraCluster {
    /// Starts cluster `name` afresh with extra postgresql.conf lines.
    pub fn start(name: &str, conf: &[&str]) -> ExtraCluster {
        // pgcluster picks a free port, then starts: two starts at once could
        // pick the same one. One at a time here, and retry a lost race.
        static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        let _ = pgcluster(&["destroy", name]);
        let mut args = vec!["start", name];
        args.extend_from_slice(conf);
        let mut out = pgcluster(&args);
        for _ in 0..2 {
            if out.status.success() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
            out = pgcluster(&args);
        }
        assert!(out.status.success(), "pgcluster start {name}: {}", String::from_utf8_lossy(&out.stderr));
        let env_file = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let env = std::fs::read_to_string(env_file).expect("cluster env file");
        let port = env
            .split_whitespace()
            .find_map(|w| w.strip_prefix("PGPORT="))
            .and_then(|p| p.parse().ok())
            .expect("PGPORT in env file");
        ExtraCluster { name: name.into(), port }
    }

    pub fn connect(&self, db: &str, user: &str) -> Client {
        Client::connect(&format!("host=127.0.0.1 port={} user={user} dbname={db}", self.port), NoTls)
            .unwrap_or_else(|e| panic!("connect {user}@{db} on cluster {}: {e}", self.name))
    }

    /// Stops the server (fast shutdown); returns how long that took.
    pub fn stop(&self) -> std::time::Duration {
        let t0 = std::time::Instant::now();
        let out = pgcluster(&["stop", &self.name]);
        assert!(out.status.success(), "pgcluster stop {}: {}", self.name, String::from_utf8_lossy(&out.stderr));
        t0.elapsed()
    }

    /// Starts the server again on its existing data directory (crash
    /// recovery runs here); it may get another port.
    pub fn restart(&mut self, conf: &[&str]) {
        let mut args = vec!["start", self.name.as_str()];
        args.extend_from_slice(conf);
        let out = pgcluster(&args);
        assert!(out.status.success(), "pgcluster start {}: {}", self.name, String::from_utf8_lossy(&out.stderr));
        let env = std::fs::read_to_string(String::from_utf8_lossy(&out.stdout).trim()).expect("cluster env file");
        self.port = env
            .split_whitespace()
            .find_map(|w| w.strip_prefix("PGPORT="))
            .and_then(|p| p.parse().ok())
            .expect("PGPORT in env file");
    }

    pub fn data_dir(&self) -> String {
        format!("{}/target/pg/{}/data", env!("CARGO_MANIFEST_DIR"), self.name)
    }

    pub fn server_log(&self) -> String {
        let root = env!("CARGO_MANIFEST_DIR");
        std::fs::read_to_string(format!("{root}/target/pg/{}/server.log", self.name)).unwrap_or_default()
    }
}

impl Drop for ExtraCluster {
    fn drop(&mut self) {
        let _ = pgcluster(&["destroy", &self.name]);
    }
}
