//! Replay: eight years of days, ingesting as we go and calling maintenance
//! with `now` at each step. After every step the partitions of every table
//! are exactly what premake and retention say, the DEFAULT partitions are
//! empty, every retained row is there (raw, hourly, daily and monthly
//! against an independent model), nothing older than retention is left
//! outside the archive, and every audit chain verifies.
//!
//! Steps are one day during the first and last 40 days and around every new
//! year, fourteen days elsewhere (within the premake horizon, so each step
//! still has to make, move and retire partitions). The audit log holds a
//! chain of records dated across the whole period (made with the real hash
//! function), so its yearly partitions age out and are archived after a seal.

use std::collections::BTreeMap;
use std::time::Instant;

use d5_core::audit::{record_hash, AuditRecord, GENESIS_PREV_HASH};

use super::*;

/// (y, m, d) of a day counted from 1970-01-01 (Hinnant's civil_from_days).
fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

pub fn date(z: i64) -> String {
    let (y, m, d) = civil(z);
    format!("{y:04}-{m:02}-{d:02}")
}

fn month_key(z: i64) -> i64 {
    let (y, m, _) = civil(z);
    y * 12 + m - 1
}

/// (tenant, key) -> (cents, rows)
type Sums = BTreeMap<(Uuid, i64), (i64, i64)>;

fn sums(su: &mut Client, sql: &str) -> Sums {
    su.query(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e:?}")).iter().map(|r| ((r.get(0), r.get(1)), (r.get(2), r.get(3)))).collect()
}

/// Non-default partitions of every table that differ from the expected set:
/// every bucket from the start (or the oldest record) to `now` + premake (or
/// the newest record) whose end is after `now` - retention.
const PARTITION_DIFF: &str = "
WITH spec(t, lo_extra, hi_extra) AS (VALUES
        ('d5.cost_metrics_raw'::regclass, NULL::timestamptz, NULL::timestamptz),
        ('d5.cost_metrics_hourly', NULL, NULL), ('d5.cost_metrics_daily', NULL, NULL),
        ('d5.cost_metrics_monthly', NULL, NULL), ('d5.audit_log', $3, $4)),
cfg AS (SELECT s.*, c.granularity AS g, c.premake AS p, r.retention AS ret
          FROM spec s JOIN d5.partition_config c ON c.parent = s.t JOIN d5.retention_policies r ON r.table_name = s.t),
expected AS (
    SELECT cfg.t, b FROM cfg,
           generate_series(d5._bucket(g, least($1, coalesce(lo_extra, $1))),
                           greatest(d5._bucket(g, $2, p), d5._bucket(g, coalesce(hi_extra, $2))),
                           ('1 ' || g)::interval) b
     WHERE b + ('1 ' || g)::interval > $2 - ret),
actual AS (SELECT s.t, x.lo AS b FROM spec s, d5._partitions(s.t) x WHERE NOT x.is_default)
SELECT t::text || ' ' || b::text || ' missing' FROM (SELECT * FROM expected EXCEPT SELECT * FROM actual) m
UNION ALL
SELECT t::text || ' ' || b::text || ' unexpected' FROM (SELECT * FROM actual EXCEPT SELECT * FROM expected) u";

/// Partitions retired by now (for the archive count): same buckets, ended before now - retention.
const RETIRED: &str = "
SELECT count(*) FROM d5.partition_config c JOIN d5.retention_policies r ON r.table_name = c.parent,
       generate_series(d5._bucket(c.granularity, CASE WHEN c.parent = 'd5.audit_log'::regclass THEN $3 ELSE $1 END),
                       $2, ('1 ' || c.granularity)::interval) b
 WHERE r.action = 'archive' AND b + ('1 ' || c.granularity)::interval <= $2 - r.retention";

fn oldest_day(su: &mut Client, table: &str) -> i64 {
    su.query_one(
        "SELECT coalesce((extract(epoch FROM min(lo)) / 86400)::bigint, 0) FROM d5._partitions($1::text::regclass) WHERE NOT is_default",
        &[&table],
    )
    .unwrap()
    .get(0)
}

