-- Tenancy: the entity tables, the generic function that puts a table under
-- tenant isolation, and tenant provisioning.

CREATE TABLE @extschema@.tenants (
    id          uuid        NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    name        text        NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    plan        text        NOT NULL CHECK (plan IN ('free', 'starter', 'pro', 'enterprise')),
    status      text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE @extschema@.tenants IS 'One row per tenant; a tenant sees only its own row.';

-- The tenant token key: one row, readable by no application role.
CREATE TABLE @extschema@.tenant_token_key (
    singleton   boolean     NOT NULL DEFAULT true PRIMARY KEY CHECK (singleton),
    key         bytea       NOT NULL CHECK (length(key) >= 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON @extschema@.tenant_token_key FROM PUBLIC;

CREATE TABLE @extschema@.users (
    tenant_id    uuid        NOT NULL REFERENCES @extschema@.tenants (id),
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    email        text        NOT NULL CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$' AND length(email) <= 320),
    display_name text,
    role         text        NOT NULL DEFAULT 'member'
                             CHECK (role IN ('owner', 'admin', 'member', 'viewer', 'billing')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
-- Unique within a tenant, so a violation never reveals another tenant's users.
CREATE UNIQUE INDEX users_tenant_email_key ON @extschema@.users (tenant_id, lower(email));

CREATE TABLE @extschema@.cloud_accounts (
    tenant_id           uuid        NOT NULL REFERENCES @extschema@.tenants (id),
    id                  uuid        NOT NULL DEFAULT gen_random_uuid(),
    provider            text        NOT NULL
                                    CHECK (provider IN ('aws', 'azure', 'gcp', 'oci', 'alibaba', 'ibm', 'other')),
    external_account_id text        NOT NULL CHECK (length(external_account_id) BETWEEN 1 AND 200),
    name                text,
    credentials_ref     text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, provider, external_account_id)
);
COMMENT ON COLUMN @extschema@.cloud_accounts.credentials_ref IS
    'A reference to a secret (secret-manager ARN/URI), never the secret itself.';

CREATE TABLE @extschema@.resources (
    tenant_id            uuid        NOT NULL,
    id                   uuid        NOT NULL DEFAULT gen_random_uuid(),
    account_id           uuid        NOT NULL,
    resource_type        text        NOT NULL,
    provider_resource_id text        NOT NULL,
    region               text,
    name                 text,
    tags                 jsonb       NOT NULL DEFAULT '{}',
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, account_id, provider_resource_id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES @extschema@.cloud_accounts (tenant_id, id)
);

CREATE TABLE @extschema@.recommendations (
    tenant_id   uuid        NOT NULL,
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    resource_id uuid        NOT NULL,
    type        text        NOT NULL CHECK (length(type) BETWEEN 1 AND 100),
    -- NULL: not estimated (yet). A document must match its JSON schema, which '{}' does not.
    impact      jsonb,
    status      text        NOT NULL DEFAULT 'open'
                            CHECK (status IN ('open', 'accepted', 'dismissed', 'implemented', 'expired')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, resource_id) REFERENCES @extschema@.resources (tenant_id, id)
);
CREATE INDEX recommendations_tenant_resource_idx ON @extschema@.recommendations (tenant_id, resource_id);
CREATE INDEX recommendations_tenant_status_idx ON @extschema@.recommendations (tenant_id, status);

CREATE TABLE @extschema@.policies (
    tenant_id   uuid        NOT NULL REFERENCES @extschema@.tenants (id),
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    name        text        NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    type        text        NOT NULL CHECK (length(type) BETWEEN 1 AND 100),
    -- NULL: a policy without thresholds. A document must match its JSON schema, which '{}' does not.
    thresholds  jsonb,
    enabled     boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

-- created_at is the database's, updated_at follows every change; a restore
-- (a superuser's COPY, see d5._restoring) keeps the stamps it brings.
CREATE FUNCTION @extschema@._stamp_times() RETURNS trigger
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

CREATE FUNCTION @extschema@._check_cloud_account() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM @extschema@.check_credentials_ref(NEW.credentials_ref);
    RETURN NEW;
END
$$;
CREATE TRIGGER cloud_accounts_check BEFORE INSERT OR UPDATE OF credentials_ref
    ON @extschema@.cloud_accounts FOR EACH ROW EXECUTE FUNCTION @extschema@._check_cloud_account();

-- Puts a table with a `tenant_id uuid NOT NULL` column under tenant isolation:
-- RLS enabled and forced, one policy per command comparing tenant_id with
-- d5.current_tenant() (a STABLE function, so the planner turns it into an
-- index condition), tenant_id defaulting to the current tenant, DML for d5_app.
CREATE FUNCTION @extschema@.enable_tenancy(tbl regclass, app_privileges text DEFAULT 'SELECT, INSERT, UPDATE, DELETE') RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cmd text;
    expr constant text := 'tenant_id OPERATOR(pg_catalog.=) @extschema@.current_tenant()';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = tbl AND attname = 'tenant_id' AND atttypid = 'uuid'::regtype
                     AND attnotnull AND NOT attisdropped) THEN
        RAISE EXCEPTION 'table % has no "tenant_id uuid NOT NULL" column', tbl
            USING ERRCODE = '22023';
    END IF;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
    FOREACH cmd IN ARRAY ARRAY['select', 'insert', 'update', 'delete'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS %I ON %s', 'd5_tenant_' || cmd, tbl);
    END LOOP;
    EXECUTE format('CREATE POLICY d5_tenant_select ON %s FOR SELECT USING (%s)', tbl, expr);
    EXECUTE format('CREATE POLICY d5_tenant_insert ON %s FOR INSERT WITH CHECK (%s)', tbl, expr);
    EXECUTE format('CREATE POLICY d5_tenant_update ON %s FOR UPDATE USING (%s) WITH CHECK (%s)', tbl, expr, expr);
    EXECUTE format('CREATE POLICY d5_tenant_delete ON %s FOR DELETE USING (%s)', tbl, expr);
    EXECUTE format('ALTER TABLE %s ALTER COLUMN tenant_id SET DEFAULT @extschema@.current_tenant()', tbl);
    EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', tbl);
    IF app_privileges !~ '^\s*(SELECT|INSERT|UPDATE|DELETE)(\s*,\s*(SELECT|INSERT|UPDATE|DELETE))*\s*$' THEN
        RAISE EXCEPTION 'app_privileges must list SELECT, INSERT, UPDATE or DELETE, got %', app_privileges
            USING ERRCODE = '22023';
    END IF;
    EXECUTE format('GRANT %s ON %s TO d5_app', app_privileges, tbl);
END
$$;
COMMENT ON FUNCTION @extschema@.enable_tenancy(regclass, text) IS
    'Enables and forces row-level security keyed by tenant_id = d5.current_tenant() and grants app_privileges (default all DML) to d5_app.';

DO $apply$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'cloud_accounts', 'resources', 'recommendations', 'policies'] LOOP
        PERFORM @extschema@.enable_tenancy(format('@extschema@.%I', t)::regclass);
        EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE ON @extschema@.%I
                        FOR EACH ROW EXECUTE FUNCTION @extschema@._stamp_times()', t || '_stamp_times', t);
    END LOOP;
END
$apply$;
CREATE TRIGGER tenants_stamp_times BEFORE INSERT OR UPDATE ON @extschema@.tenants
    FOR EACH ROW EXECUTE FUNCTION @extschema@._stamp_times();

-- The tenants table is keyed by id, not tenant_id: a tenant reads only its own row.
ALTER TABLE @extschema@.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY d5_tenant_select ON @extschema@.tenants FOR SELECT
    USING (id OPERATOR(pg_catalog.=) @extschema@.current_tenant());
REVOKE ALL ON @extschema@.tenants FROM PUBLIC;
GRANT SELECT ON @extschema@.tenants TO d5_app;

-- Provisioning (d5_admin).
CREATE FUNCTION @extschema@.create_tenant(name text, plan text) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    new_id uuid;
BEGIN
    IF name IS NULL OR length(btrim(name)) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'tenant name must be 1 to 200 characters' USING ERRCODE = '22023';
    END IF;
    IF plan IS NULL OR plan NOT IN ('free', 'starter', 'pro', 'enterprise') THEN
        RAISE EXCEPTION 'unknown plan %', coalesce(quote_literal(plan), 'NULL') USING ERRCODE = '22023',
            HINT = 'Plans: free, starter, pro, enterprise.';
    END IF;
    INSERT INTO @extschema@.tenants (name, plan) VALUES (btrim(name), plan) RETURNING id INTO new_id;
    RETURN new_id;
END
$$;

CREATE FUNCTION @extschema@._set_tenant_status(tenant uuid, new_status text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE @extschema@.tenants SET status = new_status WHERE id = tenant;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant % does not exist', tenant USING ERRCODE = 'P0002';
    END IF;
END
$$;

CREATE FUNCTION @extschema@.suspend_tenant(tenant uuid) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT @extschema@._set_tenant_status(tenant, 'suspended') $$;

CREATE FUNCTION @extschema@.reactivate_tenant(tenant uuid) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT @extschema@._set_tenant_status(tenant, 'active') $$;
