-- Tenancy at the SQL level: defaults, stamps, errors, fail-closed reads.
\set VERBOSITY terse
CREATE EXTENSION IF NOT EXISTS d5_storage;
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_app;
CREATE ROLE regress_app LOGIN IN ROLE d5_app;
SELECT d5.create_tenant('regress one', 'pro') AS t1 \gset
SELECT d5.create_tenant('regress two', 'free') AS t2 \gset
SELECT d5.create_tenant('bad plan', 'gold');
SELECT d5.create_tenant('  ', 'pro');

SET ROLE regress_app;
-- No tenant: empty and refused.
SELECT count(*) FROM d5.users;
INSERT INTO d5.users (email) VALUES ('a@b.c');

BEGIN;
SELECT d5.set_tenant(:'t1');
SELECT d5.current_tenant() = :'t1' AS is_t1;
INSERT INTO d5.users (email, role) VALUES ('Ops@One.example', 'admin');
-- Same email in another case: unique per tenant, case-insensitive.
INSERT INTO d5.users (email) VALUES ('ops@one.example');
ROLLBACK;

BEGIN;
SELECT d5.set_tenant(:'t1');
INSERT INTO d5.users (email, role) VALUES ('ops@one.example', 'admin');
INSERT INTO d5.users (email, role) VALUES ('x@one.example', 'superhero');
ROLLBACK;

BEGIN;
SELECT d5.set_tenant(:'t1');
INSERT INTO d5.users (email, role, created_at) VALUES ('ops@one.example', 'admin', '2001-01-01');
-- created_at is the database's, not the caller's.
SELECT email, role, created_at > now() - interval '1 minute' AS stamped_now,
       tenant_id = d5.current_tenant() AS own_tenant
FROM d5.users ORDER BY email;
INSERT INTO d5.cloud_accounts (provider, external_account_id, credentials_ref)
VALUES ('aws', '123456789012', 'AKIAIOSFODNN7EXAMPLE');
ROLLBACK;

BEGIN;
SELECT d5.set_tenant(:'t1');
INSERT INTO d5.cloud_accounts (provider, external_account_id, credentials_ref)
VALUES ('aws', '123456789012', 'arn:aws:secretsmanager:us-east-1:123456789012:secret:reader');
COMMIT;

BEGIN;
SELECT d5.set_tenant(:'t1');
INSERT INTO d5.cloud_accounts (provider, external_account_id) VALUES ('digitalocean', 'x');
ROLLBACK;

BEGIN;
SELECT d5.set_tenant(:'t2');
SELECT count(*) AS t2_sees_accounts FROM d5.cloud_accounts;
SELECT name, plan, status FROM d5.tenants ORDER BY name;
COMMIT;
SELECT d5.set_tenant(NULL);
RESET ROLE;
SELECT count(*) AS t1_accounts FROM d5.cloud_accounts WHERE tenant_id = :'t1';
DROP ROLE regress_app;
