-- Privileges: nothing in d5 is callable by PUBLIC; each group role gets
-- exactly what it needs.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;
GRANT USAGE ON SCHEMA @extschema@ TO d5_app, d5_auditor, d5_admin;

-- Everyone using d5 reads the context (RLS policies call current_tenant()).
GRANT EXECUTE ON FUNCTION
    @extschema@.current_tenant(),
    @extschema@.set_tenant(uuid),
    @extschema@.set_tenant(uuid, text),
    @extschema@.clear_tenant(),
    @extschema@.set_actor(text),
    @extschema@._authorize_tenant(uuid, text),
    @extschema@.check_credentials_ref(text)
TO d5_app, d5_auditor, d5_admin;

GRANT EXECUTE ON FUNCTION
    @extschema@.create_tenant(text, text),
    @extschema@.suspend_tenant(uuid),
    @extschema@.reactivate_tenant(uuid),
    @extschema@.mint_tenant_token(uuid, interval),
    @extschema@.rotate_tenant_token_key(),
    @extschema@.export_tenant_token_key(),
    @extschema@.enable_tenancy(regclass)
TO d5_admin;

-- JSON Schema: everyone validates; only d5_admin registers and binds.
GRANT EXECUTE ON FUNCTION
    @extschema@.validate_json(text, jsonb),
    @extschema@.json_errors(text, jsonb)
TO d5_app, d5_auditor, d5_admin;
GRANT EXECUTE ON FUNCTION
    @extschema@.register_json_schema(text, jsonb),
    @extschema@.bind_json_schema(regclass, name, text, uuid),
    @extschema@.unbind_json_schema(regclass, name, uuid)
TO d5_admin;
GRANT SELECT ON @extschema@.json_schemas, @extschema@.json_schema_bindings TO d5_admin;

-- d5_admin may switch token enforcement; d5_app may not (PG15+: GRANT SET ON PARAMETER).
DO $grant$
BEGIN
    IF current_setting('server_version_num')::int >= 150000
       AND NOT has_parameter_privilege('d5_admin', 'd5.require_tenant_token', 'SET') THEN
        EXECUTE 'GRANT SET ON PARAMETER d5.require_tenant_token TO d5_admin';
    END IF;
END
$grant$;

-- pg_dump carries the data of every extension table.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tenants', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tenant_token_key', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.users', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.cloud_accounts', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.resources', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.recommendations', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.policies', '');
-- Shipped schemas and bindings are made by CREATE EXTENSION; dump only the rest.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.json_schemas', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.json_schema_bindings', 'WHERE NOT shipped');
