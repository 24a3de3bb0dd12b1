-- The string-literal part of ingest.sql alone: the same connection setup and
-- the same 45 MB literal, but SELECT length(...) instead of ingest_focus: what
-- shipping and parsing the CSV text as a literal costs (time, CPU, memory).
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
SELECT 'RESULT', length(:'content');
\timing off
\o :donefile
\qecho done
\o /dev/null
SELECT pg_sleep(0.3);                 -- the sampler reads the peak
\o
\timing on
COMMIT;
\timing off
