-- Cost data: FOCUS rows in day-partitioned raw storage, hourly/daily/monthly
-- rollups, ingest bookkeeping. Applications read under RLS and write only
-- through d5.ingest_focus (no direct DML is granted).

CREATE TABLE @extschema@.cost_metrics_raw (
    tenant_id        uuid        NOT NULL,
    cloud_account_id uuid        NOT NULL,
    -- FOCUS 1.2 columns in snake_case, in d5_core::focus::RAW_COLUMNS order
    -- (a test checks the two agree). Money and quantities are numeric.
    availability_zone text,
    billed_cost numeric NOT NULL,
    billing_account_id text NOT NULL,
    billing_account_name text,
    billing_account_type text,
    billing_currency text NOT NULL,
    billing_period_end timestamptz NOT NULL,
    billing_period_start timestamptz NOT NULL,
    capacity_reservation_id text,
    capacity_reservation_status text,
    charge_category text NOT NULL,
    charge_class text,
    charge_description text,
    charge_frequency text,
    charge_period_end timestamptz NOT NULL,
    charge_period_start timestamptz NOT NULL,
    commitment_discount_category text,
    commitment_discount_id text,
    commitment_discount_name text,
    commitment_discount_quantity numeric,
    commitment_discount_status text,
    commitment_discount_type text,
    commitment_discount_unit text,
    consumed_quantity numeric,
    consumed_unit text,
    contracted_cost numeric NOT NULL,
    contracted_unit_price numeric,
    effective_cost numeric NOT NULL,
    host_provider_name text,
    invoice_id text,
    invoice_issuer_name text,
    list_cost numeric NOT NULL,
    list_unit_price numeric,
    pricing_category text,
    pricing_currency text,
    pricing_currency_contracted_unit_price numeric,
    pricing_currency_effective_cost numeric,
    pricing_currency_list_unit_price numeric,
    pricing_quantity numeric,
    pricing_unit text,
    provider_name text NOT NULL,
    publisher_name text,
    region_id text,
    region_name text,
    resource_id text,
    resource_name text,
    resource_type text,
    service_category text,
    service_name text NOT NULL,
    service_subcategory text,
    sku_id text,
    sku_meter text,
    sku_price_details jsonb,
    sku_price_id text,
    sub_account_id text,
    sub_account_name text,
    sub_account_type text,
    tags jsonb,
    ingest_batch_id  uuid        NOT NULL,
    ingested_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, cloud_account_id) REFERENCES @extschema@.cloud_accounts (tenant_id, id),
    CHECK (charge_period_end >= charge_period_start),
    CHECK (billing_period_end >= billing_period_start)
) PARTITION BY RANGE (charge_period_start);
CREATE TABLE @extschema@.cost_metrics_raw_default PARTITION OF @extschema@.cost_metrics_raw DEFAULT;
-- Tenant scans by time, and the replacement key of a billing period.
CREATE INDEX cost_metrics_raw_tenant_time_idx ON @extschema@.cost_metrics_raw (tenant_id, charge_period_start);
CREATE INDEX cost_metrics_raw_period_idx ON @extschema@.cost_metrics_raw
    (tenant_id, cloud_account_id, billing_account_id, billing_period_start);

-- Rollups: the same cost measures summed per tenant, account, period,
-- service, region, charge category and currency. NULL keys are stored as ''
-- so they can be part of the primary key.
CREATE TABLE @extschema@.cost_metrics_hourly (
    tenant_id          uuid        NOT NULL,
    cloud_account_id   uuid        NOT NULL,
    hour               timestamptz NOT NULL,
    service_name       text        NOT NULL,
    region_id          text        NOT NULL,
    charge_category    text        NOT NULL,
    billing_currency   text        NOT NULL,
    billed_cost        numeric     NOT NULL,
    effective_cost     numeric     NOT NULL,
    list_cost          numeric     NOT NULL,
    contracted_cost    numeric     NOT NULL,
    consumed_quantity  numeric,
    pricing_quantity   numeric,
    row_count          bigint      NOT NULL,
    PRIMARY KEY (tenant_id, hour, cloud_account_id, service_name, region_id, charge_category, billing_currency)
) PARTITION BY RANGE (hour);
CREATE TABLE @extschema@.cost_metrics_hourly_default PARTITION OF @extschema@.cost_metrics_hourly DEFAULT;

