-- 1 if the what-if rewrite returns exactly the rows of the originals for the
-- tenant (psql variable tenant), else 0. As the application login.
\set ON_ERROR_STOP on
BEGIN;
SELECT d5.set_tenant(:'tenant') \gset
SELECT CASE WHEN
  (SELECT count(*) FROM (SELECT * FROM d5.daily_costs(current_date - 30, current_date)
                         EXCEPT ALL SELECT * FROM bench.daily_costs_v2(current_date - 30, current_date)) a) = 0
  AND (SELECT count(*) FROM (SELECT * FROM bench.daily_costs_v2(current_date - 30, current_date)
                             EXCEPT ALL SELECT * FROM d5.daily_costs(current_date - 30, current_date)) a) = 0
  AND (SELECT count(*) FROM (SELECT * FROM d5.monthly_costs(current_date - 365, current_date)
                             EXCEPT ALL SELECT * FROM bench.monthly_costs_v2(current_date - 365, current_date)) a) = 0
  AND (SELECT count(*) FROM (SELECT * FROM bench.monthly_costs_v2(current_date - 365, current_date)
                             EXCEPT ALL SELECT * FROM d5.monthly_costs(current_date - 365, current_date)) a) = 0
  AND (SELECT count(*) FROM d5.daily_costs(current_date - 30, current_date)) > 0
  THEN 1 ELSE 0 END;
COMMIT;
