-- One measured d5.ingest_focus batch with the CSV text already in the server,
-- as the application login in its own connection: the file is loaded into a
-- one-row temp table first (not timed; stored uncompressed), and the timed
-- statement passes it as a sub-select, so — like a bind parameter — no SQL
-- string literal of the text is shipped and lexed. The text is byte for byte
-- what ingest.sql sends (psql's `cat` also drops the final newline).
-- psql variables: tenant, account, file, mark. Environment: BENCH_FILE.
\set ON_ERROR_STOP on
\set pidfile :mark '/pid'
\set donefile :mark '/stmt_done'
\set QUIET on
CREATE TEMP TABLE src_lines (n bigserial, l text);
-- CSV mode with a quote and delimiter that never occur: one field per line, verbatim.
\set copy_cmd '\\copy src_lines (l) FROM ' :'file' ' WITH (FORMAT csv, DELIMITER E''\\x02'', QUOTE E''\\x01'')'
:copy_cmd
CREATE TEMP TABLE src (t text);
ALTER TABLE src ALTER COLUMN t SET STORAGE EXTERNAL;
INSERT INTO src SELECT string_agg(coalesce(l, ''), E'\n' ORDER BY n) FROM src_lines;
DROP TABLE src_lines;
SELECT 'BYTES', octet_length(t) FROM src;
\set QUIET off
SELECT pg_backend_pid() AS pid \gset
\o :pidfile
\qecho :pid
\o /dev/null
SELECT pg_sleep(0.3);                 -- the sampler reads the baseline, resets VmHWM
\o
BEGIN;
SELECT d5.set_tenant(:'tenant') \gset
\timing on
SELECT 'RESULT', * FROM d5.ingest_focus(:'account', (SELECT t FROM src));
\timing off
\o :donefile
\qecho done
\o /dev/null
SELECT pg_sleep(0.3);                 -- the sampler reads the peak
\o
\timing on
COMMIT;
\timing off
