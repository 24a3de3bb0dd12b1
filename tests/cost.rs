//! Cost data: FOCUS ingestion as real exports come, replacement of billing
//! periods, the rollup invariant, and tenant isolation of cost rows.

mod common;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

const HEADER: &str = "BillingAccountId,BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,\
BilledCost,EffectiveCost,ListCost,ContractedCost,BillingCurrency,ChargeCategory,ServiceName,ProviderName,RegionId,Tags";

struct Tenant {
    id: Uuid,
    account: Uuid,
}

fn tenant(db: &TestDb, name: &str) -> Tenant {
    let id = db.create_tenant(name);
    let account: Uuid = db
        .superuser()
        .query_one(
            "INSERT INTO d5.cloud_accounts (tenant_id, provider, external_account_id) VALUES ($1, 'aws', $2) RETURNING id",
            &[&id, &format!("acct-{name}")],
        )
        .unwrap()
        .get(0);
    Tenant { id, account }
}

fn ingest(c: &mut Client, t: &Tenant, csv: &str) -> (i64, i64, i64, Uuid) {
    let mut tx = c.transaction().unwrap();
    tx.execute("SELECT d5.set_tenant($1)", &[&t.id]).unwrap();
    let r = tx.query_one("SELECT * FROM d5.ingest_focus($1, $2)", &[&t.account, &csv]).unwrap();
    tx.commit().unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3))
}

fn as_tenant<T>(c: &mut Client, t: Uuid, f: impl FnOnce(&mut postgres::Transaction) -> T) -> T {
    let mut tx = c.transaction().unwrap();
    tx.execute("SELECT d5.set_tenant($1)", &[&t]).unwrap();
    let out = f(&mut tx);
    tx.commit().unwrap();
    out
}

