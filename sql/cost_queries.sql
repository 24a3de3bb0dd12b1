-- Cost queries for the current tenant. All are SECURITY INVOKER (RLS of the
-- caller applies) and read the coarsest table that answers exactly: daily
-- rollups for settled days, raw rows for days whose rollup is still pending.
-- Ranges are inclusive UTC days.

-- Every settled-or-pending day in [from, to] at the rollup grain.
CREATE FUNCTION @extschema@._exact_daily("from" date, "to" date)
RETURNS TABLE (day date, cloud_account_id uuid, service_name text, region_id text, charge_category text,
               billing_currency text, billed_cost numeric, effective_cost numeric, list_cost numeric,
               contracted_cost numeric)
LANGUAGE sql STABLE AS $$
    SELECT d.day, d.cloud_account_id, d.service_name, d.region_id, d.charge_category, d.billing_currency,
           d.billed_cost, d.effective_cost, d.list_cost, d.contracted_cost
    FROM @extschema@.cost_metrics_daily d
    WHERE d.tenant_id = @extschema@.current_tenant() AND d.day BETWEEN "from" AND "to"
      AND NOT EXISTS (SELECT 1 FROM @extschema@.cost_rollup_pending p
                      WHERE p.tenant_id = d.tenant_id AND p.day = d.day)
    UNION ALL
    SELECT (r.charge_period_start AT TIME ZONE 'UTC')::date, r.cloud_account_id, r.service_name,
           coalesce(r.region_id, ''), r.charge_category, r.billing_currency,
           sum(r.billed_cost), sum(r.effective_cost), sum(r.list_cost), sum(r.contracted_cost)
    FROM @extschema@.cost_rollup_pending p
    JOIN @extschema@.cost_metrics_raw r
      ON r.tenant_id = p.tenant_id
     AND r.charge_period_start >= p.day::timestamp AT TIME ZONE 'UTC'
     AND r.charge_period_start < (p.day + 1)::timestamp AT TIME ZONE 'UTC'
    WHERE p.tenant_id = @extschema@.current_tenant() AND p.day BETWEEN "from" AND "to"
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
    ), settled AS (
        SELECT m.month, m.service_name, m.billing_currency, sum(m.billed_cost) AS billed_cost,
               sum(m.effective_cost) AS effective_cost, sum(m.list_cost) AS list_cost
        FROM @extschema@.cost_metrics_monthly m
        WHERE m.tenant_id = @extschema@.current_tenant()
          AND m.month BETWEEN date_trunc('month', "from")::date AND date_trunc('month', "to")::date
          AND m.month NOT IN (SELECT u.month FROM unsettled u)
        GROUP BY 1, 2, 3
    ), fresh AS (
        SELECT date_trunc('month', e.day)::date AS month, e.service_name, e.billing_currency,
               sum(e.billed_cost), sum(e.effective_cost), sum(e.list_cost)
        FROM @extschema@._exact_daily(
                 (SELECT coalesce(min(u.month), 'infinity') FROM unsettled u),
                 (SELECT coalesce((max(u.month) + interval '1 month' - interval '1 day')::date, '-infinity') FROM unsettled u)) e
        WHERE date_trunc('month', e.day)::date IN (SELECT u.month FROM unsettled u)
          AND date_trunc('month', e.day)::date BETWEEN date_trunc('month', "from")::date AND date_trunc('month', "to")::date
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
