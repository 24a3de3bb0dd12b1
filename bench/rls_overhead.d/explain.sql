-- The plans pgbench -M prepared ends up using (generic plans), for both sides.
-- The RLS side must show tenant_id = d5.current_tenant() as an Index Cond
-- (not a Filter) on the same index, touching the same number of buffers.
\set ON_ERROR_STOP on
\pset footer off
BEGIN;
SET LOCAL plan_cache_mode = force_generic_plan;
SELECT (:'side' = 'rls') AS rls \gset
\if :rls
SELECT d5.set_tenant(md5('t' || 42)::uuid) \gset
PREPARE point(int) AS
  SELECT id, account_id, resource_type, provider_resource_id, region, name, tags FROM d5.resources
   WHERE id = md5('r' || $1)::uuid;
PREPARE list(int, int) AS
  SELECT id, resource_type, provider_resource_id, region, name, tags FROM d5.resources
   WHERE account_id = md5('a' || $1 || '.' || $2)::uuid ORDER BY provider_resource_id;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE point(41500);
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE list(42, 3);
\else
PREPARE point(uuid, int) AS
  SELECT id, account_id, resource_type, provider_resource_id, region, name, tags FROM d5.resources
   WHERE tenant_id = $1 AND id = md5('r' || $2)::uuid;
PREPARE list(uuid, int, int) AS
  SELECT id, resource_type, provider_resource_id, region, name, tags FROM d5.resources
   WHERE tenant_id = $1 AND account_id = md5('a' || $2 || '.' || $3)::uuid ORDER BY provider_resource_id;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE point(md5('t' || 42)::uuid, 41500);
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE list(md5('t' || 42)::uuid, 42, 3);
\endif
COMMIT;
