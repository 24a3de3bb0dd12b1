-- Group roles. Created if missing, never dropped by the extension (they are
-- cluster-wide and may be shared by several databases).
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'd5_app') THEN
        CREATE ROLE d5_app NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'd5_auditor') THEN
        CREATE ROLE d5_auditor NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'd5_admin') THEN
        CREATE ROLE d5_admin NOLOGIN;
    END IF;
END
$roles$;

COMMENT ON SCHEMA @extschema@ IS 'd5_storage: multi-tenant FinOps storage';
