-- Cost queries for the current tenant. All are SECURITY INVOKER (RLS of the
-- caller applies) and read the coarsest table that answers exactly: daily
-- rollups for settled days, raw rows for days whose rollup is still pending.
-- Ranges are inclusive UTC days.

-- Every settled-or-pending day in [from, to] at the rollup grain. The raw
-- bounds are scalar sub-selects on purpose: under RLS a join clause through
-- timezone() (not LEAKPROOF) cannot become an index condition, while these
-- InitPlan parameters can, and they prune raw partitions at run time.
CREATE FUNCTION @extschema@._exact_daily("from" date, "to" date)
RETURNS TABLE (day date, cloud_account_id uuid, service_name text, region_id text, charge_category text,
               billing_currency text, billed_cost numeric, effective_cost numeric, list_cost numeric,
               contracted_cost numeric)
LANGUAGE sql STABLE AS $$
    SELECT d.day, d.cloud_account_id, d.service_name, d.region_id, d.charge_category, d.billing_currency,
           d.billed_cost, d.effective_cost, d.list_cost, d.contracted_cost
    FROM @extschema@.cost_metrics_daily d
    WHERE d.tenant_id = @extschema@.current_tenant() AND d.day BETWEEN "from" AND "to"
      AND d.day <> ALL (ARRAY(SELECT p.day FROM @extschema@.cost_rollup_pending p
                              WHERE p.tenant_id = @extschema@.current_tenant() AND p.day BETWEEN "from" AND "to"))
    UNION ALL
    SELECT (r.charge_period_start AT TIME ZONE 'UTC')::date, r.cloud_account_id, r.service_name,
           coalesce(r.region_id, ''), r.charge_category, r.billing_currency,
           sum(r.billed_cost), sum(r.effective_cost), sum(r.list_cost), sum(r.contracted_cost)
    FROM @extschema@.cost_metrics_raw r
    WHERE r.tenant_id = @extschema@.current_tenant()
      AND r.charge_period_start >= (SELECT min(p.day)::timestamp AT TIME ZONE 'UTC' FROM @extschema@.cost_rollup_pending p
                                    WHERE p.tenant_id = @extschema@.current_tenant() AND p.day BETWEEN "from" AND "to")
      AND r.charge_period_start < (SELECT (max(p.day) + 1)::timestamp AT TIME ZONE 'UTC' FROM @extschema@.cost_rollup_pending p
                                   WHERE p.tenant_id = @extschema@.current_tenant() AND p.day BETWEEN "from" AND "to")
      AND EXISTS (SELECT 1 FROM @extschema@.cost_rollup_pending p
                  WHERE p.tenant_id = r.tenant_id AND p.day = (r.charge_period_start AT TIME ZONE 'UTC')::date)
    GROUP BY 1, 2, 3, 4, 5, 6
$$;

CREATE FUNCTION @extschema@.daily_costs("from" date, "to" date)
RETURNS TABLE (day date, service_name text, billed_cost numeric, effective_cost numeric, list_cost numeric,
               billing_currency text)
LANGUAGE sql STABLE AS $$
    SELECT e.day, e.service_name, sum(e.billed_cost), sum(e.effective_cost), sum(e.list_cost), e.billing_currency
    FROM @extschema@._exact_daily("from", "to") e
    GROUP BY e.day, e.service_name, e.billing_currency
    ORDER BY e.day, e.service_name, e.billing_currency
$$;
COMMENT ON FUNCTION @extschema@.daily_costs(date, date) IS
    'Cost per UTC day and service for the current tenant, days from..to inclusive.';

CREATE FUNCTION @extschema@.cost_by_service("from" date, "to" date)
RETURNS TABLE (service_name text, billing_currency text, billed_cost numeric, effective_cost numeric,
               list_cost numeric)
LANGUAGE sql STABLE AS $$
    SELECT e.service_name, e.billing_currency, sum(e.billed_cost), sum(e.effective_cost), sum(e.list_cost)
    FROM @extschema@._exact_daily("from", "to") e
    GROUP BY 1, 2 ORDER BY 4 DESC, 1, 2
$$;

CREATE FUNCTION @extschema@.cost_by_account("from" date, "to" date)
RETURNS TABLE (cloud_account_id uuid, billing_currency text, billed_cost numeric, effective_cost numeric,
               list_cost numeric)
LANGUAGE sql STABLE AS $$
    SELECT e.cloud_account_id, e.billing_currency, sum(e.billed_cost), sum(e.effective_cost), sum(e.list_cost)
    FROM @extschema@._exact_daily("from", "to") e
    GROUP BY 1, 2 ORDER BY 4 DESC, 1, 2
$$;

CREATE FUNCTION @extschema@.cost_by_region("from" date, "to" date)
RETURNS TABLE (region_id text, billing_currency text, billed_cost numeric, effective_cost numeric,
               list_cost numeric)
LANGUAGE sql STABLE AS $$
    SELECT e.region_id, e.billing_currency, sum(e.billed_cost), sum(e.effective_cost), sum(e.list_cost)
    FROM @extschema@._exact_daily("from", "to") e
    GROUP BY 1, 2 ORDER BY 4 DESC, 1, 2
$$;

-- Tags are kept per raw row only, so this answers for the raw retention
-- window (7 days by default); rows without the key are grouped under NULL.
CREATE FUNCTION @extschema@.cost_by_tag(tag_key text, "from" date, "to" date)
RETURNS TABLE (tag_value text, billing_currency text, billed_cost numeric, effective_cost numeric,
               list_cost numeric)
