-- One file through d5.ingest_focus as the application login (load phase).
-- psql variables: tenant, account. Environment: BENCH_FILE.
\set ON_ERROR_STOP on
\set QUIET on
SET client_min_messages = warning;
\set content `cat "$BENCH_FILE"`
BEGIN;
SELECT d5.set_tenant(:'tenant') \gset
SELECT inserted, rejected FROM d5.ingest_focus(:'account', :'content') \gset
COMMIT;
\echo :inserted :rejected
