-- One measured d5.ingest_focus batch, as the application login, in its own
-- connection (so the backend's peak memory is this batch's). The file is
-- read into a psql variable first (not timed); the timed statement sends it
-- as a string literal, the way a client passes the CSV text.
-- psql variables: tenant, account, mark (directory for the markers the
-- runner's memory/CPU sampler waits on). Environment: BENCH_FILE.
\set ON_ERROR_STOP on
\set content `cat "$BENCH_FILE"`
\set pidfile :mark '/pid'
\set donefile :mark '/stmt_done'
SELECT pg_backend_pid() AS pid \gset
\o :pidfile
\qecho :pid
\o /dev/null
SELECT pg_sleep(0.3);                 -- the sampler reads the baseline
\o
BEGIN;
SELECT d5.set_tenant(:'tenant') \gset
\timing on
SELECT 'RESULT', * FROM d5.ingest_focus(:'account', :'content');
\timing off
\o :donefile
\qecho done
\o /dev/null
SELECT pg_sleep(0.3);                 -- the sampler reads the peak
\o
\timing on
COMMIT;
\timing off
