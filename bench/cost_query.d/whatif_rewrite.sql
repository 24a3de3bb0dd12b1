-- A what-if, not the extension's code: bench.daily_costs_v2 / bench.monthly_costs_v2,
-- the same results as d5.daily_costs / d5.monthly_costs with the raw-row
-- (pending day) paths rewritten so that the planner can use the
-- (tenant_id, charge_period_start) index and prune raw partitions under RLS:
--  * _exact_daily joins pending days to raw rows on
--    charge_period_start >= p.day::timestamp AT TIME ZONE 'UTC' — timezone()
--    and date + int are not LEAKPROOF, so under RLS that join clause cannot
--    become an index condition on the raw table: every raw row of the tenant
--    in every raw partition is read and then filtered. Here the bounds come
--    from scalar sub-selects (InitPlans: parameters without Vars), which are
--    index conditions and prune partitions at run time; an EXISTS keeps
--    exactly the pending days. (The settled-day filter becomes
--    day <> ALL (ARRAY(pending days)), one InitPlan instead of an anti join
--    that the planner may run as one pending-index probe per daily row.)
--  * monthly_costs calls _exact_daily with sub-select arguments, which keeps
--    it from being inlined (a separate, generically planned function call on
--    every query, also when nothing is pending). Here the fresh months are
--    read directly, bounded the same way.
-- Run as the superuser; granted to d5_app. Used by bench/cost_query with WHATIF=1.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS bench;
GRANT USAGE ON SCHEMA bench TO d5_app;

CREATE OR REPLACE FUNCTION bench.exact_daily_v2("from" date, "to" date)
RETURNS TABLE (day date, cloud_account_id uuid, service_name text, region_id text, charge_category text,
               billing_currency text, billed_cost numeric, effective_cost numeric, list_cost numeric,
               contracted_cost numeric)
LANGUAGE sql STABLE AS $$
    SELECT d.day, d.cloud_account_id, d.service_name, d.region_id, d.charge_category, d.billing_currency,
           d.billed_cost, d.effective_cost, d.list_cost, d.contracted_cost
    FROM d5.cost_metrics_daily d
    WHERE d.tenant_id = d5.current_tenant() AND d.day BETWEEN "from" AND "to"
      AND d.day <> ALL (ARRAY(SELECT p.day FROM d5.cost_rollup_pending p
                              WHERE p.tenant_id = d5.current_tenant() AND p.day BETWEEN "from" AND "to"))
    UNION ALL
    SELECT (r.charge_period_start AT TIME ZONE 'UTC')::date, r.cloud_account_id, r.service_name,
           coalesce(r.region_id, ''), r.charge_category, r.billing_currency,
           sum(r.billed_cost), sum(r.effective_cost), sum(r.list_cost), sum(r.contracted_cost)
    FROM d5.cost_metrics_raw r
    WHERE r.tenant_id = d5.current_tenant()
      AND r.charge_period_start >= (SELECT min(p.day)::timestamp AT TIME ZONE 'UTC' FROM d5.cost_rollup_pending p
                                    WHERE p.tenant_id = d5.current_tenant() AND p.day BETWEEN "from" AND "to")
      AND r.charge_period_start < (SELECT (max(p.day) + 1)::timestamp AT TIME ZONE 'UTC' FROM d5.cost_rollup_pending p
                                   WHERE p.tenant_id = d5.current_tenant() AND p.day BETWEEN "from" AND "to")
      AND EXISTS (SELECT 1 FROM d5.cost_rollup_pending p
                  WHERE p.tenant_id = r.tenant_id AND p.day = (r.charge_period_start AT TIME ZONE 'UTC')::date)
    GROUP BY 1, 2, 3, 4, 5, 6
$$;

CREATE OR REPLACE FUNCTION bench.daily_costs_v2("from" date, "to" date)
RETURNS TABLE (day date, service_name text, billed_cost numeric, effective_cost numeric, list_cost numeric,
               billing_currency text)
