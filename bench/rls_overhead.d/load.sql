-- 1,000 tenants, 4 cloud accounts each, 250 resources per account
-- (1,000,000 resources), with deterministic ids so that pgbench scripts can
-- name any row from an integer:
--   tenant   t ∈ 1..1000      id = md5('t' || t)::uuid
--   account  (t, k), k ∈ 1..4 id = md5('a' || t || '.' || k)::uuid
--   resource n ∈ 1..1000000   id = md5('r' || n)::uuid,
--            tenant t = (n - 1) / 1000 + 1, account k = (n - 1) % 1000 / 250 + 1
-- Loaded as superuser (bypasses RLS); the extension's triggers run, except
-- the audit trigger on d5.resources (when the audit module is installed): it
-- hash-chains every written row into d5.audit_log, which would make this load
-- ~2.5 min instead of ~30 s, so it is disabled for the bulk insert only and
-- enabled again right after. The benchmarked queries only read.
\set ON_ERROR_STOP on
CREATE FUNCTION pg_temp.set_audit_on_resources(enable boolean) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    trg name;
BEGIN
    FOR trg IN SELECT t.tgname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
                WHERE t.tgrelid = 'd5.resources'::regclass AND p.proname = '_audit_row' LOOP
        EXECUTE format('ALTER TABLE d5.resources %s TRIGGER %I', CASE WHEN enable THEN 'ENABLE' ELSE 'DISABLE' END, trg);
    END LOOP;
END
$$;
\timing on
INSERT INTO d5.tenants (id, name, plan)
SELECT md5('t' || t)::uuid, 'tenant ' || t, (ARRAY['free', 'starter', 'pro', 'enterprise'])[t % 4 + 1]
  FROM generate_series(1, 1000) AS t;

INSERT INTO d5.cloud_accounts (tenant_id, id, provider, external_account_id, name, credentials_ref)
SELECT md5('t' || t)::uuid, md5('a' || t || '.' || k)::uuid, 'aws',
       lpad((t * 10 + k)::text, 12, '0'), 'account ' || k,
       'vault://secret/data/finops/t' || t || '/a' || k
  FROM generate_series(1, 1000) AS t, generate_series(1, 4) AS k;

SELECT pg_temp.set_audit_on_resources(false) \gset
INSERT INTO d5.resources (tenant_id, id, account_id, resource_type, provider_resource_id, region, name, tags)
SELECT md5('t' || t)::uuid, md5('r' || n)::uuid, md5('a' || t || '.' || k)::uuid,
       (ARRAY['ec2:instance', 'ebs:volume', 's3:bucket', 'rds:db', 'lambda:function'])[n % 5 + 1],
       'res-' || lpad(to_hex(n), 17, '0'),
       (ARRAY['us-east-1', 'eu-west-1', 'ap-southeast-2'])[n % 3 + 1],
       'resource ' || n,
       jsonb_build_object('env', (ARRAY['prod', 'staging', 'dev'])[n % 3 + 1], 'team', 'team-' || (n % 17))
  FROM generate_series(1, 1000000) AS n,
       LATERAL (SELECT (n - 1) / 1000 + 1 AS t, (n - 1) % 1000 / 250 + 1 AS k) AS m;
\timing off
SELECT pg_temp.set_audit_on_resources(true) \gset
VACUUM (ANALYZE) d5.tenants, d5.cloud_accounts, d5.resources;
CHECKPOINT;
