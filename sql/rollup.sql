-- Rollups: hourly and daily sums are recomputed from raw rows for a
-- tenant-day, monthly sums from daily ones. Days are UTC days. A tenant-day
-- is recomputed only while its raw rows exist (pending days are never
-- dropped by retention); once raw is gone, the rollups are the record.

CREATE FUNCTION @extschema@._rollup_day(tenant uuid, day date) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
    n  bigint;
BEGIN
    -- One writer per tenant-day; other tenant-days proceed in parallel.
    PERFORM pg_advisory_xact_lock(hashtextextended('d5.rollup:' || tenant || ':' || day, 0));
    DELETE FROM @extschema@.cost_metrics_hourly h WHERE h.tenant_id = tenant AND h.hour >= lo AND h.hour < hi;
    INSERT INTO @extschema@.cost_metrics_hourly
    SELECT r.tenant_id, r.cloud_account_id, date_trunc('hour', r.charge_period_start, 'UTC'), r.service_name,
           coalesce(r.region_id, ''), r.charge_category, r.billing_currency,
           sum(r.billed_cost), sum(r.effective_cost), sum(r.list_cost), sum(r.contracted_cost),
           sum(r.consumed_quantity), sum(r.pricing_quantity), count(*)
    FROM @extschema@.cost_metrics_raw r
    WHERE r.tenant_id = tenant AND r.charge_period_start >= lo AND r.charge_period_start < hi
    GROUP BY 1, 2, 3, 4, 5, 6, 7;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM @extschema@.cost_metrics_daily d WHERE d.tenant_id = tenant AND d.day = _rollup_day.day;
    INSERT INTO @extschema@.cost_metrics_daily
    SELECT h.tenant_id, h.cloud_account_id, _rollup_day.day, h.service_name, h.region_id, h.charge_category,
           h.billing_currency, sum(h.billed_cost), sum(h.effective_cost), sum(h.list_cost), sum(h.contracted_cost),
           sum(h.consumed_quantity), sum(h.pricing_quantity), sum(h.row_count)
    FROM @extschema@.cost_metrics_hourly h
    WHERE h.tenant_id = tenant AND h.hour >= lo AND h.hour < hi
    GROUP BY 1, 2, 3, 4, 5, 6, 7;
    DELETE FROM @extschema@.cost_rollup_pending p WHERE p.tenant_id = tenant AND p.day = _rollup_day.day;
    RETURN n;
END
$$;

CREATE FUNCTION @extschema@._rollup_month(tenant uuid, month date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m date := date_trunc('month', month)::date;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('d5.rollup-month:' || tenant || ':' || m, 0));
    DELETE FROM @extschema@.cost_metrics_monthly x WHERE x.tenant_id = tenant AND x.month = m;
    INSERT INTO @extschema@.cost_metrics_monthly
    SELECT d.tenant_id, d.cloud_account_id, m, d.service_name, d.region_id, d.charge_category, d.billing_currency,
           sum(d.billed_cost), sum(d.effective_cost), sum(d.list_cost), sum(d.contracted_cost),
           sum(d.consumed_quantity), sum(d.pricing_quantity), sum(d.row_count)
    FROM @extschema@.cost_metrics_daily d
    WHERE d.tenant_id = tenant AND d.day >= m AND d.day < (m + interval '1 month')::date
    GROUP BY 1, 2, 3, 4, 5, 6, 7;
END
$$;

-- Rolls up every pending tenant-day (of `only_tenant`, or all); returns how
-- many tenant-days. Concurrent callers split the work (SKIP LOCKED).
CREATE FUNCTION @extschema@._rollup_pending(only_tenant uuid DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p      record;
    done   bigint := 0;
    months text[] := '{}';
    tm     text;
BEGIN
    FOR p IN SELECT tenant_id, day FROM @extschema@.cost_rollup_pending
             WHERE only_tenant IS NULL OR tenant_id = only_tenant
             ORDER BY tenant_id, day FOR UPDATE SKIP LOCKED LOOP
        PERFORM @extschema@._rollup_day(p.tenant_id, p.day);
        tm := p.tenant_id || '|' || date_trunc('month', p.day)::date;
        IF NOT tm = ANY (months) THEN
            months := months || tm;
        END IF;
        done := done + 1;
    END LOOP;
    FOREACH tm IN ARRAY months LOOP
        PERFORM @extschema@._rollup_month(split_part(tm, '|', 1)::uuid, split_part(tm, '|', 2)::date);
    END LOOP;
    RETURN done;
END
$$;

-- Public: (re)computes the rollups of every day in [from, to) that has raw
-- rows or is pending, for the current tenant (or, for d5_admin with no
-- tenant set, for every tenant). Idempotent.
CREATE FUNCTION @extschema@.rollup_costs("from" timestamptz, "to" timestamptz)
RETURNS TABLE (tenant_id uuid, day date, rows_rolled_up bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tenant uuid := @extschema@.current_tenant();
    lo date;
    hi date;
    m record;
BEGIN
    IF "from" IS NULL OR "to" IS NULL OR "to" < "from" OR "to" - "from" > interval '3 years' THEN
        RAISE EXCEPTION 'rollup_costs needs from <= to, at most 3 years apart' USING ERRCODE = '22023';
    END IF;
    IF tenant IS NULL AND NOT (pg_has_role(session_user, 'd5_admin', 'USAGE')
                               OR (SELECT rolsuper FROM pg_roles WHERE rolname = session_user)) THEN
        RAISE EXCEPTION 'no tenant set: call d5.set_tenant() first' USING ERRCODE = '42501';
    END IF;
    lo := ("from" AT TIME ZONE 'UTC')::date;
    hi := ("to" AT TIME ZONE 'UTC')::date + CASE WHEN ("to" AT TIME ZONE 'UTC')::time > '00:00' THEN 1 ELSE 0 END;
    RETURN QUERY
    WITH days AS (
        SELECT DISTINCT r.tenant_id AS t, (r.charge_period_start AT TIME ZONE 'UTC')::date AS d
        FROM @extschema@.cost_metrics_raw r
        WHERE (tenant IS NULL OR r.tenant_id = tenant)
          AND r.charge_period_start >= lo::timestamp AT TIME ZONE 'UTC'
          AND r.charge_period_start < hi::timestamp AT TIME ZONE 'UTC'
        UNION
        SELECT p.tenant_id, p.day FROM @extschema@.cost_rollup_pending p
        WHERE (tenant IS NULL OR p.tenant_id = tenant) AND p.day >= lo AND p.day < hi
    )
    SELECT days.t, days.d, @extschema@._rollup_day(days.t, days.d) FROM days ORDER BY 1, 2;
    FOR m IN SELECT DISTINCT l.tenant_id AS t, date_trunc('month', l.d)::date AS mo
             FROM (SELECT x.t AS tenant_id, x.d FROM (
                       SELECT DISTINCT d.tenant_id AS t, d.day AS d FROM @extschema@.cost_metrics_daily d
                       WHERE (tenant IS NULL OR d.tenant_id = tenant) AND d.day >= lo AND d.day < hi) x) l LOOP
        PERFORM @extschema@._rollup_month(m.t, m.mo);
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.rollup_costs(timestamptz, timestamptz) IS
    'Recomputes hourly, daily and monthly rollups for days in [from, to) that have raw rows or are pending.';