CREATE TABLE @extschema@.cost_metrics_daily (
    tenant_id          uuid        NOT NULL,
    cloud_account_id   uuid        NOT NULL,
    day                date        NOT NULL,
    service_name       text        NOT NULL,
    region_id          text        NOT NULL,
    charge_category    text        NOT NULL,
    billing_currency   text        NOT NULL,
    billed_cost        numeric     NOT NULL,
    effective_cost     numeric     NOT NULL,
    list_cost          numeric     NOT NULL,
    contracted_cost    numeric     NOT NULL,
    consumed_quantity  numeric,
    pricing_quantity   numeric,
    row_count          bigint      NOT NULL,
    PRIMARY KEY (tenant_id, day, cloud_account_id, service_name, region_id, charge_category, billing_currency)
) PARTITION BY RANGE (day);
CREATE TABLE @extschema@.cost_metrics_daily_default PARTITION OF @extschema@.cost_metrics_daily DEFAULT;

CREATE TABLE @extschema@.cost_metrics_monthly (
    tenant_id          uuid        NOT NULL,
    cloud_account_id   uuid        NOT NULL,
    month              date        NOT NULL,
    service_name       text        NOT NULL,
    region_id          text        NOT NULL,
    charge_category    text        NOT NULL,
    billing_currency   text        NOT NULL,
    billed_cost        numeric     NOT NULL,
    effective_cost     numeric     NOT NULL,
    list_cost          numeric     NOT NULL,
    contracted_cost    numeric     NOT NULL,
    consumed_quantity  numeric,
    pricing_quantity   numeric,
    row_count          bigint      NOT NULL,
    PRIMARY KEY (tenant_id, month, cloud_account_id, service_name, region_id, charge_category, billing_currency)
) PARTITION BY RANGE (month);
CREATE TABLE @extschema@.cost_metrics_monthly_default PARTITION OF @extschema@.cost_metrics_monthly DEFAULT;

-- Which tenant-days an ingest touched and the rollups have not caught up with.
CREATE TABLE @extschema@.cost_rollup_pending (
    tenant_id uuid NOT NULL,
    day       date NOT NULL,
    PRIMARY KEY (tenant_id, day)
);

-- One row per ingest call, and every rejected row with its reason.
CREATE TABLE @extschema@.ingest_batches (
    tenant_id        uuid        NOT NULL,
    id               uuid        NOT NULL,
    cloud_account_id uuid        NOT NULL,
    ingested_at      timestamptz NOT NULL DEFAULT now(),
    inserted         bigint      NOT NULL,
    rejected         bigint      NOT NULL,
    replaced         bigint      NOT NULL,
    ignored_columns  text[]      NOT NULL DEFAULT '{}',
    rows_digest      text        NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, cloud_account_id) REFERENCES @extschema@.cloud_accounts (tenant_id, id)
);

CREATE TABLE @extschema@.ingest_rejects (
    tenant_id    uuid        NOT NULL,
    batch_id     uuid        NOT NULL,
    line_number  bigint      NOT NULL,
    column_name  text,
    reason       text        NOT NULL,
    raw_line     text,
    PRIMARY KEY (tenant_id, batch_id, line_number),
    FOREIGN KEY (tenant_id, batch_id) REFERENCES @extschema@.ingest_batches (tenant_id, id)
);

INSERT INTO @extschema@.partition_config (parent, granularity, premake) VALUES
    ('@extschema@.cost_metrics_raw', 'day', 14),
    ('@extschema@.cost_metrics_hourly', 'day', 14),
    ('@extschema@.cost_metrics_daily', 'month', 3),
    ('@extschema@.cost_metrics_monthly', 'year', 2),
    ('@extschema@.audit_log', 'year', 2);

SELECT @extschema@.enable_tenancy(format('@extschema@.%I', t)::regclass, 'SELECT')
FROM unnest(ARRAY['cost_metrics_raw', 'cost_metrics_hourly', 'cost_metrics_daily', 'cost_metrics_monthly',
                  'cost_rollup_pending', 'ingest_batches', 'ingest_rejects']) t;
