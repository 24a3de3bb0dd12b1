-- JSON Schema: the registry of named, versioned schemas, the bindings of
-- schemas to jsonb columns (global or per tenant), and the write-time trigger.

CREATE TABLE @extschema@.json_schemas (
    name          text        NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
    version       integer     NOT NULL CHECK (version >= 1),
    schema        jsonb       NOT NULL,
    -- Installed by CREATE EXTENSION (kept out of pg_dump, which would duplicate it).
    shipped       boolean     NOT NULL DEFAULT false,
    registered_at timestamptz NOT NULL DEFAULT now(),
    registered_by text        NOT NULL DEFAULT session_user,
    PRIMARY KEY (name, version)
);
COMMENT ON TABLE @extschema@.json_schemas IS
    'Named, versioned JSON Schemas; the latest version of a name applies. Written only by d5.register_json_schema().';
REVOKE ALL ON @extschema@.json_schemas FROM PUBLIC;

-- Which schema applies to which jsonb column. A row with tenant_id NULL
-- applies to every row of the table; a row with a tenant applies to that
-- tenant's rows in addition. An admin's global row (shipped = false)
-- overrides the shipped one for the same column; its schema_name NULL means
-- "no global schema".
CREATE TABLE @extschema@.json_schema_bindings (
    table_name  regclass    NOT NULL,
    column_name name        NOT NULL,
    tenant_id   uuid        REFERENCES @extschema@.tenants (id) ON DELETE CASCADE,
    schema_name text,
    shipped     boolean     NOT NULL DEFAULT false,
    bound_at    timestamptz NOT NULL DEFAULT now(),
    bound_by    text        NOT NULL DEFAULT session_user,
    CHECK (tenant_id IS NULL OR schema_name IS NOT NULL),
    CHECK (NOT shipped OR (tenant_id IS NULL AND schema_name IS NOT NULL))
);
CREATE UNIQUE INDEX json_schema_bindings_global_key
    ON @extschema@.json_schema_bindings (table_name, column_name, shipped) WHERE tenant_id IS NULL;
CREATE UNIQUE INDEX json_schema_bindings_tenant_key
    ON @extschema@.json_schema_bindings (table_name, column_name, tenant_id) WHERE tenant_id IS NOT NULL;
COMMENT ON TABLE @extschema@.json_schema_bindings IS
    'JSON Schema bindings of jsonb columns, global or per tenant. Written only by d5.bind_json_schema() / d5.unbind_json_schema().';
REVOKE ALL ON @extschema@.json_schema_bindings FROM PUBLIC;

-- Any change to either table makes every session drop its cached versions
-- and bindings (relcache invalidation, delivered at commit).
CREATE TRIGGER json_schemas_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.json_schemas
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._json_schema_invalidate();
CREATE TRIGGER json_schema_bindings_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.json_schema_bindings
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._json_schema_invalidate();

SELECT @extschema@._json_schema_install_shipped();

INSERT INTO @extschema@.json_schema_bindings (table_name, column_name, schema_name, shipped) VALUES
    ('@extschema@.resources', 'tags', 'resource_tags', true),
    ('@extschema@.recommendations', 'impact', 'recommendation_impact', true),
    ('@extschema@.policies', 'thresholds', 'policy_thresholds', true);

