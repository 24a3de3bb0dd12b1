-- Server-side cost per audited row, without round trips or commits: one
-- multi-row UPDATE and one multi-row INSERT (:rows rows each, one tenant) as
-- the application login, under EXPLAIN ANALYZE (which reports each
-- trigger's total time and calls), then rolled back. Kept small because the
-- audit trigger's cost per row grows with the number of rows one
-- transaction writes to one chain (see scaling.sql).
\set ON_ERROR_STOP on
BEGIN;
SELECT d5.set_tenant(md5('t1')::uuid) \gset
-- Records appended as rows change, so that the trigger's time includes the
-- append (kept for the commit, they would be appended after EXPLAIN's
-- timing, at a COMMIT that never comes).
SET LOCAL d5.audit_pending_limit = 0;
-- warm the session's plan caches (the trigger's SPI plans, PL/pgSQL) first
UPDATE d5.resources SET name = name WHERE id = md5('r1')::uuid;
INSERT INTO d5.resources (account_id, resource_type, provider_resource_id, name)
VALUES (md5('a1')::uuid, 'ec2:instance', 'i-ss-warm', 'warm-up');
EXPLAIN (ANALYZE, COSTS OFF)
UPDATE d5.resources SET name = name || '.'
 WHERE id IN (SELECT md5('r' || n)::uuid FROM generate_series(1, :rows) n);
EXPLAIN (ANALYZE, COSTS OFF)
INSERT INTO d5.resources (account_id, resource_type, provider_resource_id, region, name, tags)
SELECT md5('a1')::uuid, 'ec2:instance', 'i-ss-' || g, 'eu-west-1', 'bench insert', '{"env": "prod", "team": "team-7"}'
  FROM generate_series(1, :rows) g;
ROLLBACK;
