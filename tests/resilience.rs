//! Resilience: what operators do to a database using d5_storage. A pg_dump
//! restored into a fresh cluster, a server killed like a power loss, and
//! transaction pooling through a real PgBouncer. Privilege and isolation
//! claims are checked as ordinary LOGIN roles granted d5_app / d5_auditor /
//! d5_admin; the superuser only sets up, dumps and inspects.

mod common;

#[path = "resilience/crash.rs"]
mod crash;
#[path = "resilience/pooling.rs"]
mod pooling;
#[path = "resilience/restore.rs"]
mod restore;

use common::*;
use uuid::Uuid;

pub const FOCUS_HEADER: &str = "BillingAccountId,BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,\
BilledCost,EffectiveCost,ListCost,ContractedCost,BillingCurrency,ChargeCategory,ServiceName,ProviderName,RegionId,Tags";

/// A FOCUS CSV: `hours` hourly rows on each of `days` (YYYY-MM-DD, one
/// month) for billing account `billing`, each costing `cents`, alternating
/// EC2 and S3; plus `bad` rows with an unknown currency (rejected).
pub fn focus_csv(billing: &str, days: &[String], hours: u32, cents: u32, bad: u32) -> String {
    let month = &days[0][..7];
    let (y, m): (i32, u32) = (month[..4].parse().unwrap(), month[5..7].parse().unwrap());
    let next = if m == 12 { format!("{}-01-01", y + 1) } else { format!("{y}-{:02}-01", m + 1) };
    let cost = format!("{}.{:02}", cents / 100, cents % 100);
    let mut csv = String::from(FOCUS_HEADER);
    for day in days {
        for h in 0..hours {
            let service = if h % 2 == 0 { "EC2" } else { "S3" };
            csv.push_str(&format!(
                "\n{billing},{month}-01,{next},{day}T{h:02}:00:00Z,{day}T{h:02}:59:59Z,{cost},{cost},{cost},{cost},USD,Usage,{service},AWS,us-east-1,"
            ));
        }
    }
    for _ in 0..bad {
        csv.push_str(&format!(
            "\n{billing},{month}-01,{next},{d}T00:00:00Z,{d}T00:59:59Z,1,1,1,1,EUX,Usage,S3,AWS,,",
            d = days[0]
        ));
    }
    csv.push('\n');
    csv
}

/// `n` consecutive days from `first` (YYYY-MM-DD), as text.
pub fn days(first: &str, n: u32) -> Vec<String> {
    let (y, m, d): (i32, u32, u32) = (first[..4].parse().unwrap(), first[5..7].parse().unwrap(), first[8..].parse().unwrap());
    (0..n).map(|i| format!("{y}-{m:02}-{:02}", d + i)).collect()
}

/// d5.ingest_focus in a transaction of the tenant: (inserted, rejected, replaced, batch).
pub fn ingest(c: &mut Client, tenant: Uuid, account: Uuid, csv: &str) -> Result<(i64, i64, i64, Uuid), postgres::Error> {
    let mut tx = c.transaction()?;
    tx.execute("SELECT d5.set_tenant($1)", &[&tenant])?;
    let r = tx.query_one("SELECT * FROM d5.ingest_focus($1, $2)", &[&account, &csv])?;
    let out = (r.get(0), r.get(1), r.get(2), r.get(3));
    tx.commit()?;
    Ok(out)
}

/// Runs `f` in a transaction with `tenant` set, committing at the end.
pub fn as_tenant<T>(c: &mut Client, tenant: Uuid, f: impl FnOnce(&mut postgres::Transaction) -> T) -> T {
    let mut tx = c.transaction().unwrap();
    tx.execute("SELECT d5.set_tenant($1)", &[&tenant]).unwrap();
    let out = f(&mut tx);
    tx.commit().unwrap();
    out
}

/// Every chain verifies, as the given d5_auditor connection sees it.
pub fn bad_chains(auditor: &mut Client) -> Vec<String> {
    auditor
        .query("SELECT format('%s: %s at %s', tenant_id, reason, first_bad_seq) FROM d5.verify_audit_chain() WHERE NOT ok", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Status of the closing row of d5.run_maintenance(now), and any failed action.
pub fn maintain(admin: &mut Client, now: &str) -> (String, Vec<String>) {
    let rows = admin
        .query("SELECT action, status, coalesce(reason, '') FROM d5.run_maintenance($1::text::timestamptz)", &[&now])
        .unwrap_or_else(|e| panic!("run_maintenance({now}): {e:?}"));
    let status = rows.iter().find(|r| r.get::<_, String>(0) == "run").map(|r| r.get(1)).expect("a run row");
    let failed = rows
        .iter()
        .filter(|r| r.get::<_, String>(1) == "failed")
        .map(|r| format!("{}: {}", r.get::<_, String>(0), r.get::<_, String>(2)))
        .collect();
    (status, failed)
}

pub fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e:?}")).get(0)
}

/// A LOGIN role granted `group` on a cluster of our own.
pub fn login_on(cluster: &ExtraCluster, db: &str, group: &str) -> (String, Client) {
    let role = format!("{group}_{}", Uuid::new_v4().simple());
    cluster.connect(db, "postgres").batch_execute(&format!("CREATE ROLE {role} LOGIN IN ROLE {group}")).unwrap();
    let c = cluster.connect(db, &role);
    (role, c)
}
