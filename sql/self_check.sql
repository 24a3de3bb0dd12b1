-- d5.self_check(): the first thing a DBA runs after install or upgrade.
-- One row per finding; no rows means every guard is in place.

CREATE FUNCTION @extschema@.self_check()
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
