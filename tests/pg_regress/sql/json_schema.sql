-- JSON Schema at the SQL level: registry, on-demand validation, write-time
-- checks with their DETAIL, bindings and per-tenant policy, limits.
\set VERBOSITY terse
CREATE EXTENSION IF NOT EXISTS d5_storage;
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_js_app;
DROP ROLE IF EXISTS regress_js_admin;
CREATE ROLE regress_js_app LOGIN IN ROLE d5_app;
CREATE ROLE regress_js_admin LOGIN IN ROLE d5_admin;

-- SQLSTATE, message and DETAIL of a statement, or 'ok'.
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    state text; msg text; det text;
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
    RETURN state || ': ' || msg || coalesce(E'\n' || nullif(det, ''), '');
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.try(text) TO PUBLIC;

-- Shipped: three schemas (version 1), bound out of the box.
SELECT name, version, shipped, schema->>'$id' AS id FROM d5.json_schemas ORDER BY name, version;
SELECT table_name, column_name, tenant_id, schema_name, shipped
FROM d5.json_schema_bindings ORDER BY table_name::text, column_name;

-- On demand.
SELECT d5.validate_json('resource_tags', '{"env": "prod", "cost-center": "FI-1234"}') AS valid;
SELECT d5.validate_json('resource_tags', '{"env": 1}') AS valid;
SELECT d5.validate_json('resource_tags', NULL) AS null_in_null_out;
SELECT * FROM d5.json_errors('resource_tags',
    ('{"env": 1, "aws:owner": "x", "bad key!": "v", "nested": {"a": "b"}, "long": "' || repeat('x', 300) || '"}')::jsonb)
ORDER BY path, message;
SELECT * FROM d5.json_errors('recommendation_impact',
    '{"estimated_monthly_savings": -5, "currency": "usd", "confidence": 1.5, "typo": 1}') ORDER BY path, message;
SELECT * FROM d5.json_errors('policy_thresholds',
    '{"amount": 0, "currency": "EUR", "period": "hourly", "alert_percentages": [50, 50, 2000]}') ORDER BY path, message;
SELECT * FROM d5.json_errors('policy_thresholds', '[]') ORDER BY path, message;
SELECT d5.validate_json('no_such_schema', '{}');
SELECT * FROM d5.json_errors('no_such_schema', '{}') ORDER BY path;

-- Registry: versions, idempotence, refusals.
SET ROLE regress_js_admin;
SELECT d5.register_json_schema('regress_tags', '{"required": ["cost-center"]}') AS version;
SELECT d5.register_json_schema('regress_tags', '{"required": ["cost-center"]}') AS same_again;
SELECT d5.register_json_schema('regress_tags', '{"required": ["cost-center", "owner"]}') AS version;
SELECT * FROM d5.json_errors('regress_tags', '{}') ORDER BY path, message;
SELECT pg_temp.try($$SELECT d5.register_json_schema('regress_bad', '{"type": "objekt", "minimum": "a"}')$$);
SELECT pg_temp.try($$SELECT d5.register_json_schema('regress_bad', '{"properties": {"a": {"$ref": "https://example.com/s.json"}}}')$$);
SELECT pg_temp.try($$SELECT d5.register_json_schema('regress_bad', '{"$schema": "http://json-schema.org/draft-04/schema#"}')$$);
SELECT pg_temp.try($$SELECT d5.register_json_schema('regress_bad', '{"pattern": "(?<=x)y"}')$$);
SELECT pg_temp.try($$SELECT d5.register_json_schema('bad name', '{}')$$);
SELECT pg_temp.try($$SELECT d5.register_json_schema(NULL, '{}')$$);
SELECT pg_temp.try($$SELECT d5.register_json_schema('regress_bad', NULL)$$);
SELECT name, version FROM d5.json_schemas WHERE NOT shipped ORDER BY name, version;
RESET ROLE;