/// Inserts a chain of backdated records, one per month start in [from, to),
/// into the chain `h`, exactly as the audit writer would have hashed them.
pub fn backdated_chain(su: &mut Client, h: Uuid, from: i64, to: i64) -> i64 {
    let mut prev = GENESIS_PREV_HASH;
    let mut seq = 0;
    for z in from..to {
        if civil(z).2 != 1 {
            continue;
        }
        seq += 1;
        let micros = z * 86_400 * 1_000_000;
        let rec = AuditRecord {
            tenant_id: h,
            seq,
            prev_hash: prev,
            logged_at_micros: micros,
            txid: 1,
            db_role: "history",
            actor: None,
            table_name: Some("d5.policies"),
            operation: "INSERT",
            row_pk: None,
            old_row: None,
            new_row: None,
            changed_cols: None,
            row_count: None,
            rows_digest: None,
            detail: None,
        };
        let hash = record_hash(&rec);
        su.execute(
            "INSERT INTO d5.audit_log (tenant_id, seq, prev_hash, hash, logged_at, txid, db_role, table_name, operation)
             VALUES ($1, $2, $3, $4, 'epoch'::timestamptz + $5 * interval '1 microsecond', 1, 'history', 'd5.policies', 'INSERT')",
            &[&h, &seq, &prev.to_vec(), &hash.to_vec(), &(micros as f64)],
        )
        .unwrap();
        prev = hash;
    }
    su.execute("INSERT INTO d5.audit_chain_heads VALUES ($1, $2, $3)", &[&h, &seq, &prev.to_vec()]).unwrap();
    seq
}

/// What was ingested: sums per tenant-day, and the batches to re-ingest a day.
struct Model {
    tenants: Vec<(Uuid, Uuid)>,
    sums: Sums,
    batches: BTreeMap<(usize, i64), Vec<(i32, i64)>>,
}

impl Model {
    /// Every tenant's regular rows for days `from..=to`, in one statement:
    /// 2 + z % 3 rows a day costing (100 + (7z + 13i) % 500) cents each.
    fn ingest_days(&mut self, su: &mut Client, from: i64, to: i64) {
        let ids: Vec<Uuid> = self.tenants.iter().map(|t| t.0).collect();
        let accounts: Vec<Uuid> = self.tenants.iter().map(|t| t.1).collect();
        su.execute(
            "WITH x AS (
                 SELECT t.id, t.acct, z, date '1970-01-01' + z::int AS day, 2 + z % 3 AS n,
                        round((100 + (z * 7 + (t.i - 1) * 13) % 500)::numeric / 100, 2) AS c
                   FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS t(id, acct, i), generate_series($3::bigint, $4::bigint) z),
             raw AS (
                 INSERT INTO d5.cost_metrics_raw (tenant_id, cloud_account_id, billed_cost, effective_cost, list_cost,
                        contracted_cost, billing_account_id, billing_currency, billing_period_start, billing_period_end,
                        charge_category, charge_period_start, charge_period_end, provider_name, service_name, ingest_batch_id)
                 SELECT x.id, x.acct, x.c, x.c, x.c, x.c, 'acct', 'USD', date_trunc('month', d), date_trunc('month', d) + interval '1 month',
                        'Usage', d + h * interval '1 hour', d + (h + 1) * interval '1 hour', 'AWS',
                        CASE WHEN h % 2 = 0 THEN 'EC2' ELSE 'S3' END, gen_random_uuid()
                   FROM x, LATERAL (SELECT x.day::timestamp AT TIME ZONE 'UTC' AS d) dd, generate_series(0, x.n - 1) h)
             INSERT INTO d5.cost_rollup_pending (tenant_id, day) SELECT id, day FROM x ON CONFLICT DO NOTHING",
            &[&ids, &accounts, &from, &to],
        )
        .unwrap();
        for z in from..=to {
            for i in 0..self.tenants.len() {
                let (n, cents) = (2 + (z % 3) as i32, 100 + (z * 7 + i as i64 * 13) % 500);
                self.record(i, z, n, cents);
            }
        }
    }

    fn record(&mut self, i: usize, z: i64, n: i32, cents: i64) {
        self.batches.entry((i, z)).or_default().push((n, cents));
        let e = self.sums.entry((self.tenants[i].0, z)).or_default();
        e.0 += cents * i64::from(n);
        e.1 += i64::from(n);
    }

    fn ingest(&mut self, su: &mut Client, i: usize, z: i64, n: i32, cents: i64) {
        let (t, a) = self.tenants[i];
        ingest_day(su, t, a, &date(z), n, cents);
        self.record(i, z, n, cents);
    }

    /// A late correction replaces the whole tenant-day, as d5.ingest_focus
    /// replaces a billing period: its raw rows are loaded again (they may
    /// be gone already) with one more, so rollups recompute a complete day.
    fn correct(&mut self, su: &mut Client, i: usize, z: i64, cents: i64) {
        let (t, a) = self.tenants[i];
        su.execute(
            "DELETE FROM d5.cost_metrics_raw WHERE tenant_id = $1
                AND charge_period_start >= $2::text::date::timestamp AT TIME ZONE 'UTC'
                AND charge_period_start < ($2::text::date + 1)::timestamp AT TIME ZONE 'UTC'",
            &[&t, &date(z)],
        )
        .unwrap();
        for (n, c) in self.batches.get(&(i, z)).cloned().unwrap_or_default() {
            ingest_day(su, t, a, &date(z), n, c);
        }
        self.ingest(su, i, z, 1, cents);
    }
}

