-- d5.version(): which d5_storage is in force. The three differ after new
-- files were installed until ALTER EXTENSION d5_storage UPDATE is run (and,
-- for the library, until sessions reconnect); d5.self_check() reports it.
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