-- Only d5_admin registers and binds.
SET ROLE regress_js_app;
SELECT pg_temp.try($$SELECT d5.register_json_schema('regress_mine', '{}')$$);
SELECT pg_temp.try($$SELECT d5.bind_json_schema('d5.resources', 'tags', 'regress_tags')$$);
SELECT pg_temp.try($$SELECT count(*) FROM d5.json_schemas$$);
RESET ROLE;

-- Writes: the shipped bindings, then a per-tenant tag policy.
SELECT d5.create_tenant('regress js one', 'pro') AS t1 \gset
SELECT d5.create_tenant('regress js two', 'pro') AS t2 \gset
INSERT INTO d5.cloud_accounts (tenant_id, provider, external_account_id) VALUES
    (:'t1', 'aws', 'js-1'), (:'t2', 'aws', 'js-2');
SET ROLE regress_js_admin;
SELECT d5.bind_json_schema('d5.resources', 'tags', 'regress_tags', :'t1');
SELECT pg_temp.try($$SELECT d5.bind_json_schema('d5.resources', 'tags', 'no_such_schema')$$);
SELECT pg_temp.try($$SELECT d5.bind_json_schema('d5.resources', 'nope', 'regress_tags')$$);
SELECT pg_temp.try($$SELECT d5.bind_json_schema('d5.resources', 'region', 'regress_tags')$$);
SELECT pg_temp.try($$SELECT d5.bind_json_schema('d5.resources', 'tags', 'regress_tags', '00000000-0000-0000-0000-000000000001')$$);
SELECT table_name, column_name, tenant_id = :'t1' AS for_t1, schema_name, shipped
FROM d5.json_schema_bindings ORDER BY table_name::text, column_name, tenant_id NULLS FIRST;
RESET ROLE;

SET ROLE regress_js_app;
BEGIN;
SELECT d5.set_tenant(:'t1');
SELECT pg_temp.try($$INSERT INTO d5.resources (account_id, resource_type, provider_resource_id, tags)
    SELECT id, 'vm', 'vm-1', '{"env": "prod"}' FROM d5.cloud_accounts$$);
SELECT pg_temp.try($$INSERT INTO d5.resources (account_id, resource_type, provider_resource_id, tags)
    SELECT id, 'vm', 'vm-1', '{"env": 5, "cost-center": "CC-1"}' FROM d5.cloud_accounts$$);
SELECT pg_temp.try($$INSERT INTO d5.resources (account_id, resource_type, provider_resource_id, tags)
    SELECT id, 'vm', 'vm-1', '{"cost-center": "CC-1", "owner": "ops"}' FROM d5.cloud_accounts$$);
SELECT pg_temp.try($$INSERT INTO d5.recommendations (resource_id, type, impact)
    SELECT id, 'rightsize', '{"estimated_monthly_savings": "12", "currency": "USD"}' FROM d5.resources$$);
SELECT pg_temp.try($$INSERT INTO d5.recommendations (resource_id, type, impact)
    SELECT id, 'rightsize', '{"estimated_monthly_savings": 12, "currency": "USD", "confidence": 0.5}' FROM d5.resources$$);
SELECT pg_temp.try($$INSERT INTO d5.policies (name, type, thresholds)
    VALUES ('budget', 'budget', '{"amount": 100, "currency": "USD", "period": "monthly", "extra": true}')$$);
SELECT pg_temp.try($$INSERT INTO d5.policies (name, type, thresholds)
    VALUES ('budget', 'budget', '{"amount": 100, "currency": "USD", "period": "monthly", "x_team": "finops"}')$$);
SELECT pg_temp.try($$UPDATE d5.resources SET tags = tags - 'owner'$$);
SELECT pg_temp.try($$UPDATE d5.resources SET region = 'eu-west-1'$$);
SELECT provider_resource_id, region, tags FROM d5.resources ORDER BY provider_resource_id;
COMMIT;
-- Tenant two is not bound by tenant one's policy.
BEGIN;
SELECT d5.set_tenant(:'t2');
SELECT pg_temp.try($$INSERT INTO d5.resources (account_id, resource_type, provider_resource_id, tags)
    SELECT id, 'vm', 'vm-2', '{"env": "prod"}' FROM d5.cloud_accounts$$);
