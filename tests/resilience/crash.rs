//! Crash recovery: while several connections write entities, ingest cost
//! data and run maintenance, the postmaster and then every process of the
//! cluster are SIGKILLed, like a power loss. After the restart every
//! transaction whose COMMIT was acknowledged is there, no ingest is half
//! applied, every chain verifies, and the next maintenance run completes.
//! Five kill points: fixed delays and moments chosen by watching the server.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;

const DB: &str = "d5c";
/// Maintenance runs "as of" these instants; the data lies from May 8 on, so
/// retention (raw: 7 days) never drops a committed row in this test.
const NOWS: [&str; 3] = ["2024-05-12 00:00+00", "2024-05-13 00:00+00", "2024-05-14 00:00+00"];
const ROWS_PER_BATCH: i64 = 12;

/// What clients got a COMMIT acknowledgement for.
#[derive(Default)]
struct Acked {
    /// email of a user inserted together with a policy of the same name.
    users: Vec<(Uuid, String)>,
    /// billing account id -> batch id of an acknowledged ingest.
    batches: BTreeMap<String, Uuid>,
    maintenance_runs: usize,
}

#[derive(Clone, Copy, Debug)]
enum KillPoint {
    After(Duration),
    DuringIngest,
    DuringMaintenance,
    AfterCommits(usize),
}

fn postmaster_pid(cluster: &ExtraCluster) -> u32 {
    let pidfile = std::fs::read_to_string(format!("{}/postmaster.pid", cluster.data_dir())).expect("postmaster.pid");
    pidfile.lines().next().and_then(|l| l.trim().parse().ok()).expect("a pid in postmaster.pid")
}

/// State letter of a process (Z: a zombie), None when it is gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next())
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// SIGKILL the postmaster, then every process it had started: nothing gets
/// to shut down or flush anything. The postmaster is stopped first so it
/// cannot fork while its children are listed.
fn power_loss(cluster: &ExtraCluster) {
    let pm = postmaster_pid(cluster);
    let signal = |sig: &str, pids: &[u32]| {
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        let _ = std::process::Command::new("kill").arg(sig).args(&pids).status();
    };
    signal("-STOP", &[pm]);
    let children = children_of(pm);
    signal("-KILL", &[pm]);
    signal("-KILL", &children);
    // Dead processes linger as zombies until PID 1 reaps them; a zombie
    // postmaster pid would make the restart think the server still runs.
    let all: Vec<u32> = std::iter::once(pm).chain(children).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while all.iter().any(|p| proc_state(*p).is_some_and(|s| s != 'Z')) {
        assert!(Instant::now() < deadline, "processes of {} survived SIGKILL", cluster.name);
        std::thread::sleep(Duration::from_millis(20));
    }
    while proc_state(pm).is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if proc_state(pm).is_some() {
        // Still an unreaped zombie: it is dead, so its lock file is stale.
        std::fs::remove_file(format!("{}/postmaster.pid", cluster.data_dir())).unwrap();
    }
}

struct Roles {
    app: String,
    admin: String,
}

