-- 100 tenants, one cloud account each, RES_PER_TENANT resources per tenant,
-- with ids computable from an integer (so the pgbench scripts can name rows):
--   tenant   t ∈ 1..100   id = md5('t' || t)::uuid
--   account  of tenant t  id = md5('a' || t)::uuid
--   resource n ∈ 1..100 × :res   id = md5('r' || n)::uuid, tenant t = (n - 1) / :res + 1
-- Loaded by the superuser (bypasses RLS); the audit trigger is enabled, so
-- the pre-loaded rows are audited too (their records start every chain).
-- psql variable: res (resources per tenant).
\set ON_ERROR_STOP on
\timing on
INSERT INTO d5.tenants (id, name, plan)
SELECT md5('t' || t)::uuid, 'tenant ' || t, (ARRAY['free', 'starter', 'pro', 'enterprise'])[t % 4 + 1]
  FROM generate_series(1, 100) AS t;

INSERT INTO d5.cloud_accounts (tenant_id, id, provider, external_account_id, name, credentials_ref)
SELECT md5('t' || t)::uuid, md5('a' || t)::uuid, 'aws', lpad(t::text, 12, '0'), 'account ' || t,
       'vault://secret/data/finops/t' || t
  FROM generate_series(1, 100) AS t;

INSERT INTO d5.resources (tenant_id, id, account_id, resource_type, provider_resource_id, region, name, tags)
SELECT md5('t' || t)::uuid, md5('r' || n)::uuid, md5('a' || t)::uuid,
       (ARRAY['ec2:instance', 'ebs:volume', 's3:bucket', 'rds:db', 'lambda:function'])[n % 5 + 1],
       'res-' || lpad(to_hex(n), 17, '0'),
       (ARRAY['us-east-1', 'eu-west-1', 'ap-southeast-2'])[n % 3 + 1],
       'resource ' || n,
       jsonb_build_object('env', (ARRAY['prod', 'staging', 'dev'])[n % 3 + 1], 'team', 'team-' || (n % 17))
  FROM generate_series(1, 100 * :res) AS n,
       LATERAL (SELECT (n - 1) / :res + 1 AS t) AS m;
\timing off
VACUUM (ANALYZE) d5.tenants, d5.cloud_accounts, d5.resources, d5.audit_log, d5.audit_chain_heads;
