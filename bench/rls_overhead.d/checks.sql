-- Sanity checks, run as bench_rls (psql variable :side = rls) and as
-- bench_explicit (:side = explicit): both sides must see exactly the same rows.
-- Tenant 42 owns resources 41001..42000; resource 41500 is in its account 3.
\set ON_ERROR_STOP on
BEGIN;
SELECT (:'side' = 'rls') AS rls \gset
\if :rls
SELECT d5.set_tenant(md5('t' || 42)::uuid) \gset
\endif
SELECT :'side' AS side,
       (SELECT count(*) FROM d5.resources
         WHERE (:'side' = 'rls' OR tenant_id = md5('t' || 42)::uuid)) AS tenant_rows,
       (SELECT count(*) FROM d5.resources
         WHERE (:'side' = 'rls' OR tenant_id = md5('t' || 42)::uuid)
           AND account_id = md5('a' || 42 || '.' || 3)::uuid) AS account_rows,
       (SELECT count(*) FROM d5.resources
         WHERE (:'side' = 'rls' OR tenant_id = md5('t' || 42)::uuid)
           AND id = md5('r' || 41500)::uuid) AS own_resource,
       (SELECT count(*) FROM d5.resources
         WHERE (:'side' = 'rls' OR tenant_id = md5('t' || 42)::uuid)
           AND id = md5('r' || 500)::uuid) AS other_tenants_resource;
COMMIT;
