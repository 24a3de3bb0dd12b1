-- Monthly rollups of one month (psql variable m, its first day) for every
-- tenant from the daily rows: what d5._rollup_month(tenant, m) computes, in
-- one statement for all tenants (replacing any rows of that month).
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET work_mem = '256MB';
BEGIN;
DELETE FROM d5.cost_metrics_monthly WHERE month = :'m'::date;
INSERT INTO d5.cost_metrics_monthly
SELECT d.tenant_id, d.cloud_account_id, :'m'::date, d.service_name, d.region_id, d.charge_category, d.billing_currency,
       sum(d.billed_cost), sum(d.effective_cost), sum(d.list_cost), sum(d.contracted_cost),
       sum(d.consumed_quantity), sum(d.pricing_quantity), sum(d.row_count)
  FROM d5.cost_metrics_daily d
 WHERE d.day >= :'m'::date AND d.day < (:'m'::date + interval '1 month')::date
 GROUP BY 1, 2, 3, 4, 5, 6, 7
 ORDER BY 1, 2, 4, 5, 6, 7;
COMMIT;
