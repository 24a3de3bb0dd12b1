-- The dated partitions the benchmark's data needs, made up front by the
-- superuser the way maintenance premakes them (so the parallel loads never
-- create one — see the report on concurrent partition creation):
--   raw and hourly: one per day of the raw window and today;
--   daily: one per month back to current_date - 730; monthly: one per year.
-- Days are UTC days (the runner sets PGTZ=UTC).
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SELECT count(d5._ensure_partition(p, d::timestamp AT TIME ZONE 'UTC')) AS raw_hourly
  FROM unnest(ARRAY['d5.cost_metrics_raw', 'd5.cost_metrics_hourly']::regclass[]) p,
       generate_series(current_date - 7, current_date + 1, interval '1 day') d;
SELECT count(d5._ensure_partition('d5.cost_metrics_daily', d::timestamp AT TIME ZONE 'UTC')) AS daily
  FROM generate_series(date_trunc('month', current_date - 730), current_date + 1, interval '1 month') d;
SELECT count(d5._ensure_partition('d5.cost_metrics_monthly', d::timestamp AT TIME ZONE 'UTC')) AS monthly
  FROM generate_series(date_trunc('year', current_date - 730), current_date + 1, interval '1 year') d;
