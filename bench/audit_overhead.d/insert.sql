-- (':' is spelled apart because pgbench would read :instance as a variable)
\set t random(1, 100)
BEGIN;
SELECT d5.set_tenant(md5('t' || :t)::uuid);
INSERT INTO d5.resources (account_id, resource_type, provider_resource_id, region, name, tags)
VALUES (md5('a' || :t)::uuid, 'ec2' || ':' || 'instance', 'i-' || gen_random_uuid(), 'eu-west-1', 'bench insert',
        '{"env": "prod", "team": "team-7"}');
COMMIT;
