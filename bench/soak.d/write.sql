-- Entity writes (each audited): a new resource, and a policy insert-or-toggle.
-- (':' is spelled apart because pgbench would read :instance as a variable)
\set t random(1, :tenants)
\set p random(1, 50)
BEGIN;
SELECT d5.set_tenant(id) FROM public.soak_tenants WHERE n = :t;
SELECT d5.set_actor('soak-' || :client_id);
INSERT INTO d5.resources (account_id, resource_type, provider_resource_id, region, name, tags)
SELECT account, 'ec2' || ':' || 'instance', 'i-' || gen_random_uuid(), 'eu-west-1', 'soak', '{"env": "prod"}'
  FROM public.soak_tenants WHERE n = :t;
INSERT INTO d5.policies (name, type, thresholds)
VALUES ('policy ' || :p, 'budget', '{"amount": 100, "currency": "USD", "period": "monthly"}')
ON CONFLICT (tenant_id, name) DO UPDATE SET enabled = NOT d5.policies.enabled;
COMMIT;
