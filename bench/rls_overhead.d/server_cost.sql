-- Server-side cost per call (no client round trip), run as bench_rls inside
-- one transaction: what d5.set_tenant and d5.current_tenant() cost by
-- themselves. Each figure is the loop time minus the same loop doing only the
-- md5 baseline, divided by the number of calls.
\set ON_ERROR_STOP on
BEGIN;
DO $$
DECLARE
    n      constant int := 20000;
    t0     timestamptz;
    base   float8;
    tset   float8;
    tauth  float8;
    tdyn   float8;
    tcur   float8;
    tnull  float8;
    tmd5   float8;
    tser   float8;
BEGIN
    t0 := clock_timestamp();
    FOR i IN 1..n LOOP PERFORM md5('t' || (i % 1000 + 1))::uuid; END LOOP;
    base := extract(epoch FROM clock_timestamp() - t0);

    t0 := clock_timestamp();
    FOR i IN 1..n LOOP PERFORM d5.set_tenant(md5('t' || (i % 1000 + 1))::uuid); END LOOP;
    tset := extract(epoch FROM clock_timestamp() - t0);

    t0 := clock_timestamp();
    FOR i IN 1..n LOOP PERFORM d5._authorize_tenant(md5('t' || (i % 1000 + 1))::uuid, NULL); END LOOP;
    tauth := extract(epoch FROM clock_timestamp() - t0);

    -- The kind of lookup _authorize_tenant runs through SPI: parsed and
    -- planned on every call (dynamic SQL), here as bench_rls under RLS.
    PERFORM d5.set_tenant(md5('t' || 1)::uuid);
    t0 := clock_timestamp();
    FOR i IN 1..n LOOP
        EXECUTE 'SELECT (SELECT status FROM d5.tenants WHERE id = $1)' USING md5('t' || (i % 1000 + 1))::uuid;
    END LOOP;
    tdyn := extract(epoch FROM clock_timestamp() - t0);

    -- current_tenant() per row of a 1,000,000-row series, against a constant.
    t0 := clock_timestamp();
    PERFORM count(d5.current_tenant()) FROM generate_series(1, 1000000);
    tcur := extract(epoch FROM clock_timestamp() - t0);
    t0 := clock_timestamp();
    PERFORM count('00000000-0000-0000-0000-000000000000'::uuid) FROM generate_series(1, 1000000);
    tnull := extract(epoch FROM clock_timestamp() - t0);

    -- The benchmark's id expression, per row of a 1,000,000-row series.
    t0 := clock_timestamp();
    PERFORM count(md5('t' || i)::uuid) FROM generate_series(1, 1000000) AS i;
    tmd5 := extract(epoch FROM clock_timestamp() - t0);
    t0 := clock_timestamp();
    PERFORM count(i) FROM generate_series(1, 1000000) AS i;
    tser := extract(epoch FROM clock_timestamp() - t0);

    RAISE NOTICE 'md5(''t'' || i)::uuid (the scripts'' id expression): % us/call', round((tmd5 - tser)::numeric, 3);
    RAISE NOTICE 'd5.set_tenant(uuid):            % us/call', round(((tset - base) / n * 1e6)::numeric, 2);
    RAISE NOTICE '  of which d5._authorize_tenant: % us/call (called directly)', round(((tauth - base) / n * 1e6)::numeric, 2);
    RAISE NOTICE '  for scale, an unprepared status lookup (EXECUTE): % us/call', round(((tdyn - base) / n * 1e6)::numeric, 2);
    RAISE NOTICE 'd5.current_tenant():            % us/call', round((tcur - tnull)::numeric, 3);
END
$$;
COMMIT;