#[test]
fn eight_years_of_maintenance_keep_exactly_what_the_policies_say() {
    let db = TestDb::new();
    let (_, mut admin) = db.login("d5_admin");
    let (_, mut auditor) = db.login("d5_auditor");
    let (app_role, _) = db.login("d5_app");
    let mut su = db.superuser();
    su.batch_execute("SET TimeZone = 'UTC'").unwrap();
    // Archive daily rollups too, so both retention actions run.
    admin
        .batch_execute("UPDATE d5.retention_policies SET action = 'archive' WHERE table_name = 'd5.cost_metrics_daily'::regclass")
        .unwrap();
    let tenants: Vec<(Uuid, Uuid)> = (0..2).map(|i| tenant_with_account(&db, &format!("t{i}"))).collect();
    let today: i64 =
        su.query_one("SELECT (extract(epoch FROM date_trunc('day', now())) / 86400)::bigint", &[]).unwrap().get(0);
    let (start, end) = (today - 2930, today - 2);
    let history = Uuid::new_v4();
    backdated_chain(&mut su, history, start - 365, today);
    let start_ts = format!("{} 00:00+00", date(start));
    let history_from = format!("{} 00:00+00", date(start - 365));
    let real_now: String = su.query_one("SELECT now()::text", &[]).unwrap().get(0);
    let partition_diff = timestamptz_params(PARTITION_DIFF);
    let retired_sql = timestamptz_params(RETIRED);

    let mut model = Model { tenants: tenants.clone(), sums: BTreeMap::new(), batches: BTreeMap::new() };
    let (mut day, mut ingested, mut steps, mut archives) = (start, start - 1, 0, 0);
    let t0 = Instant::now();
    let mut spent = [std::time::Duration::ZERO; 4]; // ingest, maintain, checks, verify
    while day <= end {
        let t = Instant::now();
        model.ingest_days(&mut su, ingested + 1, day);
        ingested = day;
        // Late corrections 10 days back (the raw partition is gone) and 40
        // days back (the hourly one too).
        if steps % 23 == 5 && day - 40 >= start {
            model.correct(&mut su, 0, day - 10, 1234);
            model.correct(&mut su, 1, day - 40, 4321);
        }
        if steps % 60 == 0 {
            let mut app = db.connect_as(&app_role);
            app.batch_execute(&format!(
                "BEGIN; SELECT d5.set_tenant('{}'); INSERT INTO d5.policies (name, type) VALUES ('p{steps}', 'budget'); COMMIT",
                tenants[0].0
            ))
            .unwrap();
        }
        let now = format!("{} 06:00+00", date(day));
        spent[0] += t.elapsed();
        let t = Instant::now();
        let acts = maintain(&mut admin, &now);
        let bad: Vec<_> = acts.iter().filter(|a| a.status != "done" && a.action != "run").collect();
        assert!(bad.is_empty() && run_row(&acts).status == "ok", "{now}: {acts:#?}");
        if steps % 80 == 7 {
            let again = maintain(&mut admin, &now);
            assert_eq!(actions(&again).len(), 0, "{now}: not idempotent: {again:#?}");
        }

        spent[1] += t.elapsed();
        let t = Instant::now();
        let diff: Vec<String> = su
            .query(&partition_diff, &[&start_ts, &now, &history_from, &real_now])
            .unwrap_or_else(|e| panic!("{e:?}"))
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(diff.is_empty(), "{now}: partitions differ from the policies: {diff:#?}");
        assert_eq!(default_rows(&mut su), vec![], "{now}: rows left in DEFAULT partitions");
        check_rollups(&mut su, &model.sums, &now);
        let retired: i64 = su.query_one(&retired_sql, &[&start_ts, &now, &history_from]).unwrap().get(0);
        let archived = count(&mut su, "SELECT count(*) FROM d5.archived_partitions");
        assert_eq!(archived, retired, "{now}: archived partitions");
        if archived > archives {
            check_archives(&mut auditor, &model.sums);
            archives = archived;
        }
        spent[2] += t.elapsed();
        let t = Instant::now();
        assert_chains_ok(&mut auditor, &now);
        spent[3] += t.elapsed();

        steps += 1;
        let near_new_year = matches!(civil(day + 7), (_, 1, 1..=14));
        day += if day - start < 40 || end - day < 40 || near_new_year { 1 } else { 14 };
    }
    assert!(archives >= 60, "only {archives} partitions archived");
    let sealed = count(
        &mut su,
        &format!("SELECT count(*) FROM d5.audit_log WHERE tenant_id = '{history}' AND operation = 'SEAL'"),
    );
    assert!(sealed >= 1, "the backdated chain was never sealed");
    eprintln!(
        "replay: {steps} steps, {archives} archived partitions, {:?} (ingest {:?}, maintenance {:?}, checks {:?}, verify {:?})",
        t0.elapsed(),
        spent[0],
        spent[1],
        spent[2],
        spent[3]
    );
}

