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
    @extschema@.check_credentials_ref(text),
    @extschema@._restoring()
TO d5_app, d5_auditor, d5_admin;

GRANT EXECUTE ON FUNCTION
    @extschema@.create_tenant(text, text),
    @extschema@.suspend_tenant(uuid),
    @extschema@.reactivate_tenant(uuid),
    @extschema@.mint_tenant_token(uuid, interval),
    @extschema@.rotate_tenant_token_key(),
    @extschema@.export_tenant_token_key(),
    @extschema@.enable_tenancy(regclass, text),
    @extschema@.enable_audit(regclass, name)
TO d5_admin;

GRANT EXECUTE ON FUNCTION
    @extschema@.rollup_costs(timestamptz, timestamptz),
    @extschema@.ingest_focus(uuid, text, text),
    @extschema@._exact_daily(date, date),
    @extschema@.daily_costs(date, date),
    @extschema@.monthly_costs(date, date),
    @extschema@.cost_by_service(date, date),
    @extschema@.cost_by_account(date, date),
    @extschema@.cost_by_region(date, date),
    @extschema@.cost_by_tag(text, date, date),
    @extschema@.month_to_date_comparison(date)
TO d5_app, d5_admin;

GRANT EXECUTE ON FUNCTION @extschema@.self_check() TO d5_admin, d5_auditor;

GRANT EXECUTE ON FUNCTION
    @extschema@.verify_audit_chain(uuid),
    @extschema@.audit_digest(),
    @extschema@.verify_audit_digest(jsonb)
TO d5_auditor;
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

-- Indexes of partitioned tables live on their partitions (partitions.sql).
SELECT @extschema@._own_partition_indexes(parent) FROM @extschema@.partition_config ORDER BY parent::text;

-- pg_dump carries the data of every extension table.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tenants', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tenant_token_key', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.users', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.cloud_accounts', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.resources', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.recommendations', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.policies', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.audit_chain_heads', '');
-- Partitioned tables keep their rows in partitions: the DEFAULT partitions
-- made here are extension members; dated partitions are made later as
-- ordinary tables, which pg_dump carries with their bounds. One call per
-- statement: each call updates the pg_extension row.
DO $dump$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['audit_log_default', 'cost_metrics_raw_default', 'cost_metrics_hourly_default',
                             'cost_metrics_daily_default', 'cost_metrics_monthly_default',
                             'cost_rollup_pending', 'ingest_batches', 'ingest_rejects'] LOOP
        PERFORM pg_catalog.pg_extension_config_dump(format('@extschema@.%I', t)::regclass, '');
    END LOOP;
END
$dump$;
-- Shipped schemas and bindings are made by CREATE EXTENSION; dump only the rest.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.json_schemas', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.json_schema_bindings', 'WHERE NOT shipped');

-- Lifecycle: d5_admin runs maintenance and edits retention; d5_auditor reads
-- the history and the archive.
GRANT EXECUTE ON FUNCTION @extschema@.run_maintenance(timestamptz) TO d5_admin;
GRANT EXECUTE ON FUNCTION @extschema@.partition_checksum(regclass) TO d5_admin, d5_auditor;
GRANT SELECT ON @extschema@.retention_policies, @extschema@.maintenance_runs, @extschema@.maintenance_actions,
                @extschema@.maintenance_progress, @extschema@.archived_partitions
    TO d5_admin, d5_auditor;
GRANT INSERT, UPDATE, DELETE ON @extschema@.retention_policies TO d5_admin;
GRANT USAGE ON SCHEMA d5_archive TO d5_admin, d5_auditor;
DO $grant$
BEGIN
    IF current_setting('server_version_num')::int >= 150000
       AND NOT has_parameter_privilege('d5_admin', 'd5.archive_tablespace', 'SET') THEN
        EXECUTE 'GRANT SET ON PARAMETER d5.archive_tablespace TO d5_admin';
    END IF;
END
$grant$;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.maintenance_run_seq', '');
DO $dump$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['retention_policies', 'maintenance_runs', 'maintenance_actions',
                             'archived_partitions'] LOOP
        PERFORM pg_catalog.pg_extension_config_dump(format('@extschema@.%I', t)::regclass, '');
    END LOOP;
END
$dump$;
