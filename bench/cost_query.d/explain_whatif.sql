-- EXPLAIN ANALYZE of the what-if rewrite (whatif_rewrite.sql) for one tenant,
-- as the application login. psql variable: tenant.
\set ON_ERROR_STOP on
BEGIN;
SELECT d5.set_tenant(:'tenant') \gset
\echo '--- daily_costs_v2(current_date - 30, current_date)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM bench.daily_costs_v2(current_date - 30, current_date);
\echo '--- monthly_costs_v2(current_date - 365, current_date)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM bench.monthly_costs_v2(current_date - 365, current_date);
COMMIT;
