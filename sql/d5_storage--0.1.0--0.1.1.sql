-- d5_storage 0.1.0 -> 0.1.1, run by ALTER EXTENSION d5_storage UPDATE (one
-- transaction, as the superuser running it, search_path = d5).
--
-- Open until 0.1.1 is released: append your change as a section at the end
-- ("-- == <module>: <what>"), doing exactly what a fresh install does
-- (sql/*.sql, the generated CREATE FUNCTIONs of #[pg_extern]s, the grants of
-- sql/finalize.sql). tests/upgrade.rs fails with a diff when an updated
-- database differs from a fresh install. Once released (listed in
-- sql/RELEASED) this file is never edited again.
\echo Use "ALTER EXTENSION d5_storage UPDATE" to load this file. \quit

-- == version: d5._library_version(), d5.version() (src/version.rs, sql/version.sql)
CREATE FUNCTION @extschema@."_library_version"() RETURNS TEXT /* &str */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_library_version_wrapper';
CREATE FUNCTION @extschema@.version(
    OUT extension_version text,
    OUT library_version text,
    OUT available_version text)
LANGUAGE sql STABLE AS $$
    SELECT (SELECT e.extversion FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'd5_storage'),
           @extschema@._library_version(),
           (SELECT a.default_version FROM pg_catalog.pg_available_extensions a WHERE a.name OPERATOR(pg_catalog.=) 'd5_storage')
$$;
COMMENT ON FUNCTION @extschema@.version() IS
    'extension_version: the SQL objects in this database; library_version: the shared library of this session; available_version: the control file installed on the server.';
REVOKE ALL ON FUNCTION @extschema@.version(), @extschema@._library_version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.version(), @extschema@._library_version() TO d5_app, d5_auditor, d5_admin;

-- == self_check: finding version_mismatch (sql/self_check.sql)
CREATE OR REPLACE FUNCTION @extschema@.self_check()
RETURNS TABLE (check_name text, object text, detail text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH RECURSIVE tenant_tables AS (
        -- Every d5 table keyed by tenant (partitions inherit from their parent).
        SELECT c.oid, c.oid::regclass::text AS name, c.relrowsecurity, c.relforcerowsecurity
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = '@extschema@'
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
          -- Configuration keyed by an optional tenant is not tenant data.
          AND c.relname NOT IN ('audit_chain_heads', 'json_schema_bindings')
    ), granted AS (
        -- Roles granted d5_app directly or through other roles (pg_has_role
        -- would count every superuser as a member).
        SELECT m.member FROM pg_auth_members m WHERE m.roleid = 'd5_app'::regrole
        UNION
        SELECT m.member FROM pg_auth_members m JOIN granted g ON m.roleid = g.member
    ), app_members AS (
        SELECT r.oid, r.rolname, r.rolsuper, r.rolbypassrls
        FROM pg_roles r JOIN granted g ON g.member = r.oid
    )
    SELECT 'rls_not_enabled', t.name, 'row-level security is not enabled'
    FROM tenant_tables t WHERE NOT t.relrowsecurity
    UNION ALL
    SELECT 'rls_not_forced', t.name, 'row-level security is not FORCEd (the owner would bypass it)'
    FROM tenant_tables t WHERE NOT t.relforcerowsecurity
    UNION ALL
    SELECT 'missing_policy', t.name, format('no %s policy comparing tenant_id with d5.current_tenant()', cmd.c)
    FROM tenant_tables t
    CROSS JOIN (VALUES ('SELECT', 'r'), ('INSERT', 'a'), ('UPDATE', 'w'), ('DELETE', 'd')) cmd(c, polcmd)
    WHERE (cmd.c = 'SELECT' OR has_table_privilege('d5_app', t.oid, cmd.c))
      AND NOT EXISTS (SELECT 1 FROM pg_policy p
                      WHERE p.polrelid = t.oid AND p.polcmd IN (cmd.polcmd, '*')
                        AND coalesce(pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
                            LIKE '%tenant_id = @extschema@.current_tenant()%')
    UNION ALL
    SELECT 'primary_key_without_tenant', t.name, 'the primary key does not include tenant_id'
    FROM tenant_tables t
    JOIN pg_constraint k ON k.conrelid = t.oid AND k.contype = 'p'
    WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                      WHERE a.attrelid = t.oid AND a.attname = 'tenant_id' AND a.attnum = ANY (k.conkey))
    UNION ALL
    SELECT 'foreign_key_without_tenant', t.name || ' (' || f.conname || ')',
           'a foreign key that does not include tenant_id could point at another tenant''s row'
    FROM tenant_tables t
    JOIN pg_constraint f ON f.conrelid = t.oid AND f.contype = 'f'
    WHERE f.confrelid <> '@extschema@.tenants'::regclass
      AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                      WHERE a.attrelid = t.oid AND a.attname = 'tenant_id' AND a.attnum = ANY (f.conkey))
    UNION ALL
    SELECT 'security_definer_without_search_path', p.oid::regprocedure::text,
           'SECURITY DEFINER function without a pinned search_path'
    FROM pg_proc p
    WHERE p.pronamespace = '@extschema@'::regnamespace AND p.prosecdef
      AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')
    UNION ALL
    SELECT 'app_role_privileged', m.rolname,
           concat_ws(', ', CASE WHEN m.rolsuper THEN 'is a superuser' END,
                           CASE WHEN m.rolbypassrls THEN 'has BYPASSRLS' END)
    FROM app_members m WHERE m.rolsuper OR m.rolbypassrls
    UNION ALL
    SELECT 'app_role_owns_tables', m.rolname, format('owns %s table(s), e.g. %s', count(*), min(c.oid::regclass::text))
    FROM app_members m JOIN pg_class c ON c.relowner = m.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
    GROUP BY m.rolname
    UNION ALL
    SELECT 'audit_guard_disabled', g.tbl || ' (' || g.tgname || ')',
           CASE WHEN tr.oid IS NULL THEN 'trigger is missing' ELSE 'trigger is disabled' END
    FROM (VALUES ('@extschema@.audit_log', 'audit_log_append_only'),
                 ('@extschema@.audit_log', 'audit_log_no_truncate'),
                 ('@extschema@.audit_chain_heads', 'audit_chain_heads_append_only'),
                 ('@extschema@.tenants', 'd5_audit'), ('@extschema@.users', 'd5_audit'),
                 ('@extschema@.cloud_accounts', 'd5_audit'), ('@extschema@.resources', 'd5_audit'),
                 ('@extschema@.recommendations', 'd5_audit'), ('@extschema@.policies', 'd5_audit')) g(tbl, tgname)
    LEFT JOIN pg_trigger tr ON tr.tgrelid = g.tbl::regclass AND tr.tgname = g.tgname
    WHERE tr.oid IS NULL OR tr.tgenabled = 'D'
    UNION ALL
    -- Audit partitions made later each need their own TRUNCATE guard.
    SELECT 'audit_guard_disabled', i.inhrelid::regclass::text || ' (audit_log_no_truncate)', 'partition without its TRUNCATE guard'
    FROM pg_inherits i
    WHERE i.inhparent = '@extschema@.audit_log'::regclass
      AND NOT EXISTS (SELECT 1 FROM pg_trigger tr WHERE tr.tgrelid = i.inhrelid AND tr.tgname = 'audit_log_no_truncate'
                                                    AND tr.tgenabled <> 'D')
    UNION ALL
    -- New files installed but ALTER EXTENSION … UPDATE not run, or a session
    -- still running the library it loaded before.
    SELECT 'version_mismatch', 'd5_storage',
           CASE WHEN v.extension_version IS DISTINCT FROM v.available_version
                THEN format('the SQL objects are version %s, the server has version %s installed: run ALTER EXTENSION d5_storage UPDATE',
                            v.extension_version, v.available_version)
                ELSE format('this session runs library version %s with the version %s SQL objects: reconnect (restart the server when the library is preloaded)',
                            v.library_version, v.extension_version) END
    FROM @extschema@.version() v
    WHERE v.extension_version IS DISTINCT FROM v.available_version
       OR v.extension_version IS DISTINCT FROM v.library_version
    ORDER BY 1, 2
$$;
COMMENT ON FUNCTION @extschema@.self_check() IS
    'One row per finding (missing RLS, policy, tenant-keyed constraint, pinned search_path, privileged app role, disabled audit guard, version mismatch); empty when all is well.';

-- == resilience (issue 7): indexes on the partitions, not the partitioned parents (pg_restore
-- recreates them there); restored rows keep their stamps and write no audit record.
CREATE FUNCTION @extschema@._restoring() RETURNS bool
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_restoring_wrapper';
REVOKE ALL ON FUNCTION @extschema@._restoring() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._restoring() TO d5_app, d5_auditor, d5_admin;
CREATE OR REPLACE FUNCTION @extschema@._stamp_times() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' AND @extschema@._restoring() THEN
        RETURN NEW;
    ELSIF TG_OP = 'INSERT' THEN
        NEW.created_at := now();
    ELSE
        NEW.created_at := OLD.created_at;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE OR REPLACE FUNCTION @extschema@._ensure_partition(parent regclass, at timestamptz) RETURNS regclass
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET session_replication_role = replica AS $$
DECLARE
    g        text;
    key      name;
    key_type regtype;
    lo       timestamp;
    hi       timestamp;
    lo_lit   text;
    hi_lit   text;
    part     text;
    def      regclass;
    moved    bigint := 0;
BEGIN
    SELECT c.granularity INTO g FROM @extschema@.partition_config c WHERE c.parent = _ensure_partition.parent;
    IF g IS NULL THEN
        RAISE EXCEPTION '% is not a registered d5 partitioned table', parent USING ERRCODE = '22023';
    END IF;
    SELECT a.attname, a.atttypid::regtype INTO key, key_type
    FROM pg_partitioned_table p JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
    WHERE p.partrelid = parent;
    lo := date_trunc(g, at AT TIME ZONE 'UTC');
    hi := lo + ('1 ' || g)::interval;
    IF key_type = 'date'::regtype THEN
        lo_lit := quote_literal(lo::date); hi_lit := quote_literal(hi::date);
    ELSE
        lo_lit := quote_literal((lo AT TIME ZONE 'UTC')::text); hi_lit := quote_literal((hi AT TIME ZONE 'UTC')::text);
    END IF;
    part := (SELECT relname FROM pg_class WHERE oid = parent) || '_p'
            || to_char(lo, CASE g WHEN 'day' THEN 'YYYYMMDD' WHEN 'month' THEN 'YYYYMM' ELSE 'YYYY' END);
    IF to_regclass(format('@extschema@.%I', part)) IS NOT NULL THEN
        RETURN format('@extschema@.%I', part)::regclass;
    END IF;
    def := to_regclass(format('%s_default', parent));
    -- The DEFAULT partition is the template: it holds the table's indexes.
    EXECUTE format('CREATE TABLE @extschema@.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)',
                   part, coalesce(def, parent));
    IF def IS NOT NULL THEN
        EXECUTE format('WITH moved AS (DELETE FROM %s WHERE %I >= %s AND %I < %s RETURNING *)
                        INSERT INTO @extschema@.%I SELECT * FROM moved', def, key, lo_lit, key, hi_lit, part);
        GET DIAGNOSTICS moved = ROW_COUNT;
    END IF;
    EXECUTE format('ALTER TABLE %s ATTACH PARTITION @extschema@.%I FOR VALUES FROM (%s) TO (%s)',
                   parent, part, lo_lit, hi_lit);
    IF parent = '@extschema@.audit_log'::regclass THEN
        EXECUTE format('CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON @extschema@.%I
                        FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._audit_log_is_append_only()', part);
    END IF;
    IF moved > 0 THEN
        RAISE NOTICE 'moved % rows of % from its default partition into %', moved, parent, part;
    END IF;
    RETURN format('@extschema@.%I', part)::regclass;
END
$$;
CREATE FUNCTION @extschema@._own_partition_indexes(parent regclass) RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ddl  text[];
    idx  record;
    stmt text;
BEGIN
    -- The partitions' copies as DDL, read before they go with the parent's.
    SELECT coalesce(array_agg(CASE WHEN c.oid IS NULL THEN pg_get_indexdef(ci.indexrelid)
                                   ELSE format('ALTER TABLE %s ADD CONSTRAINT %I %s', ci.indrelid::regclass,
                                               c.conname, pg_get_constraintdef(c.oid)) END), '{}')
      INTO ddl
      FROM pg_index pi
      JOIN pg_inherits h ON h.inhparent = pi.indexrelid
      JOIN pg_index ci ON ci.indexrelid = h.inhrelid
      LEFT JOIN pg_constraint c ON c.conindid = ci.indexrelid AND c.conrelid = ci.indrelid AND c.contype IN ('p', 'u', 'x')
     WHERE pi.indrelid = parent;
    FOR idx IN SELECT i.indexrelid::regclass AS name, c.conname
                 FROM pg_index i
                 LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = parent AND c.contype IN ('p', 'u', 'x')
                WHERE i.indrelid = parent LOOP
        IF idx.conname IS NULL THEN
            EXECUTE format('DROP INDEX %s', idx.name);
        ELSE
            EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', parent, idx.conname);
        END IF;
    END LOOP;
    FOREACH stmt IN ARRAY ddl LOOP
        EXECUTE stmt;
    END LOOP;
    RETURN cardinality(ddl);
END
$$;
REVOKE ALL ON FUNCTION @extschema@._own_partition_indexes(regclass) FROM PUBLIC;
SELECT @extschema@._own_partition_indexes(parent) FROM @extschema@.partition_config ORDER BY parent::text;
