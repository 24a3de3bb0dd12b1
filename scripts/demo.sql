-- The d5_storage demo: two tenants, what each one sees, and the roads a
-- forged tenant context does not get through. Run by scripts/demo.sh.
\pset footer off
\set QUIET on
CREATE EXTENSION d5_storage;
CREATE ROLE demo_admin LOGIN IN ROLE d5_admin;
CREATE ROLE demo_app LOGIN IN ROLE d5_app;
CREATE ROLE demo_auditor LOGIN IN ROLE d5_auditor;

\echo '== 1. A d5_admin provisions two tenants'
\c - demo_admin
SELECT d5.create_tenant('Acme Corp', 'enterprise') AS acme \gset
SELECT d5.create_tenant('Globex', 'pro') AS globex \gset
SELECT d5.mint_tenant_token(:'globex', interval '15 minutes') AS globex_token \gset

\echo '== 2. The application (login demo_app, granted d5_app) writes as each tenant'
\c - demo_app
BEGIN;
SELECT d5.set_tenant(:'acme') \g /dev/null
SELECT d5.set_actor('alice@acme.example') \g /dev/null
INSERT INTO d5.users (email, role) VALUES ('alice@acme.example', 'owner'), ('bob@acme.example', 'member');
INSERT INTO d5.cloud_accounts (provider, external_account_id, name, credentials_ref)
VALUES ('aws', '111122223333', 'acme-prod', 'arn:aws:secretsmanager:us-east-1:111122223333:secret:d5/reader');
INSERT INTO d5.resources (account_id, resource_type, provider_resource_id, region, tags)
SELECT id, 'ec2:instance', 'i-0acme' || g, 'us-east-1', jsonb_build_object('team', 'web', 'env', 'prod')
FROM d5.cloud_accounts, generate_series(1, 3) g;
COMMIT;

BEGIN;
-- the token form:
SELECT d5.set_tenant(:'globex', :'globex_token') \g /dev/null
INSERT INTO d5.users (email, role) VALUES ('hank@globex.example', 'owner');
INSERT INTO d5.cloud_accounts (provider, external_account_id, name, credentials_ref)
VALUES ('gcp', 'globex-billing', 'globex-main', 'projects/globex/secrets/billing-reader/versions/1');
INSERT INTO d5.resources (account_id, resource_type, provider_resource_id, region)
SELECT id, 'compute.instance', 'vm-globex-1', 'europe-west1' FROM d5.cloud_accounts;
COMMIT;

\echo '== 3. Each tenant sees only its own rows'
BEGIN;
SELECT d5.set_tenant(:'acme') \g /dev/null
SELECT (SELECT name FROM d5.tenants) AS tenant, count(*) AS resources,
       string_agg(provider_resource_id, ', ' ORDER BY provider_resource_id) AS ids
FROM d5.resources;
COMMIT;
BEGIN;
SELECT d5.set_tenant(:'globex') \g /dev/null
SELECT (SELECT name FROM d5.tenants) AS tenant, count(*) AS resources,
       string_agg(provider_resource_id, ', ' ORDER BY provider_resource_id) AS ids
FROM d5.resources;
COMMIT;

\echo '== 4. No tenant set: every table reads as empty (fail closed)'
SELECT (SELECT count(*) FROM d5.resources) AS resources, (SELECT count(*) FROM d5.users) AS users,
       d5.current_tenant() AS current_tenant;

\echo '== 5. Forged contexts are refused'
SELECT set_config('demo.acme', :'acme', false), set_config('demo.globex_token', :'globex_token', false) \g /dev/null
DO $$
DECLARE
    attempt text;
