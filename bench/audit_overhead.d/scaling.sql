-- One INSERT of :rows rows into one tenant (one chain) in one transaction,
-- as the application login, under EXPLAIN ANALYZE; rolled back.
\set ON_ERROR_STOP on
BEGIN;
SELECT d5.set_tenant(md5('t2')::uuid) \gset
-- Records appended as rows change, so that the trigger's time includes the
-- append (kept for the commit, they would be appended after EXPLAIN's
-- timing, at a COMMIT that never comes).
SET LOCAL d5.audit_pending_limit = 0;
EXPLAIN (ANALYZE, COSTS OFF)
INSERT INTO d5.resources (account_id, resource_type, provider_resource_id, region, name, tags)
SELECT md5('a2')::uuid, 'ec2:instance', 'i-sc-' || g, 'eu-west-1', 'bench insert', '{"env": "prod", "team": "team-7"}'
  FROM generate_series(1, :rows) g;
ROLLBACK;