LANGUAGE sql STABLE AS $$
    SELECT e.day, e.service_name, sum(e.billed_cost), sum(e.effective_cost), sum(e.list_cost), e.billing_currency
    FROM bench.exact_daily_v2("from", "to") e
    GROUP BY e.day, e.service_name, e.billing_currency
    ORDER BY e.day, e.service_name, e.billing_currency
$$;

CREATE OR REPLACE FUNCTION bench.monthly_costs_v2("from" date, "to" date)
RETURNS TABLE (month date, service_name text, billing_currency text, billed_cost numeric,
               effective_cost numeric, list_cost numeric)
LANGUAGE sql STABLE AS $$
    WITH unsettled AS (
        SELECT DISTINCT date_trunc('month', p.day)::date AS month
        FROM d5.cost_rollup_pending p
        WHERE p.tenant_id = d5.current_tenant()
          AND p.day >= date_trunc('month', "from")::date
          AND p.day < (date_trunc('month', "to") + interval '1 month')::date
    ), settled AS (
        SELECT m.month, m.service_name, m.billing_currency, sum(m.billed_cost) AS billed_cost,
               sum(m.effective_cost) AS effective_cost, sum(m.list_cost) AS list_cost
        FROM d5.cost_metrics_monthly m
        WHERE m.tenant_id = d5.current_tenant()
          AND m.month BETWEEN date_trunc('month', "from")::date AND date_trunc('month', "to")::date
          AND m.month NOT IN (SELECT u.month FROM unsettled u)
        GROUP BY 1, 2, 3
    ), fresh_rows AS (
        SELECT d.day, d.service_name, d.billing_currency, d.billed_cost, d.effective_cost, d.list_cost
        FROM d5.cost_metrics_daily d
        WHERE d.tenant_id = d5.current_tenant()
          AND d.day >= (SELECT min(u.month) FROM unsettled u)
          AND d.day < (SELECT (max(u.month) + interval '1 month')::date FROM unsettled u)
          AND date_trunc('month', d.day)::date IN (SELECT u.month FROM unsettled u)
          AND d.day <> ALL (ARRAY(SELECT p.day FROM d5.cost_rollup_pending p WHERE p.tenant_id = d5.current_tenant()))
        UNION ALL
        SELECT (r.charge_period_start AT TIME ZONE 'UTC')::date, r.service_name, r.billing_currency,
               r.billed_cost, r.effective_cost, r.list_cost
        FROM d5.cost_metrics_raw r
        WHERE r.tenant_id = d5.current_tenant()
          AND r.charge_period_start >= (SELECT min(p.day)::timestamp AT TIME ZONE 'UTC' FROM d5.cost_rollup_pending p
                                        WHERE p.tenant_id = d5.current_tenant()
                                          AND p.day >= date_trunc('month', "from")::date
                                          AND p.day < (date_trunc('month', "to") + interval '1 month')::date)
          AND r.charge_period_start < (SELECT (max(p.day) + 1)::timestamp AT TIME ZONE 'UTC' FROM d5.cost_rollup_pending p
                                       WHERE p.tenant_id = d5.current_tenant()
                                         AND p.day >= date_trunc('month', "from")::date
                                         AND p.day < (date_trunc('month', "to") + interval '1 month')::date)
          AND EXISTS (SELECT 1 FROM d5.cost_rollup_pending p
                      WHERE p.tenant_id = r.tenant_id AND p.day = (r.charge_period_start AT TIME ZONE 'UTC')::date)
    ), fresh AS (
        SELECT date_trunc('month', f.day)::date AS month, f.service_name, f.billing_currency,
               sum(f.billed_cost), sum(f.effective_cost), sum(f.list_cost)
        FROM fresh_rows f
        GROUP BY 1, 2, 3
    )
    SELECT * FROM settled UNION ALL SELECT * FROM fresh ORDER BY 1, 2, 3
$$;
GRANT EXECUTE ON FUNCTION bench.exact_daily_v2(date, date), bench.daily_costs_v2(date, date),
    bench.monthly_costs_v2(date, date) TO d5_app;