DO $triggers$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['resources', 'recommendations', 'policies'] LOOP
        EXECUTE format('CREATE TRIGGER d5_json_schema_check BEFORE INSERT OR UPDATE ON @extschema@.%I
                        FOR EACH ROW EXECUTE FUNCTION @extschema@._json_schema_check()', t);
    END LOOP;
END
$triggers$;

-- Binds schema `schema_name` (its latest version, always) to column `col` of
-- `tbl`: for every row, or with `tenant` for that tenant's rows in addition
-- to the global schema. Creates the validation trigger on the table if needed.
CREATE FUNCTION @extschema@.bind_json_schema(tbl regclass, col name, schema_name text, tenant uuid DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    col_type oid;
BEGIN
    IF tbl IS NULL OR col IS NULL OR bind_json_schema.schema_name IS NULL THEN
        RAISE EXCEPTION 'table, column and schema name must not be NULL' USING ERRCODE = '22023';
    END IF;
    PERFORM @extschema@._json_schema_check_target(tbl, tenant IS NOT NULL);
    SELECT a.atttypid INTO col_type FROM pg_attribute a
    WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of relation % does not exist', col, tbl USING ERRCODE = '42703';
    END IF;
    IF col_type <> 'jsonb'::regtype THEN
        RAISE EXCEPTION 'column "%" of relation % is of type %, not jsonb', col, tbl, col_type::regtype
            USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.json_schemas s WHERE s.name = bind_json_schema.schema_name) THEN
        RAISE EXCEPTION 'JSON schema "%" does not exist', bind_json_schema.schema_name USING ERRCODE = 'P0002',
            HINT = 'Register it first with d5.register_json_schema().';
    END IF;
    IF tenant IS NOT NULL AND NOT EXISTS (SELECT 1 FROM @extschema@.tenants t WHERE t.id = tenant) THEN
        RAISE EXCEPTION 'tenant % does not exist', tenant USING ERRCODE = 'P0002';
    END IF;
    IF tenant IS NULL THEN
        INSERT INTO @extschema@.json_schema_bindings AS b (table_name, column_name, schema_name)
        VALUES (tbl, col, bind_json_schema.schema_name)
        ON CONFLICT (table_name, column_name, shipped) WHERE tenant_id IS NULL
        DO UPDATE SET schema_name = EXCLUDED.schema_name, bound_at = now(), bound_by = session_user;
    ELSE
        INSERT INTO @extschema@.json_schema_bindings AS b (table_name, column_name, tenant_id, schema_name)
        VALUES (tbl, col, tenant, bind_json_schema.schema_name)
        ON CONFLICT (table_name, column_name, tenant_id) WHERE tenant_id IS NOT NULL
        DO UPDATE SET schema_name = EXCLUDED.schema_name, bound_at = now(), bound_by = session_user;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = tbl AND g.tgname = 'd5_json_schema_check') THEN
        EXECUTE format('CREATE TRIGGER d5_json_schema_check BEFORE INSERT OR UPDATE ON %s
                        FOR EACH ROW EXECUTE FUNCTION @extschema@._json_schema_check()', tbl);
    END IF;
    PERFORM @extschema@._audit_event(tenant, '@extschema@.json_schema_bindings', 'BIND_SCHEMA', 1, NULL,
        jsonb_build_object('table', tbl::text, 'column', col, 'schema', bind_json_schema.schema_name,
                           'session_user', session_user));
END
$$;
COMMENT ON FUNCTION @extschema@.bind_json_schema(regclass, name, text, uuid) IS
    'd5_admin: validate column col of tbl on write against the latest version of schema_name (for every row, or in addition for one tenant''s rows).';

-- Removes a tenant's binding, or the global one (for a shipped default: an
-- override row saying "no global schema"). True when something changed.
CREATE FUNCTION @extschema@.unbind_json_schema(tbl regclass, col name, tenant uuid DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    PERFORM @extschema@._json_schema_check_target(tbl, false);
    PERFORM @extschema@._audit_event(tenant, '@extschema@.json_schema_bindings', 'UNBIND_SCHEMA', 1, NULL,
        jsonb_build_object('table', tbl::text, 'column', col, 'session_user', session_user));
    IF tenant IS NOT NULL THEN
        DELETE FROM @extschema@.json_schema_bindings b
        WHERE b.table_name = tbl AND b.column_name = col AND b.tenant_id = tenant;
        RETURN FOUND;
    END IF;
    IF EXISTS (SELECT 1 FROM @extschema@.json_schema_bindings b
               WHERE b.table_name = tbl AND b.column_name = col AND b.shipped) THEN
        INSERT INTO @extschema@.json_schema_bindings AS b (table_name, column_name, schema_name)
        VALUES (tbl, col, NULL)
        ON CONFLICT (table_name, column_name, shipped) WHERE tenant_id IS NULL
        DO UPDATE SET schema_name = NULL, bound_at = now(), bound_by = session_user
        WHERE b.schema_name IS NOT NULL;
    ELSE
        DELETE FROM @extschema@.json_schema_bindings b
        WHERE b.table_name = tbl AND b.column_name = col AND b.tenant_id IS NULL;
    END IF;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION @extschema@.unbind_json_schema(regclass, name, uuid) IS
    'd5_admin: stop validating column col of tbl (globally, or only the extra schema of one tenant).';

-- Binding may only target d5's own tables or tables the calling login may
-- administer, and tenant bindings need a tenant_id uuid column.
CREATE FUNCTION @extschema@._json_schema_check_target(tbl regclass, per_tenant boolean)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rel record;
BEGIN
    SELECT c.relkind, c.relowner, c.relnamespace INTO rel FROM pg_class c WHERE c.oid = tbl;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', tbl USING ERRCODE = '22023';
    END IF;
    IF rel.relnamespace <> '@extschema@'::regnamespace
       AND NOT pg_has_role(session_user, rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table % to bind a JSON schema to it', tbl USING ERRCODE = '42501';
    END IF;
    IF per_tenant AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                                  WHERE a.attrelid = tbl AND a.attname = 'tenant_id'
                                    AND a.atttypid = 'uuid'::regtype AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'table % has no tenant_id uuid column for a per-tenant binding', tbl USING ERRCODE = '22023';
    END IF;
END
$$;
