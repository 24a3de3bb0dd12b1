-- A small FOCUS ingest (20 rows) into one of 8 billing accounts of the tenant.
\set t random(1, :tenants)
\set ba random(1, 8)
BEGIN;
SELECT d5.set_tenant(id) FROM public.soak_tenants WHERE n = :t;
SELECT inserted, rejected, replaced FROM d5.ingest_focus((SELECT account FROM public.soak_tenants WHERE n = :t),
                                                          public.soak_csv(:ba, 20));
COMMIT;