BEGIN
    FOREACH attempt IN ARRAY ARRAY[
        'SET d5.tenant = ''00000000-0000-0000-0000-000000000001''',
        'SELECT set_config(''d5.tenant'', ''00000000-0000-0000-0000-000000000001'', true)',
        'SELECT d5.set_tenant(''00000000-0000-0000-0000-000000000001'')',
        'SELECT d5.set_tenant(''' || current_setting('demo.acme') || ''', ''d5t1.forged.0.AAAA'')',
        'SELECT d5.set_tenant(''' || current_setting('demo.acme') || ''', ''' || current_setting('demo.globex_token') || ''')',
        'TRUNCATE d5.resources',
        'ALTER TABLE d5.resources DISABLE ROW LEVEL SECURITY'
    ] LOOP
        BEGIN
            EXECUTE attempt;
            RAISE NOTICE 'NOT REFUSED: %', attempt;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'refused (SQLSTATE %): %  <-  %', SQLSTATE, SQLERRM, left(attempt, 70);
        END;
    END LOOP;
END
$$;
\echo '== 6. Context is transaction-scoped: after COMMIT a pooled connection carries nothing'
BEGIN;
SELECT d5.set_tenant(:'acme') \g /dev/null
SELECT count(*) AS acme_resources_inside FROM d5.resources;
COMMIT;
SELECT count(*) AS resources_after_commit FROM d5.resources;

\echo '== 7. Cost data: Acme loads a FOCUS export (one row is bad), then queries it'
\set focus 'BillingAccountId,BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,BilledCost,EffectiveCost,ListCost,ContractedCost,BillingCurrency,ChargeCategory,ServiceName,ProviderName,RegionId,Tags,x_UsageType\n111122223333,2026-11-01,2026-12-01,2026-11-27T10:00:00Z,2026-11-27T11:00:00Z,0.41600000000,0.33280000000,0.41600000000,0.41600000000,USD,Usage,Amazon Elastic Compute Cloud,AWS,us-east-1,"{""team"":""web""}",BoxUsage\n111122223333,2026-11-01,2026-12-01,2026-11-27 11:00:00,2026-11-27 12:00:00,0.41600000000,0.33280000000,0.41600000000,0.41600000000,usd,usage,Amazon Elastic Compute Cloud,AWS,us-east-1,"{""team"":""web""}",BoxUsage\n111122223333,2026-11-01,2026-12-01,2026-11-28T00:00:00Z,2026-11-29T00:00:00Z,1.23456789012,1.23456789012,1.50000000000,1.23456789012,USD,Usage,Amazon Simple Storage Service,AWS,us-east-1,{},TimedStorage\n111122223333,2026-11-01,2026-12-01,2026-11-28T00:00:00Z,2026-11-29T00:00:00Z,"12,5",1,1,1,USD,Usage,Amazon Simple Storage Service,AWS,us-east-1,,TimedStorage\n'
SELECT replace(:'focus', '\n', E'\n') AS focus \gset
BEGIN;
SELECT d5.set_tenant(:'acme') \g /dev/null
SELECT inserted, rejected, replaced FROM d5.ingest_focus((SELECT id FROM d5.cloud_accounts LIMIT 1), :'focus');
SELECT line_number, column_name, reason FROM d5.ingest_rejects ORDER BY line_number;
SELECT * FROM d5.daily_costs('2026-11-01', '2026-11-30');
SELECT day, rows_rolled_up FROM d5.rollup_costs('2026-11-01', '2026-12-01');
SELECT * FROM d5.cost_by_service('2026-11-01', '2026-11-30');
COMMIT;
BEGIN;
SELECT d5.set_tenant(:'globex') \g /dev/null
SELECT count(*) AS globex_sees_acme_costs FROM d5.cost_metrics_raw;
COMMIT;

\echo '== 8. Audit: every change above is in a hash chain per tenant; an auditor verifies them'
\c - demo_auditor
SELECT t.name AS tenant, a.seq, a.operation, a.table_name, a.db_role, a.actor
FROM d5.audit_log a LEFT JOIN (VALUES (:'acme'::uuid, 'Acme Corp'), (:'globex'::uuid, 'Globex')) t(id, name) ON t.id = a.tenant_id
ORDER BY a.tenant_id, a.seq LIMIT 8;
SELECT * FROM d5.verify_audit_chain();
SELECT d5.audit_digest() AS digest \gset
SELECT * FROM d5.verify_audit_digest(:'digest');
