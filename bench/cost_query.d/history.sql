-- Synthetic daily rollups for the days of one month (psql variable m, its
-- first day) that lie in [current_date - 730, current_date - 8], i.e. before
-- the raw window: every tenant's real rollup rows of current_date - 7 (the
-- first raw day, copied to bench.daily_template) repeated for each day, costs
-- scaled by a factor of 0.8-1.2 per day. Inserted day by day in tenant order,
-- the physical order nightly rollups produce. Superuser (no RLS).
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET work_mem = '256MB';
INSERT INTO d5.cost_metrics_daily
SELECT t.tenant_id, t.cloud_account_id, d.day, t.service_name, t.region_id, t.charge_category, t.billing_currency,
       round(t.billed_cost * d.f, 10), round(t.effective_cost * d.f, 10), round(t.list_cost * d.f, 10),
       round(t.contracted_cost * d.f, 10), round(t.consumed_quantity * d.f, 6), round(t.pricing_quantity * d.f, 6),
       t.row_count
  FROM (SELECT g::date AS day, 0.8 + 0.4 * ((hashint4(g::date - date '2000-01-01') & 1023) / 1023.0) AS f
          FROM generate_series(greatest(:'m'::date, current_date - 730),
                               least((:'m'::date + interval '1 month' - interval '1 day')::date, current_date - 8),
                               interval '1 day') g) d
 CROSS JOIN bench.daily_template t
 ORDER BY d.day, t.tenant_id, t.cloud_account_id, t.service_name, t.region_id, t.charge_category, t.billing_currency;
