-- Fresh database, the extension, an auditor login (member of d5_auditor),
-- 100 tenants with one cloud account each, and the loader procedure.
-- Run against "postgres".
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SELECT count(pg_terminate_backend(pid)) AS terminated FROM pg_stat_activity
 WHERE datname = 'd5_audverify' AND pid <> pg_backend_pid() \gset
DROP DATABASE IF EXISTS d5_audverify;
DROP ROLE IF EXISTS bench_verify_auditor;
CREATE DATABASE d5_audverify;
\c d5_audverify
CREATE EXTENSION d5_storage;
CREATE ROLE bench_verify_auditor LOGIN IN ROLE d5_auditor;
-- As partition maintenance would: the current year's audit partition
-- (CREATE EXTENSION makes only the DEFAULT one). Skipped if this version of
-- the extension has no d5._ensure_partition.
SELECT CASE WHEN to_regprocedure('d5._ensure_partition(regclass, timestamptz)') IS NOT NULL
            THEN 'd5._ensure_partition(''d5.audit_log'', now())' END AS ensure \gset
\if :{?ensure}
SELECT :ensure AS made \gset
\endif

--   tenant   t ∈ 1..100    id = md5('t' || t)::uuid, account id = md5('a' || t)::uuid
--   resource n ∈ 1..       id = md5('r' || n)::uuid, tenant t = (n - 1) % 100 + 1
-- (200 audit records: the tenants and the accounts)
INSERT INTO d5.tenants (id, name, plan)
SELECT md5('t' || t)::uuid, 'tenant ' || t, (ARRAY['free', 'starter', 'pro', 'enterprise'])[t % 4 + 1]
  FROM generate_series(1, 100) AS t;
INSERT INTO d5.cloud_accounts (tenant_id, id, provider, external_account_id, name, credentials_ref)
SELECT md5('t' || t)::uuid, md5('a' || t)::uuid, 'aws', lpad(t::text, 12, '0'), 'account ' || t,
       'vault://secret/data/finops/t' || t
  FROM generate_series(1, 100) AS t;

-- Writes audit records the ordinary way, through the d5_audit row trigger:
-- part p (1 or 2) owns tenants 50(p-1)+1 .. 50p, so two loaders never wait
-- for each other's chain locks. First `inserts` INSERTs of resources, then
-- `updates` UPDATEs of them (old and new row in the record), `batch` rows per
-- statement and transaction (about batch/50 records per chain per
-- transaction: the trigger's cost per row grows with that number).
-- Local index j of part p maps to tenant t = 50(p-1) + j % 50 + 1 and
-- resource n = (j / 50) * 100 + t.
CREATE SCHEMA bench;
CREATE PROCEDURE bench.load(p int, inserts int, updates int, batch int)
LANGUAGE plpgsql AS $$
DECLARE
    lo int;
BEGIN
    lo := 0;
    WHILE lo < inserts LOOP
        INSERT INTO d5.resources (tenant_id, id, account_id, resource_type, provider_resource_id, region, name, tags)
        SELECT md5('t' || m.t)::uuid, md5('r' || m.n)::uuid, md5('a' || m.t)::uuid,
               (ARRAY['ec2:instance', 'ebs:volume', 's3:bucket', 'rds:db', 'lambda:function'])[m.n % 5 + 1],
               'res-' || lpad(to_hex(m.n), 17, '0'),
               (ARRAY['us-east-1', 'eu-west-1', 'ap-southeast-2'])[m.n % 3 + 1],
               'resource ' || m.n,
               jsonb_build_object('env', (ARRAY['prod', 'staging', 'dev'])[m.n % 3 + 1],
                                  'team', 'team-' || (m.n % 17), 'cost_center', 'cc-' || (m.n % 41))
          FROM generate_series(lo, least(lo + batch, inserts) - 1) AS j,
               LATERAL (SELECT 50 * (p - 1) + j % 50 + 1 AS t) AS a,
               LATERAL (SELECT (j / 50) * 100 + a.t AS n, a.t) AS m;
        COMMIT;
        lo := lo + batch;
    END LOOP;
    lo := 0;
    WHILE lo < updates LOOP
        UPDATE d5.resources r
           SET name = 'resource ' || m.n || ' v' || m.v,
               tags = r.tags || jsonb_build_object('rev', m.v::text)
          FROM (SELECT md5('t' || a.t)::uuid AS tid, md5('r' || a.n)::uuid AS rid, a.n, j / inserts + 2 AS v
                  FROM generate_series(lo, least(lo + batch, updates) - 1) AS j,
                       LATERAL (SELECT j % inserts AS i) AS l,
                       LATERAL (SELECT 50 * (p - 1) + l.i % 50 + 1 AS t,
                                       (l.i / 50) * 100 + 50 * (p - 1) + l.i % 50 + 1 AS n) AS a) AS m
         WHERE r.tenant_id = m.tid AND r.id = m.rid;
        COMMIT;
        lo := lo + batch;
    END LOOP;
END
$$;
