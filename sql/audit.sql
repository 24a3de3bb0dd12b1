-- Audit: the append-only, hash-chained log, its guards, and the generic
-- function that puts a table under audit. Records are written only by the
-- extension's Rust code running as the extension owner.

CREATE TABLE @extschema@.audit_log (
    tenant_id    uuid        NOT NULL,
    seq          bigint      NOT NULL,
    prev_hash    bytea       NOT NULL,
    hash         bytea       NOT NULL,
    logged_at    timestamptz NOT NULL,
    txid         bigint      NOT NULL,
    db_role      text        NOT NULL,
    actor        text,
    table_name   text,
    operation    text        NOT NULL,
    row_pk       jsonb,
    old_row      jsonb,
    new_row      jsonb,
    changed_cols jsonb,
    row_count    bigint,
    rows_digest  text,
    detail       jsonb,
    PRIMARY KEY (tenant_id, seq, logged_at)
) PARTITION BY RANGE (logged_at);
COMMENT ON TABLE @extschema@.audit_log IS
    'Append-only, SHA-256 hash-chained audit log: one chain per tenant (nil uuid = system chain). See README "Audit".';

CREATE TABLE @extschema@.audit_log_default PARTITION OF @extschema@.audit_log DEFAULT;

-- Where each chain ends; its row lock orders the writers of one tenant.
CREATE TABLE @extschema@.audit_chain_heads (
    tenant_id uuid   NOT NULL PRIMARY KEY,
    seq       bigint NOT NULL,
    hash      bytea  NOT NULL
);

-- Guards: no role, not even the owner, changes history through SQL.
CREATE FUNCTION @extschema@._audit_log_is_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP
        USING ERRCODE = '42501',
              HINT = 'Audit records are never changed; old partitions leave only through retention, after a seal.';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON @extschema@.audit_log
    FOR EACH ROW EXECUTE FUNCTION @extschema@._audit_log_is_append_only();
CREATE TRIGGER audit_chain_heads_append_only BEFORE DELETE OR TRUNCATE ON @extschema@.audit_chain_heads
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._audit_log_is_append_only();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON @extschema@.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON @extschema@.audit_log_default
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._audit_log_is_append_only();

-- Readers: a tenant reads its own chain, d5_auditor reads every chain.
ALTER TABLE @extschema@.audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY d5_tenant_select ON @extschema@.audit_log FOR SELECT TO d5_app
    USING (tenant_id OPERATOR(pg_catalog.=) @extschema@.current_tenant());
CREATE POLICY d5_auditor_select ON @extschema@.audit_log FOR SELECT TO d5_auditor USING (true);
REVOKE ALL ON @extschema@.audit_log, @extschema@.audit_chain_heads FROM PUBLIC;
GRANT SELECT ON @extschema@.audit_log TO d5_app, d5_auditor;
GRANT SELECT ON @extschema@.audit_chain_heads TO d5_auditor;

-- Puts a table under audit: every INSERT, UPDATE and DELETE is recorded in
-- the chain named by `chain_column` (a uuid column, normally tenant_id).
CREATE FUNCTION @extschema@.enable_audit(tbl regclass, chain_column name DEFAULT 'tenant_id') RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = tbl AND attname = chain_column AND atttypid = 'uuid'::regtype
                     AND attnotnull AND NOT attisdropped) THEN
        RAISE EXCEPTION 'table % has no "% uuid NOT NULL" column to choose the audit chain', tbl, chain_column
            USING ERRCODE = '22023';
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS d5_audit ON %s', tbl);
    EXECUTE format('CREATE TRIGGER d5_audit AFTER INSERT OR UPDATE OR DELETE ON %s
                    FOR EACH ROW EXECUTE FUNCTION @extschema@._audit_row(%L)', tbl, chain_column);
END
$$;
COMMENT ON FUNCTION @extschema@.enable_audit(regclass, name) IS
    'Records every INSERT, UPDATE and DELETE of the table in the hash-chained d5.audit_log, in the same transaction.';

SELECT @extschema@.enable_audit(format('@extschema@.%I', t)::regclass)
FROM unnest(ARRAY['users', 'cloud_accounts', 'resources', 'recommendations', 'policies']) t;
SELECT @extschema@.enable_audit('@extschema@.tenants', 'id');