/// `$1`..`$4` as text parameters cast to timestamptz (the client sends text).
fn timestamptz_params(sql: &str) -> String {
    (1..=4).fold(sql.to_string(), |s, i| s.replace(&format!("${i}"), &format!("${i}::text::timestamptz")))
}

/// Every retained raw, hourly, daily and monthly row against the model.
fn check_rollups(su: &mut Client, model: &Sums, now: &str) {
    let q = |table: &str, key: &str, rows: &str| {
        format!(
            "SELECT tenant_id, {key}, (sum(billed_cost) * 100)::bigint, {rows}::bigint FROM {table} GROUP BY 1, 2"
        )
    };
    let day_of = |col: &str| format!("(extract(epoch FROM date_trunc('day', {col})) / 86400)::bigint");
    for (table, key, rows) in [
        ("d5.cost_metrics_raw", day_of("charge_period_start"), "count(*)"),
        ("d5.cost_metrics_hourly", day_of("hour"), "sum(row_count)"),
        ("d5.cost_metrics_daily", day_of("day::timestamp"), "sum(row_count)"),
    ] {
        let oldest = oldest_day(su, table);
        let want: Sums = model.iter().filter(|((_, z), _)| *z >= oldest).map(|(k, v)| (*k, *v)).collect();
        let got = sums(su, &q(table, &key, rows));
        assert!(got == want, "{now}: {table} differs from the model:\n got {:?}\nwant {:?}", diff(&got, &want), diff(&want, &got));
    }
    let oldest = month_key(oldest_day(su, "d5.cost_metrics_monthly"));
    let mut want: Sums = BTreeMap::new();
    for ((t, z), (c, n)) in model {
        if month_key(*z) >= oldest {
            let e = want.entry((*t, month_key(*z))).or_default();
            e.0 += c;
            e.1 += n;
        }
    }
    let got = sums(
        su,
        &q("d5.cost_metrics_monthly", "(extract(year FROM month) * 12 + extract(month FROM month) - 1)::bigint", "sum(row_count)"),
    );
    assert!(got == want, "{now}: monthly differs from the model:\n got {:?}\nwant {:?}", diff(&got, &want), diff(&want, &got));
}

fn diff(a: &Sums, b: &Sums) -> Vec<((Uuid, i64), (i64, i64))> {
    a.iter().filter(|(k, v)| b.get(k) != Some(v)).map(|(k, v)| (*k, *v)).take(5).collect()
}

/// Every archived partition still matches its catalog row; archived daily
/// rollups hold exactly the model's days of their month.
fn check_archives(auditor: &mut Client, model: &Sums) {
    let rows = auditor
        .query(
            "SELECT archived_table, parent_table, (extract(epoch FROM range_from) / 86400)::bigint,
                    (extract(epoch FROM range_to) / 86400)::bigint, row_count, checksum
               FROM d5.archived_partitions",
            &[],
        )
        .unwrap();
    for r in rows {
        let (table, parent, from, to, n, sum): (String, String, i64, i64, i64, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
        let now: (i64, String) = {
            let c = auditor.query_one(&format!("SELECT * FROM d5.partition_checksum('{table}')"), &[]).unwrap();
            (c.get(0), c.get(1))
        };
        assert_eq!(now, (n, sum), "{table}: archive changed since it was archived");
        if parent == "d5.cost_metrics_daily" {
            let got = sums(
                auditor,
                &format!(
                    "SELECT tenant_id, (extract(epoch FROM day::timestamp) / 86400)::bigint, (sum(billed_cost) * 100)::bigint,
                            sum(row_count)::bigint FROM {table} GROUP BY 1, 2"
                ),
            );
            let want: Sums = model.iter().filter(|((_, z), _)| *z >= from && *z < to).map(|(k, v)| (*k, *v)).collect();
            assert!(got == want, "{table}: archived rows differ from the model");
        }
    }
}