LANGUAGE sql STABLE AS $$
    SELECT r.tags ->> tag_key, r.billing_currency, sum(r.billed_cost), sum(r.effective_cost), sum(r.list_cost)
    FROM @extschema@.cost_metrics_raw r
    WHERE r.tenant_id = @extschema@.current_tenant()
      AND r.charge_period_start >= "from"::timestamp AT TIME ZONE 'UTC'
      AND r.charge_period_start < ("to" + 1)::timestamp AT TIME ZONE 'UTC'
    GROUP BY 1, 2 ORDER BY 4 DESC, 1, 2
$$;

-- Per month and service: monthly rollups for settled months, the exact daily
-- path for months that still have pending days.
CREATE FUNCTION @extschema@.monthly_costs("from" date, "to" date)
RETURNS TABLE (month date, service_name text, billing_currency text, billed_cost numeric,
               effective_cost numeric, list_cost numeric)
LANGUAGE sql STABLE AS $$
    WITH unsettled AS (
        SELECT DISTINCT date_trunc('month', p.day)::date AS month
        FROM @extschema@.cost_rollup_pending p
        WHERE p.tenant_id = @extschema@.current_tenant()
          AND p.day >= date_trunc('month', "from")::date
          AND p.day < (date_trunc('month', "to") + interval '1 month')::date
    ), settled AS (
        SELECT m.month, m.service_name, m.billing_currency, sum(m.billed_cost) AS billed_cost,
               sum(m.effective_cost) AS effective_cost, sum(m.list_cost) AS list_cost
        FROM @extschema@.cost_metrics_monthly m
        WHERE m.tenant_id = @extschema@.current_tenant()
          AND m.month BETWEEN date_trunc('month', "from")::date AND date_trunc('month', "to")::date
          AND m.month NOT IN (SELECT u.month FROM unsettled u)
        GROUP BY 1, 2, 3
    ), fresh_rows AS (
        SELECT d.day, d.service_name, d.billing_currency, d.billed_cost, d.effective_cost, d.list_cost
        FROM @extschema@.cost_metrics_daily d
        WHERE d.tenant_id = @extschema@.current_tenant()
          AND d.day >= (SELECT min(u.month) FROM unsettled u)
          AND d.day < (SELECT (max(u.month) + interval '1 month')::date FROM unsettled u)
          AND date_trunc('month', d.day)::date IN (SELECT u.month FROM unsettled u)
          AND d.day <> ALL (ARRAY(SELECT p.day FROM @extschema@.cost_rollup_pending p WHERE p.tenant_id = @extschema@.current_tenant()))
        UNION ALL
        SELECT (r.charge_period_start AT TIME ZONE 'UTC')::date, r.service_name, r.billing_currency,
               r.billed_cost, r.effective_cost, r.list_cost
        FROM @extschema@.cost_metrics_raw r
        WHERE r.tenant_id = @extschema@.current_tenant()
          AND r.charge_period_start >= (SELECT min(p.day)::timestamp AT TIME ZONE 'UTC' FROM @extschema@.cost_rollup_pending p
                                        WHERE p.tenant_id = @extschema@.current_tenant()
                                          AND p.day >= date_trunc('month', "from")::date
                                          AND p.day < (date_trunc('month', "to") + interval '1 month')::date)
          AND r.charge_period_start < (SELECT (max(p.day) + 1)::timestamp AT TIME ZONE 'UTC' FROM @extschema@.cost_rollup_pending p
                                       WHERE p.tenant_id = @extschema@.current_tenant()
                                         AND p.day >= date_trunc('month', "from")::date
                                         AND p.day < (date_trunc('month', "to") + interval '1 month')::date)
          AND EXISTS (SELECT 1 FROM @extschema@.cost_rollup_pending p
                      WHERE p.tenant_id = r.tenant_id AND p.day = (r.charge_period_start AT TIME ZONE 'UTC')::date)
    ), fresh AS (
        SELECT date_trunc('month', f.day)::date AS month, f.service_name, f.billing_currency,
               sum(f.billed_cost), sum(f.effective_cost), sum(f.list_cost)
        FROM fresh_rows f
        GROUP BY 1, 2, 3
    )
    SELECT * FROM settled UNION ALL SELECT * FROM fresh ORDER BY 1, 2, 3
$$;

-- Month to date against the same days of last month, per currency.
CREATE FUNCTION @extschema@.month_to_date_comparison(as_of date DEFAULT (now() AT TIME ZONE 'UTC')::date)
RETURNS TABLE (billing_currency text, month_to_date numeric, same_days_last_month numeric, change_percent numeric)
LANGUAGE sql STABLE AS $$
    WITH bounds AS (
        SELECT date_trunc('month', as_of)::date AS this_start,
               (date_trunc('month', as_of) - interval '1 month')::date AS last_start,
               -- the same day number last month, clamped to that month's length
               least((date_trunc('month', as_of) - interval '1 month' + (as_of - date_trunc('month', as_of)::date) * interval '1 day')::date,
                     (date_trunc('month', as_of) - interval '1 day')::date) AS last_end
    ), now_ AS (
        SELECT e.billing_currency, sum(e.effective_cost) AS cost
        FROM bounds b, @extschema@._exact_daily(b.this_start, as_of) e GROUP BY 1
    ), then_ AS (
        SELECT e.billing_currency, sum(e.effective_cost) AS cost
        FROM bounds b, @extschema@._exact_daily(b.last_start, b.last_end) e GROUP BY 1
    )
    SELECT coalesce(n.billing_currency, t.billing_currency), coalesce(n.cost, 0), coalesce(t.cost, 0),
           CASE WHEN coalesce(t.cost, 0) = 0 THEN NULL
                ELSE round((coalesce(n.cost, 0) - t.cost) * 100 / t.cost, 2) END
    FROM now_ n FULL JOIN then_ t ON t.billing_currency = n.billing_currency
    ORDER BY 1
$$;