#[test]
fn focus_files_are_taken_as_they_come() {
    let db = TestDb::new();
    let t = tenant(&db, "acme");
    let (_, mut app) = db.login("d5_app");
    // Columns in another order, FOCUS 1.3 names, provider columns, every quirk.
    let csv = "\u{feff}ServiceName, ChargeCategory ,BilledCost,EffectiveCost,ListCost,ContractedCost,BillingCurrency,\
ChargePeriodStart,ChargePeriodEnd,BillingPeriodStart,BillingPeriodEnd,BillingAccountId,ServiceProviderName,ProviderName,\
RegionId,Tags,ChargeFrequency,x_UsageType,ResourceId
\"Amazon Elastic Compute Cloud, Linux\",usage,0.12345678901,0.1,0.2,0.15,USD,2024-09-18T22:00:00Z,2024-09-18T23:00:00Z,2024-09-01,2024-10-01,111,AWS,Amazon,us-east-1,\"{\"\"team\"\":\"\"web\"\",\"\"cost-center\"\":\"\"CC-1\"\"}\",Usage-based,BoxUsage,i-1
Amazon S3,USAGE,1.5,1.25,2,1.5,usd,2024-09-18 23:00:00,2024-09-19 00:00:00,2024-09-01,2024-10-01,111,AWS,Amazon,NULL,{},Usage-Based,x,
\"Support \"\"Business\"\"
(multi-line)\",Purchase,10,10,10,10,USD,2024-09-19T01:00:00+02:00,2024-09-19T02:00:00+02:00,2024-09-01,2024-10-01,111,AWS,,,,One-Time,,
Amazon S3,Usage,\"12,5\",1,1,1,USD,2024-09-19T01:00:00Z,2024-09-19T02:00:00Z,2024-09-01,2024-10-01,111,AWS,,,,,,
Amazon S3,Usage,1,1,1,1,USD,2024-09-19T03:00:00Z,2024-09-19T02:00:00Z,2024-09-01,2024-10-01,111,AWS,,,,,,
Amazon S3,Usage,1,1,1,1,EUX,2024-09-19T01:00:00Z,2024-09-19T02:00:00Z,2024-09-01,2024-10-01,111,AWS,,,,,,
Amazon S3,Usage,,1,1,1,USD,2024-09-19T01:00:00Z,2024-09-19T02:00:00Z,2024-09-01,2024-10-01,111,AWS,,,,,,
Amazon S3,Refund,1,1,1,1,USD,2024-09-19T01:00:00Z,2024-09-19T02:00:00Z,2024-09-01,2024-10-01,111,AWS,,,,,,
Amazon S3,Usage,1,1,1,1,USD,2024-13-19T01:00:00Z,2024-09-19T02:00:00Z,2024-09-01,2024-10-01,111,AWS,,,,,,
Amazon S3,Usage,1,1,1,1,USD,2024-09-19T01:00:00Z,2024-09-19T02:00:00Z,2024-09-01,2024-10-01,111,AWS,,,[1],,,
";
    let (inserted, rejected, replaced, batch) = ingest(&mut app, &t, csv);
    assert_eq!((inserted, rejected, replaced), (3, 7, 0));
    let rows = as_tenant(&mut app, t.id, |tx| {
        tx.query(
            "SELECT service_name, charge_category, billed_cost::text, billing_currency, charge_period_start::text,
                    region_id, tags::text, charge_frequency, provider_name
               FROM d5.cost_metrics_raw ORDER BY charge_period_start",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| {
            (0..9).map(|i| r.get::<_, Option<String>>(i).unwrap_or_else(|| "∅".into())).collect::<Vec<_>>().join("|")
        })
        .collect::<Vec<_>>()
    });
    assert_eq!(
        rows,
        vec![
            "Amazon Elastic Compute Cloud, Linux|Usage|0.12345678901|USD|2024-09-18 22:00:00+00|us-east-1|{\"team\": \"web\", \"cost-center\": \"CC-1\"}|Usage-Based|AWS",
            "Amazon S3|Usage|1.5|USD|2024-09-18 23:00:00+00|∅|∅|Usage-Based|AWS",
            "Support \"Business\"\n(multi-line)|Purchase|10|USD|2024-09-18 23:00:00+00|∅|∅|One-Time|AWS",
        ]
    );
    // Exact sums, to the last decimal.
    let total: String = as_tenant(&mut app, t.id, |tx| {
        tx.query_one("SELECT sum(billed_cost)::text FROM d5.cost_metrics_raw", &[]).unwrap().get(0)
    });
    assert_eq!(total, "11.62345678901");
    // Every reject with its physical line, column and reason.
    let rejects: Vec<(i64, Option<String>, String)> = as_tenant(&mut app, t.id, |tx| {
        tx.query("SELECT line_number, column_name, reason FROM d5.ingest_rejects WHERE batch_id = $1 ORDER BY 1", &[&batch])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    });
    let lines: Vec<i64> = rejects.iter().map(|r| r.0).collect();
    assert_eq!(lines, vec![6, 7, 8, 9, 10, 11, 12]);
    let cols: Vec<&str> = rejects.iter().map(|r| r.1.as_deref().unwrap_or("")).collect();
    assert_eq!(
        cols,
        vec!["billed_cost", "charge_period_end", "billing_currency", "billed_cost", "charge_category", "charge_period_start", "tags"]
    );
    assert!(rejects[0].2.contains("\"12,5\" is not a number"), "{:?}", rejects[0]);
    assert!(rejects[2].2.contains("EUX"), "{:?}", rejects[2]);
    // Ignored columns are listed on the batch, not fatal.
    let ignored: Vec<String> = as_tenant(&mut app, t.id, |tx| {
        tx.query_one("SELECT ignored_columns FROM d5.ingest_batches WHERE id = $1", &[&batch]).unwrap().get(0)
    });
    assert!(ignored.iter().any(|c| c == "x_UsageType") && ignored.iter().any(|c| c == "ResourceId" || c == "ProviderName"), "{ignored:?}");
    // One audit record for the whole batch, with its row count and digest.
    let (n, digest): (i64, Option<String>) = {
        let r = db
            .superuser()
            .query_one(
                "SELECT count(*), max(rows_digest) FROM d5.audit_log WHERE tenant_id = $1 AND operation = 'INGEST' AND row_count = 3",
                &[&t.id],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(n, 1);
    assert_eq!(digest.map(|d| d.len()), Some(64));
}

#[test]
fn a_file_without_mandatory_columns_is_refused_whole() {
    let db = TestDb::new();
    let t = tenant(&db, "acme");
    let (_, mut app) = db.login("d5_app");
    let mut tx = app.transaction().unwrap();
    tx.execute("SELECT d5.set_tenant($1)", &[&t.id]).unwrap();
    let err = tx
        .query_one("SELECT * FROM d5.ingest_focus($1, $2)", &[&t.account, &"ServiceName,BilledCost\nS3,1\n"])
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22P04");
    let msg = err.as_db_error().unwrap().message().to_string();
    assert!(msg.contains("charge_period_start") || msg.contains("ChargePeriodStart"), "{msg}");
    drop(tx);
    let mut tx = app.transaction().unwrap();
    tx.execute("SELECT d5.set_tenant($1)", &[&t.id]).unwrap();
    let err = tx.query_one("SELECT * FROM d5.ingest_focus($1, $2, 'parquet')", &[&t.account, &HEADER]).unwrap_err();
    assert_eq!(sqlstate(&err), "22023");
    drop(tx);
    let stored: i64 = db.superuser().query_one("SELECT count(*) FROM d5.cost_metrics_raw", &[]).unwrap().get(0);
    assert_eq!(stored, 0);
}

fn row(account: &str, period: &str, hour: u32, day: u32, service: &str, cost: &str) -> String {
    format!(
        "{account},{period}-01,{next},{period}-{day:02}T{hour:02}:00:00Z,{period}-{day:02}T{hour:02}:59:59Z,{cost},{cost},{cost},{cost},USD,Usage,{service},AWS,us-east-1,",
        next = next_month(period)
    )
}

fn next_month(period: &str) -> String {
    let (y, m): (i32, u32) = (period[..4].parse().unwrap(), period[5..7].parse().unwrap());
    if m == 12 { format!("{}-01-01", y + 1) } else { format!("{y}-{:02}-01", m + 1) }
}

fn daily(c: &mut Client, t: Uuid, from: &str, to: &str) -> Vec<(String, String, String)> {
    as_tenant(c, t, |tx| {
        tx.query(
            "SELECT day::text, service_name, billed_cost::text FROM d5.daily_costs($1::text::date, $2::text::date)",
            &[&from, &to],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
    })
}

fn monthly(c: &mut Client, t: Uuid) -> Vec<(String, String)> {
    as_tenant(c, t, |tx| {
        tx.query(
            "SELECT month::text, sum(billed_cost)::text FROM d5.monthly_costs('2024-01-01', '2024-12-31') GROUP BY 1 ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    })
}

#[test]
fn an_ingest_is_recorded_between_the_changes_around_it() {
    // Row records wait for the commit; the ingest's record is written at
    // once, after the tenant's records kept before it.
    let db = TestDb::new();
    let t = tenant(&db, "acme");
    let (_, mut app) = db.login("d5_app");
    let csv = format!("{HEADER}\n{}\n", row("111", "2024-09", 1, 3, "EC2", "1.10"));
    let mut tx = app.transaction().unwrap();
    tx.execute("SELECT d5.set_tenant($1)", &[&t.id]).unwrap();
    tx.execute("INSERT INTO d5.users (email) VALUES ('before@x.example')", &[]).unwrap();
    tx.query_one("SELECT * FROM d5.ingest_focus($1, $2)", &[&t.account, &csv]).unwrap();
    tx.execute("INSERT INTO d5.users (email) VALUES ('after@x.example')", &[]).unwrap();
    tx.commit().unwrap();
    let ops: Vec<(String, Option<String>)> = db
        .superuser()
        .query(
            "SELECT operation, new_row->>'email' FROM d5.audit_log
              WHERE tenant_id = $1 AND (table_name = 'd5.users' OR operation = 'INGEST') ORDER BY seq",
            &[&t.id],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected = [("INSERT", Some("before@x.example")), ("INGEST", None), ("INSERT", Some("after@x.example"))];
    assert_eq!(ops, expected.map(|(o, e)| (o.to_string(), e.map(str::to_string))));
}

#[test]
fn reingesting_a_period_replaces_it_atomically_and_rollups_follow() {
    let db = TestDb::new();
    let t = tenant(&db, "acme");
    let (role, mut app) = db.login("d5_app");
    let v1 = format!("{HEADER}\n{}\n{}\n{}\n", row("111", "2024-09", 1, 3, "EC2", "1.10"), row("111", "2024-09", 2, 3, "EC2", "2.20"), row("111", "2024-09", 5, 4, "S3", "3.30"));
    assert_eq!(ingest(&mut app, &t, &v1).0, 3);
    // Another billing period of the same account is not touched by re-ingesting September.
    let october = format!("{HEADER}\n{}\n", row("111", "2024-10", 1, 1, "EC2", "7"));
    ingest(&mut app, &t, &october);
    as_tenant(&mut app, t.id, |tx| tx.execute("SELECT * FROM d5.rollup_costs('2024-09-01', '2024-11-01')", &[]).unwrap());
    assert_eq!(
        daily(&mut app, t.id, "2024-09-01", "2024-10-31"),
        vec![
            ("2024-09-03".into(), "EC2".into(), "3.30".into()),
            ("2024-09-04".into(), "S3".into(), "3.30".into()),
            ("2024-10-01".into(), "EC2".into(), "7".into())
        ]
    );
    // A correction arrives: fewer rows, other values, a new day.
    let v2 = format!("{HEADER}\n{}\n{}\n", row("111", "2024-09", 1, 3, "EC2", "1.00"), row("111", "2024-09", 1, 5, "S3", "0.05"));
    let mut writer = db.connect_as(&role);
    let mut tx = writer.transaction().unwrap();
    tx.execute("SELECT d5.set_tenant($1)", &[&t.id]).unwrap();
    let r = tx.query_one("SELECT inserted, replaced FROM d5.ingest_focus($1, $2)", &[&t.account, &v2]).unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, i64>(1)), (2, 3));
    // Until it commits, readers see the old period whole.
    let before = daily(&mut app, t.id, "2024-09-01", "2024-09-30");
    assert_eq!(before.len(), 2);
    assert_eq!(before[0].2, "3.30");
    tx.commit().unwrap();
    // After commit: the new period, exact before any rollup (pending days read raw)…
    let expected = vec![
        ("2024-09-03".to_string(), "EC2".to_string(), "1.00".to_string()),
        ("2024-09-05".to_string(), "S3".to_string(), "0.05".to_string()),
    ];
    assert_eq!(daily(&mut app, t.id, "2024-09-01", "2024-09-30"), expected);
    let months = vec![("2024-09-01".to_string(), "1.05".to_string()), ("2024-10-01".to_string(), "7".to_string())];
    assert_eq!(monthly(&mut app, t.id), months, "monthly_costs with September pending");
    // …and after it, from the rollups, with monthly following too.
    let mut su = db.superuser();
    su.query_one("SELECT d5._rollup_pending()", &[]).unwrap();
    assert_eq!(daily(&mut app, t.id, "2024-09-01", "2024-09-30"), expected);
    assert_eq!(monthly(&mut app, t.id), months, "monthly_costs once settled");
    let pending: i64 = su.query_one("SELECT count(*) FROM d5.cost_rollup_pending", &[]).unwrap().get(0);
    assert_eq!(pending, 0);
    let (sept, oct): (String, String) = {
        let r = su
            .query_one(
                "SELECT (SELECT sum(billed_cost)::text FROM d5.cost_metrics_monthly WHERE tenant_id = $1 AND month = '2024-09-01'),
                        (SELECT sum(billed_cost)::text FROM d5.cost_metrics_monthly WHERE tenant_id = $1 AND month = '2024-10-01')",
                &[&t.id],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((sept.as_str(), oct.as_str()), ("1.05", "7"));
    // A rolled-back re-ingest changes nothing.
    let mut tx = writer.transaction().unwrap();
    tx.execute("SELECT d5.set_tenant($1)", &[&t.id]).unwrap();
    tx.query_one("SELECT * FROM d5.ingest_focus($1, $2)", &[&t.account, &v1]).unwrap();
    tx.rollback().unwrap();
    assert_eq!(daily(&mut app, t.id, "2024-09-01", "2024-09-30"), expected);
}

#[test]
fn rollups_equal_raw_rows_for_random_late_and_out_of_order_data() {
    let db = TestDb::new();
    let tenants: Vec<Tenant> = (0..5).map(|i| tenant(&db, &format!("t{i}"))).collect();
    let (_, mut app) = db.login("d5_app");
    let mut su = db.superuser();
    let mut rng = StdRng::seed_from_u64(7);
    let periods = ["2024-07", "2024-08", "2024-09"];
    for round in 0..12 {
        let t = &tenants[rng.gen_range(0..tenants.len())];
        // Periods arrive out of order, and again later as corrections.
        let period = periods[rng.gen_range(0..periods.len())];
        let billing_account = ["111", "222"][rng.gen_range(0..2)];
        let mut csv = String::from(HEADER);
        for _ in 0..rng.gen_range(1..40) {
            let cost = format!("{}.{:011}", rng.gen_range(0..50), rng.gen_range(0..99_999_999_999u64));
            let service = ["EC2", "S3", "RDS"][rng.gen_range(0..3)];
            csv.push('\n');
            csv.push_str(&row(billing_account, period, rng.gen_range(0..24), rng.gen_range(1..29), service, &cost));
        }
        csv.push('\n');
        ingest(&mut app, t, &csv);
        // Roll up now and then, so some corrections land on settled days.
        if round % 3 == 2 {
            su.query_one("SELECT d5._rollup_pending()", &[]).unwrap();
        }
    }
    su.query_one("SELECT d5._rollup_pending()", &[]).unwrap();
    // For every tenant, account, hour/day/month and currency, rollups = sum of raw, exactly.
    for (grain, table, key) in [
        ("hour", "d5.cost_metrics_hourly", "hour"),
        ("day", "d5.cost_metrics_daily", "day"),
        ("month", "d5.cost_metrics_monthly", "month"),
    ] {
        let diff: i64 = su
            .query_one(
                &format!(
                    "WITH raw AS (
                         SELECT tenant_id, cloud_account_id, date_trunc('{grain}', charge_period_start, 'UTC') AS k,
                                billing_currency, sum(billed_cost) b, sum(effective_cost) e, sum(list_cost) l,
                                sum(contracted_cost) c, count(*) n
                         FROM d5.cost_metrics_raw GROUP BY 1, 2, 3, 4),
                     rolled AS (
                         SELECT tenant_id, cloud_account_id, {key}::timestamp AT TIME ZONE 'UTC' AS k, billing_currency,
                                sum(billed_cost) b, sum(effective_cost) e, sum(list_cost) l, sum(contracted_cost) c,
                                sum(row_count) n
                         FROM {table} GROUP BY 1, 2, 3, 4)
                     SELECT count(*) FROM ((SELECT * FROM raw EXCEPT SELECT * FROM rolled)
                                           UNION ALL (SELECT * FROM rolled EXCEPT SELECT * FROM raw)) d"
                ),
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(diff, 0, "{table} differs from raw");
    }
    let raw_rows: i64 = su.query_one("SELECT count(*) FROM d5.cost_metrics_raw", &[]).unwrap().get(0);
    assert!(raw_rows > 50, "too little data to prove anything: {raw_rows}");
}

#[test]
fn cost_rows_are_isolated_between_tenants() {
    let db = TestDb::new();
    let a = tenant(&db, "alpha");
    let b = tenant(&db, "beta");
    let (_, mut app) = db.login("d5_app");
    let csv_a = format!("{HEADER}\n{}\n", row("111", "2024-09", 1, 3, "EC2", "1"));
    let csv_b = format!("{HEADER}\n{}\n{}\n", row("222", "2024-09", 1, 3, "EC2", "2"), row("222", "2024-09", 1, 4, "EC2", "x"));
    ingest(&mut app, &a, &csv_a);
    ingest(&mut app, &b, &csv_b);
    db.superuser().query_one("SELECT d5._rollup_pending()", &[]).unwrap();
    // A cannot ingest into B's account: it does not exist for A.
    let mut tx = app.transaction().unwrap();
    tx.execute("SELECT d5.set_tenant($1)", &[&a.id]).unwrap();
    let err = tx.query_one("SELECT * FROM d5.ingest_focus($1, $2)", &[&b.account, &csv_a]).unwrap_err();
    assert_eq!(sqlstate(&err), "P0002");
    drop(tx);
    // A sees none of B's rows in any cost table or query.
    as_tenant(&mut app, a.id, |tx| {
        for table in ["cost_metrics_raw", "cost_metrics_hourly", "cost_metrics_daily", "cost_metrics_monthly", "ingest_batches", "ingest_rejects", "cost_rollup_pending"] {
            let n: i64 = tx
                .query_one(&format!("SELECT count(*) FROM d5.{table} WHERE tenant_id <> $1"), &[&a.id])
                .unwrap()
                .get(0);
            assert_eq!(n, 0, "{table}");
        }
        let total: String = tx
            .query_one("SELECT sum(billed_cost)::text FROM d5.daily_costs('2024-09-01', '2024-09-30')", &[])
            .unwrap()
            .get(0);
        assert_eq!(total, "1");
        let rejects: i64 = tx.query_one("SELECT count(*) FROM d5.ingest_rejects", &[]).unwrap().get(0);
        assert_eq!(rejects, 0, "B's reject is visible to A");
    });
    // No direct writes to cost tables, for anyone in d5_app.
    as_tenant(&mut app, a.id, |tx| {
        for sql in [
            "UPDATE d5.cost_metrics_raw SET billed_cost = 0",
            "DELETE FROM d5.cost_metrics_daily",
            "INSERT INTO d5.cost_rollup_pending VALUES (d5.current_tenant(), current_date)",
            "TRUNCATE d5.cost_metrics_raw",
        ] {
            tx.batch_execute("SAVEPOINT s").unwrap();
            let err = tx.batch_execute(sql).unwrap_err();
            assert_eq!(sqlstate(&err), "42501", "{sql}");
            tx.batch_execute("ROLLBACK TO SAVEPOINT s").unwrap();
        }
    });
    // Without a tenant, ingest is refused and queries return nothing.
    let err = app.query_one("SELECT * FROM d5.ingest_focus($1, $2)", &[&a.account, &csv_a]).unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    let n: i64 = app.query_one("SELECT count(*) FROM d5.daily_costs('2024-01-01', '2024-12-31')", &[]).unwrap().get(0);
    assert_eq!(n, 0);
}

#[test]
fn ingested_rows_keep_their_account_foreign_key_and_exact_values() {
    // ingest_focus loads in binary COPY format with the per-row foreign-key
    // checks off (it has checked and locked the account once): the key must
    // still hold afterwards, and every value must arrive exactly.
    let db = TestDb::new();
    let t = tenant(&db, "alpha");
    let (_, mut app) = db.login("d5_app");
    let csv = format!(
        "{HEADER}\n\
         111,2024-09-01T00:00:00Z,2024-10-01T00:00:00Z,2024-09-03T01:00:00Z,2024-09-03T02:00:00Z,\
         0.00000000001,-123456.789,1.5E-3,12345678,usd,Usage,EC2,AWS,us-east-1,\"{{\"\"team\"\":\"\"a\"\"}}\"\n"
    );
    assert_eq!(ingest(&mut app, &t, &csv).0, 1);
    let mut su = db.superuser();
    let row = su
        .query_one(
            "SELECT billed_cost::text, effective_cost::text, list_cost::text, contracted_cost::text,
                    charge_period_start = '2024-09-03 01:00+00', billing_currency, tags::text, cloud_account_id
               FROM d5.cost_metrics_raw",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "0.00000000001");
    assert_eq!(row.get::<_, String>(1), "-123456.789");
    assert_eq!(row.get::<_, String>(2), "0.0015");
    assert_eq!(row.get::<_, String>(3), "12345678");
    assert!(row.get::<_, bool>(4));
    assert_eq!(row.get::<_, String>(5), "USD");
    assert_eq!(row.get::<_, String>(6), r#"{"team": "a"}"#);
    assert_eq!(row.get::<_, Uuid>(7), t.account);
    // The account cannot go while cost rows name it.
    let err = su.execute("DELETE FROM d5.cloud_accounts WHERE id = $1", &[&t.account]).unwrap_err();
    assert_eq!(sqlstate(&err), "23503", "{err}");
    // And the ingesting session is back to firing triggers, in the same transaction.
    let mut tx = app.transaction().unwrap();
    tx.execute("SELECT d5.set_tenant($1)", &[&t.id]).unwrap();
    tx.query_one("SELECT * FROM d5.ingest_focus($1, $2)", &[&t.account, &csv]).unwrap();
    let role: String = tx.query_one("SELECT current_setting('session_replication_role')", &[]).unwrap().get(0);
    assert_eq!(role, "origin");
    tx.commit().unwrap();
}