/// One round: writers, ingesters and maintenance until the kill.
fn round(cluster: &ExtraCluster, roles: &Roles, tenants: &[(Uuid, Uuid)], n: usize, kill: KillPoint, acked: &Arc<Mutex<Acked>>) {
    let commits = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    let port = cluster.port;
    let connect = move |user: &str| {
        Client::connect(&format!("host=127.0.0.1 port={port} user={user} dbname={DB}"), NoTls).expect("connect")
    };
    for (w, &(tenant, account)) in tenants.iter().enumerate() {
        // An entity writer: a user and a policy of the same name per transaction.
        let (acked1, commits1, mut c) = (acked.clone(), commits.clone(), connect(&roles.app));
        threads.push(std::thread::spawn(move || {
            let (acked, commits) = (acked1, commits1);
            for i in 0.. {
                let name = format!("r{n}w{w}n{i}");
                let tx = (|| {
                    let mut tx = c.transaction()?;
                    tx.execute("SELECT d5.set_tenant($1)", &[&tenant])?;
                    tx.execute("INSERT INTO d5.users (email) VALUES ($1)", &[&format!("{name}@crash.example")])?;
                    tx.execute(
                        "INSERT INTO d5.policies (name, type, thresholds) VALUES ($1, 'budget',
                           '{\"amount\": 10, \"currency\": \"USD\", \"period\": \"daily\"}')",
                        &[&name],
                    )?;
                    tx.execute("UPDATE d5.users SET role = 'viewer' WHERE email = $1", &[&format!("{name}@crash.example")])?;
                    tx.commit()
                })();
                match tx {
                    Ok(()) => {
                        acked.lock().unwrap().users.push((tenant, name));
                        commits.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => return,
                }
            }
        }));
        // An ingester: batches with a billing account of their own, so each
        // batch is checkable on its own (no replacement between them).
        let (acked2, commits2, mut c) = (acked.clone(), commits.clone(), connect(&roles.app));
        threads.push(std::thread::spawn(move || {
            let (acked, commits) = (acked2, commits2);
            for i in 0u32.. {
                let billing = format!("r{n}w{w}b{i}");
                let day = format!("2024-05-{:02}", 8 + (i + w as u32 * 7) % 24);
                match ingest(&mut c, tenant, account, &focus_csv(&billing, &[day], ROWS_PER_BATCH as u32, 25, 1)) {
                    Ok((inserted, _, _, batch)) => {
                        assert_eq!(inserted, ROWS_PER_BATCH);
                        acked.lock().unwrap().batches.insert(billing, batch);
                        commits.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    let (acked2, mut c) = (acked.clone(), connect(&roles.admin));
    threads.push(std::thread::spawn(move || {
        for i in 0.. {
            let r = c.query("SELECT status FROM d5.run_maintenance($1::text::timestamptz)", &[&NOWS[i % NOWS.len()]]);
            if r.is_err() {
                return;
            }
            acked2.lock().unwrap().maintenance_runs += 1;
        }
    }));

    // Choose the moment, then pull the plug.
    let mut watch = connect("postgres");
    let watching = |sql: &str, watch: &mut Client| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if watch.query_one(sql, &[]).map(|r| r.get::<_, bool>(0)).unwrap_or(false) {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("kill point {kill:?} never came");
    };
    let active = |pattern: &str| {
        format!("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%{pattern}%' AND pid <> pg_backend_pid())")
    };
    match kill {
        KillPoint::After(d) => std::thread::sleep(d),
        KillPoint::DuringIngest => watching(&active("ingest_focus"), &mut watch),
        KillPoint::DuringMaintenance => {
            std::thread::sleep(Duration::from_millis(200));
            watching(&active("run_maintenance"), &mut watch)
        }
        KillPoint::AfterCommits(k) => {
            while commits.load(Ordering::Relaxed) < k {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    power_loss(cluster);
    for t in threads {
        t.join().expect("a client thread panicked");
    }
}

/// Everything acknowledged is there and nothing is half there.
fn check(su: &mut Client, auditor: &mut Client, admin: &mut Client, acked: &Acked, context: &str) {
    let users: BTreeSet<String> = su
        .query("SELECT u.email FROM d5.users u JOIN d5.policies p ON p.tenant_id = u.tenant_id AND p.name || '@crash.example' = u.email", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let lost: Vec<_> = acked.users.iter().filter(|(_, n)| !users.contains(&format!("{n}@crash.example"))).collect();
    assert!(lost.is_empty(), "{context}: acknowledged users (with their policy) lost: {lost:?}");
    let orphans: i64 = su
        .query_one(
            "SELECT count(*) FROM d5.users u WHERE u.email LIKE '%@crash.example'
                AND NOT EXISTS (SELECT 1 FROM d5.policies p WHERE p.tenant_id = u.tenant_id AND p.name || '@crash.example' = u.email)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(orphans, 0, "{context}: a user without the policy of its transaction");
    // Each acknowledged user insert has its audit record.
    let audited: i64 = su
        .query_one(
            "SELECT count(*) FROM d5.audit_log WHERE table_name = 'd5.users' AND operation = 'INSERT'
                AND new_row->>'email' LIKE '%@crash.example'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(audited as usize, users.len(), "{context}: audit records of users");

    // Batches: all rows of a batch or none, and acknowledged ones complete.
    let batches: Vec<(String, Uuid, i64, Option<i64>, i64)> = su
        .query(
            "SELECT r.billing_account_id, r.ingest_batch_id, count(*), b.inserted,
                    (SELECT count(*) FROM d5.ingest_rejects j WHERE j.batch_id = r.ingest_batch_id)
               FROM d5.cost_metrics_raw r LEFT JOIN d5.ingest_batches b ON b.id = r.ingest_batch_id
              GROUP BY 1, 2, 4",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let mut seen = BTreeMap::new();
    for (billing, batch, rows, recorded, rejects) in &batches {
        assert_eq!(
            (*rows, *recorded, *rejects),
            (ROWS_PER_BATCH, Some(ROWS_PER_BATCH), 1),
            "{context}: batch {batch} of {billing} is half applied"
        );
        assert!(seen.insert(billing.clone(), *batch).is_none(), "{context}: two batches for {billing}");
    }
    let empty_batches: i64 = su
        .query_one(
            "SELECT count(*) FROM d5.ingest_batches b WHERE NOT EXISTS (SELECT 1 FROM d5.cost_metrics_raw r WHERE r.ingest_batch_id = b.id)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(empty_batches, 0, "{context}: a recorded batch without its rows");
    for (billing, batch) in &acked.batches {
        assert_eq!(seen.get(billing), Some(batch), "{context}: acknowledged ingest {billing} lost");
    }
    assert!(bad_chains(auditor).is_empty(), "{context}: {:?}", bad_chains(auditor));
    // The next maintenance run completes and leaves no run marked running.
    let (status, failed) = maintain(admin, NOWS[2]);
    assert!(status == "ok" && failed.is_empty(), "{context}: maintenance after restart: {status} {failed:?}");
    let running: i64 = su.query_one("SELECT count(*) FROM d5.maintenance_runs WHERE status = 'running'", &[]).unwrap().get(0);
    assert_eq!(running, 0, "{context}: a run is still marked running");
    // Rollups agree with the raw rows they were computed from.
    let wrong: Vec<String> = su
        .query(
            "SELECT format('%s %s raw=%s daily=%s', r.tenant_id, r.day, r.cost, d.cost)
               FROM (SELECT tenant_id, (charge_period_start AT TIME ZONE 'UTC')::date AS day, sum(billed_cost) AS cost
                       FROM d5.cost_metrics_raw GROUP BY 1, 2) r
               FULL JOIN (SELECT tenant_id, day, sum(billed_cost) AS cost FROM d5.cost_metrics_daily GROUP BY 1, 2) d
                 USING (tenant_id, day)
              WHERE r.cost IS DISTINCT FROM d.cost",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(wrong.is_empty(), "{context}: rollups differ from raw rows: {wrong:?}");
    assert!(bad_chains(auditor).is_empty(), "{context} after maintenance: {:?}", bad_chains(auditor));
}

#[test]
fn committed_work_survives_power_loss_at_five_kill_points() {
    let mut cluster = ExtraCluster::start("res_crash", &[]);
    cluster.connect("postgres", "postgres").batch_execute(&format!("CREATE DATABASE {DB}")).unwrap();
    let mut su = cluster.connect(DB, "postgres");
    su.batch_execute("CREATE EXTENSION d5_storage").unwrap();
    let (app, _) = login_on(&cluster, DB, "d5_app");
    let (admin, _) = login_on(&cluster, DB, "d5_admin");
    let (auditor, _) = login_on(&cluster, DB, "d5_auditor");
    let roles = Roles { app, admin };
    let mut tenants = Vec::new();
    for i in 0..3 {
        let t: Uuid = su.query_one("SELECT d5.create_tenant($1, 'pro')", &[&format!("crash{i}")]).unwrap().get(0);
        let a: Uuid = su
            .query_one(
                "INSERT INTO d5.cloud_accounts (tenant_id, provider, external_account_id) VALUES ($1, 'aws', $2) RETURNING id",
                &[&t, &format!("crash{i}")],
            )
            .unwrap()
            .get(0);
        tenants.push((t, a));
    }
    drop(su);
    let acked = Arc::new(Mutex::new(Acked::default()));
    let kills = [
        KillPoint::After(Duration::from_millis(300)),
        KillPoint::DuringIngest,
        KillPoint::DuringMaintenance,
        KillPoint::AfterCommits(60),
        KillPoint::After(Duration::from_millis(2500)),
    ];
    for (n, kill) in kills.into_iter().enumerate() {
        round(&cluster, &roles, &tenants, n, kill, &acked);
        cluster.restart(&[]);
        let acked = acked.lock().unwrap();
        let context = format!("after kill {n} ({kill:?}; {} users, {} batches, {} maintenance runs acknowledged so far)",
            acked.users.len(), acked.batches.len(), acked.maintenance_runs);
        let mut su = cluster.connect(DB, "postgres");
        let mut auditor = cluster.connect(DB, &auditor);
        let mut admin = cluster.connect(DB, &roles.admin);
        check(&mut su, &mut auditor, &mut admin, &acked, &context);
        println!("{context}: all there");
    }
    let acked = acked.lock().unwrap();
    assert!(acked.users.len() > 50 && acked.batches.len() > 10 && acked.maintenance_runs > 3, "too little work to mean much");
    // The checks do catch a half-applied batch (one row of one lost).
    let mut su = cluster.connect(DB, "postgres");
    su.batch_execute(
        "DELETE FROM d5.cost_metrics_raw WHERE (ingest_batch_id, charge_period_start) =
           (SELECT ingest_batch_id, charge_period_start FROM d5.cost_metrics_raw LIMIT 1)",
    )
    .unwrap();
    let mut auditor = cluster.connect(DB, &auditor);
    let mut admin = cluster.connect(DB, &roles.admin);
    println!("a deliberately half-applied batch: the panic message below is expected");
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check(&mut su, &mut auditor, &mut admin, &acked, "after deleting a raw row on purpose")
    }));
    assert!(caught.is_err(), "the checks missed a half-applied batch");
    drop(acked);
    cluster.stop();
}
