-- Tenant reads: half with the token form of set_tenant.
\set t random(1, :tenants)
\set tok random(0, 1)
BEGIN;
SELECT d5.set_tenant(id, token) FROM public.soak_tenants WHERE n = :t AND :tok = 1;
SELECT d5.set_tenant(id) FROM public.soak_tenants WHERE n = :t AND :tok = 0;
SELECT count(*) FROM d5.resources;
SELECT id, name, enabled FROM d5.policies ORDER BY name LIMIT 20;
SELECT name, plan, status FROM d5.tenants;
COMMIT;
