-- Where the application backends spend a pgbench run: samples
-- pg_stat_activity (the bench login's backends) every 10 ms, :samples times,
-- and prints the average number of backends in each state, as
--   client wal lock cpu other
-- client: waiting for pgbench to send the next statement (ClientRead, or idle
--         between messages); wal: writing or flushing WAL at commit (WALWrite,
--         WALSync, WALInsert); lock: waiting for a tenant's chain lock (the
--         audit's, in the advisory lock space; nothing else in the bench takes
--         advisory locks); cpu: running a statement, no wait event (on a CPU
--         or waiting for one); other: everything else (relation extension
--         locks, buffer locks, I/O).
-- Run as a superuser against the bench database while pgbench runs.
\set ON_ERROR_STOP on
SELECT set_config('bench.samples', :'samples', false) \gset
CREATE TEMP TABLE wait_sample (state text);
DO $$
BEGIN
    FOR i IN 1 .. current_setting('bench.samples')::int LOOP
        INSERT INTO wait_sample
        SELECT CASE
                   WHEN wait_event_type = 'Client' OR (wait_event IS NULL AND state LIKE 'idle%') THEN 'client'
                   WHEN wait_event IN ('WALWrite', 'WALSync', 'WALInsert') THEN 'wal'
                   WHEN wait_event_type = 'Lock' AND wait_event = 'advisory' THEN 'lock'
                   WHEN wait_event IS NULL AND state = 'active' THEN 'cpu'
                   ELSE 'other'
               END
          FROM pg_stat_activity
         WHERE usename = 'bench_audit_app';
        PERFORM pg_stat_clear_snapshot();
        PERFORM pg_sleep(0.01);
    END LOOP;
END
$$;
SELECT round(count(*) FILTER (WHERE state = 'client') / n, 2) AS client,
       round(count(*) FILTER (WHERE state = 'wal') / n, 2) AS wal,
       round(count(*) FILTER (WHERE state = 'lock') / n, 2) AS lock,
       round(count(*) FILTER (WHERE state = 'cpu') / n, 2) AS cpu,
       round(count(*) FILTER (WHERE state = 'other') / n, 2) AS other
  FROM wait_sample, (SELECT current_setting('bench.samples')::numeric AS n) s
 GROUP BY n;
