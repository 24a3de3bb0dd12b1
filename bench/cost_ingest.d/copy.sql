-- One measured baseline batch: psql \copy of the same CSV file into
-- bench.plain (see plain.sql), as the application login, in its own
-- connection, with the same markers as ingest.sql.
-- psql variables: file, mark.
\set ON_ERROR_STOP on
\set pidfile :mark '/pid'
\set donefile :mark '/stmt_done'
\set copy_cmd '\\copy bench.plain FROM ' :'file' ' WITH (FORMAT csv, HEADER true)'
SELECT pg_backend_pid() AS pid \gset
\o :pidfile
\qecho :pid
\o /dev/null
SELECT pg_sleep(0.3);
\o
BEGIN;
\timing on
:copy_cmd
\timing off
\o :donefile
\qecho done
\o /dev/null
SELECT pg_sleep(0.3);
\o
\timing on
COMMIT;
\timing off