COMMIT;
RESET ROLE;

-- Unbinding: the tenant's extra schema, then the shipped global one (an override row).
SET ROLE regress_js_admin;
SELECT d5.unbind_json_schema('d5.resources', 'tags', :'t1') AS removed;
SELECT d5.unbind_json_schema('d5.resources', 'tags', :'t1') AS removed_again;
SELECT d5.unbind_json_schema('d5.resources', 'tags') AS global_removed;
SELECT table_name, column_name, tenant_id, schema_name, shipped
FROM d5.json_schema_bindings WHERE table_name = 'd5.resources'::regclass ORDER BY shipped, tenant_id;
RESET ROLE;
SET ROLE regress_js_app;
BEGIN;
SELECT d5.set_tenant(:'t2');
SELECT pg_temp.try($$INSERT INTO d5.resources (account_id, resource_type, provider_resource_id, tags)
    SELECT id, 'vm', 'vm-3', '{"anything": {"goes": [1]}}' FROM d5.cloud_accounts$$);
ROLLBACK;
RESET ROLE;
SET ROLE regress_js_admin;
SELECT d5.bind_json_schema('d5.resources', 'tags', 'resource_tags');
RESET ROLE;

-- A user table bound by its owner's admin.
CREATE TABLE public.regress_docs (id int PRIMARY KEY, doc jsonb);
ALTER TABLE public.regress_docs OWNER TO regress_js_admin;
SET ROLE regress_js_admin;
SELECT d5.bind_json_schema('public.regress_docs', 'doc', 'regress_tags');
SELECT pg_temp.try($$INSERT INTO public.regress_docs VALUES (1, '{"cost-center": "x"}')$$);
SELECT pg_temp.try($$INSERT INTO public.regress_docs VALUES (2, '{"cost-center": "x", "owner": "y"}')$$);
SELECT pg_temp.try($$INSERT INTO public.regress_docs VALUES (3, NULL)$$);
SELECT pg_temp.try(format('SELECT d5.bind_json_schema(%L, %L, %L, %L)', 'public.regress_docs', 'doc', 'regress_tags', :'t1'));
RESET ROLE;
-- Renaming a bound column fails closed until it is rebound.
ALTER TABLE public.regress_docs RENAME COLUMN doc TO body;
SELECT pg_temp.try($$INSERT INTO public.regress_docs VALUES (4, '{}')$$);
DROP TABLE public.regress_docs;

-- Limits: size before parsing, depth, numbers beyond f64.
SET d5.max_document_bytes = 2048;
SELECT pg_temp.try($$SELECT d5.validate_json('resource_tags', (SELECT jsonb_object_agg('k' || i, 'v') FROM generate_series(1, 300) i))$$);
RESET d5.max_document_bytes;
SELECT pg_temp.try($$SELECT d5.validate_json('resource_tags', (repeat('[', 65) || repeat(']', 65))::jsonb)$$);
SELECT pg_temp.try($$SELECT d5.validate_json('resource_tags', (repeat('{"a": ', 2000) || '1' || repeat('}', 2000))::jsonb)$$);
SELECT d5.validate_json('resource_tags', (repeat('[', 64) || repeat(']', 64))::jsonb) AS depth_64_is_answered;
SELECT d5.validate_json('policy_thresholds', '{"amount": 1e400, "currency": "USD", "period": "daily"}') AS huge_amount;
SELECT * FROM d5.json_errors('policy_thresholds', '{"amount": -1e400, "currency": "USD", "period": "daily"}') ORDER BY path;
SELECT 1 AS still_connected;

-- Settings: superuser only.
SET ROLE regress_js_app;
SELECT pg_temp.try($$SET d5.json_schema_cache_size = 0$$);
SELECT pg_temp.try($$SET d5.max_document_bytes = 100000000$$);
RESET ROLE;

-- Clean up: the next test file starts from a fresh extension.
DROP EXTENSION d5_storage CASCADE;
DROP ROLE regress_js_app;
DROP ROLE regress_js_admin;
