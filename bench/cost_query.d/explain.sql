-- EXPLAIN ANALYZE of both queries for one tenant, as the application login.
-- psql variable: tenant.
\set ON_ERROR_STOP on
BEGIN;
SELECT d5.set_tenant(:'tenant') \gset
\echo '--- daily_costs(current_date - 30, current_date)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM d5.daily_costs(current_date - 30, current_date);
\echo '--- monthly_costs(current_date - 365, current_date)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM d5.monthly_costs(current_date - 365, current_date);
SELECT count(*) AS daily_rows FROM d5.daily_costs(current_date - 30, current_date);
SELECT count(*) AS monthly_rows FROM d5.monthly_costs(current_date - 365, current_date);
COMMIT;
