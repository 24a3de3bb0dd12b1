-- The reference: a supa_audit-style PL/pgSQL AFTER ROW trigger that writes
-- the same fields as d5._audit_row (tenant, table, operation, primary key,
-- old/new row as to_jsonb, changed columns, role, actor, statement time,
-- txid) into a plain table, with no hash, no chain and no per-tenant lock.
-- One index, keyed by tenant like d5.audit_log's primary key. The trigger
-- runs as the caller (not SECURITY DEFINER); d5_app is granted INSERT on the
-- table and its sequence instead. The primary key columns come as trigger
-- arguments, as d5._audit_row gets its chain column.
\set ON_ERROR_STOP on
CREATE SCHEMA bench;
GRANT USAGE ON SCHEMA bench TO d5_app;
CREATE TABLE bench.bench_ref_audit (
    id           bigserial   NOT NULL,
    tenant_id    uuid        NOT NULL,
    table_name   text        NOT NULL,
    op           text        NOT NULL,
    row_pk       jsonb,
    old_row      jsonb,
    new_row      jsonb,
    changed_cols jsonb,
    db_role      text        NOT NULL,
    actor        text,
    logged_at    timestamptz NOT NULL,
    txid         bigint      NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
GRANT INSERT ON bench.bench_ref_audit TO d5_app;
GRANT USAGE ON SEQUENCE bench.bench_ref_audit_id_seq TO d5_app;

CREATE FUNCTION bench.ref_audit_row() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old_j  jsonb;
    new_j  jsonb;
    any_j  jsonb;
    pk     jsonb := '{}';
    col    text;
    chg    jsonb;
BEGIN
    IF TG_OP <> 'INSERT' THEN old_j := to_jsonb(OLD); END IF;
    IF TG_OP <> 'DELETE' THEN new_j := to_jsonb(NEW); END IF;
    any_j := coalesce(new_j, old_j);
    FOREACH col IN ARRAY TG_ARGV LOOP
        pk := pk || jsonb_build_object(col, any_j ->> col);
    END LOOP;
    IF TG_OP = 'UPDATE' THEN
        SELECT coalesce(jsonb_agg(n.key ORDER BY n.key), '[]') INTO chg
          FROM jsonb_each(new_j) n
         WHERE n.value IS DISTINCT FROM old_j -> n.key;
    END IF;
    INSERT INTO bench.bench_ref_audit (tenant_id, table_name, op, row_pk, old_row, new_row, changed_cols,
                                       db_role, actor, logged_at, txid)
    VALUES ((any_j ->> 'tenant_id')::uuid, TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP, pk, old_j, new_j, chg,
            current_user, nullif(current_setting('d5.actor', true), ''), statement_timestamp(),
            txid_current());
    RETURN NULL;
END
$$;
CREATE TRIGGER bench_ref_audit AFTER INSERT OR UPDATE OR DELETE ON d5.resources
    FOR EACH ROW EXECUTE FUNCTION bench.ref_audit_row('tenant_id', 'id');
ALTER TABLE d5.resources DISABLE TRIGGER bench_ref_audit;
