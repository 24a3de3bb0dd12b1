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

/// A database of its own with `CREATE EXTENSION d5_storage`, dropped at the end.
pub struct TestDb {
    pub name: String,
    roles: std::sync::Mutex<Vec<String>>,
}

impl TestDb {
    pub fn new() -> TestDb {
        let name = unique("d5t");
        let mut admin = connect("postgres", "postgres");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
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
