-- Lifecycle, part 1: retention policies, the run/action history, the
-- archive catalog, and helpers (partition bounds, row checksums).
-- The steps of d5.run_maintenance are in lifecycle_steps.sql.

-- Retention per partitioned table: partitions whose whole range is older
-- than now - retention are dropped or archived.
CREATE TABLE @extschema@.retention_policies (
    table_name  regclass    NOT NULL PRIMARY KEY
                            REFERENCES @extschema@.partition_config (parent) ON DELETE CASCADE,
    retention   interval    NOT NULL CHECK (retention >= interval '1 day'),
    action      text        NOT NULL DEFAULT 'drop' CHECK (action IN ('drop', 'archive')),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text        NOT NULL DEFAULT session_user
);
COMMENT ON TABLE @extschema@.retention_policies IS
    'How long each partitioned d5 table keeps its partitions, and whether older ones are dropped or archived (d5_admin edits).';

INSERT INTO @extschema@.retention_policies (table_name, retention, action) VALUES
    ('@extschema@.cost_metrics_raw', interval '7 days', 'drop'),
    ('@extschema@.cost_metrics_hourly', interval '30 days', 'drop'),
    ('@extschema@.cost_metrics_daily', interval '2 years', 'drop'),
    ('@extschema@.cost_metrics_monthly', interval '7 years', 'drop'),
    ('@extschema@.audit_log', interval '7 years', 'archive');

-- pg_dump carries every row (config_dump with no filter); on restore the
-- install-time rows already exist, so an INSERT of a listed table replaces
-- its policy instead of failing. That is how edited defaults survive.
CREATE FUNCTION @extschema@._retention_policy_merge() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE @extschema@.retention_policies p
       SET retention = NEW.retention, action = NEW.action, updated_at = NEW.updated_at, updated_by = NEW.updated_by
     WHERE p.table_name = NEW.table_name;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER retention_policies_merge BEFORE INSERT ON @extschema@.retention_policies
    FOR EACH ROW EXECUTE FUNCTION @extschema@._retention_policy_merge();

CREATE FUNCTION @extschema@._retention_policy_stamp() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- A restore (see the merge trigger) brings its own stamps; keep them.
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
        NEW.updated_by := session_user;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER retention_policies_stamp BEFORE UPDATE ON @extschema@.retention_policies
    FOR EACH ROW EXECUTE FUNCTION @extschema@._retention_policy_stamp();

-- Every policy change is recorded in the system audit chain.
CREATE FUNCTION @extschema@._retention_policy_audit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM @extschema@._audit_event(NULL, '@extschema@.retention_policies', TG_OP, 1, NULL,
        jsonb_build_object('old', CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
                           'new', CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END));
    RETURN NULL;
END
$$;
CREATE TRIGGER retention_policies_audit AFTER INSERT OR UPDATE OR DELETE ON @extschema@.retention_policies
    FOR EACH ROW EXECUTE FUNCTION @extschema@._retention_policy_audit();

-- One row per maintenance run; updated (and, when the run executes in a
-- background worker, committed) after every action, so another session can
-- watch it.
CREATE SEQUENCE @extschema@.maintenance_run_seq;
CREATE TABLE @extschema@.maintenance_runs (
    id           bigint      NOT NULL PRIMARY KEY DEFAULT nextval('@extschema@.maintenance_run_seq'),
    as_of        timestamptz NOT NULL,
    mode         text        NOT NULL CHECK (mode IN ('worker', 'transaction', 'scheduler')),
    requested_by text        NOT NULL,
    pid          int         NOT NULL DEFAULT pg_backend_pid(),
    status       text        NOT NULL DEFAULT 'running'
                             CHECK (status IN ('running', 'ok', 'partial', 'failed', 'busy', 'interrupted')),
    step         text,
    actions      int         NOT NULL DEFAULT 0,
    skipped      int         NOT NULL DEFAULT 0,
    failed       int         NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz,
    error        text
);
COMMENT ON TABLE @extschema@.maintenance_runs IS
    'Maintenance runs: status running/ok/partial (something skipped)/failed/busy (another run held the lock)/interrupted.';

CREATE TABLE @extschema@.maintenance_actions (
    run_id      bigint      NOT NULL REFERENCES @extschema@.maintenance_runs (id) ON DELETE CASCADE,
    seq         int         NOT NULL,
    step        text        NOT NULL,
    table_name  text,
    partition   text,
    action      text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('done', 'skipped', 'failed')),
    rows        bigint,
    range_from  timestamptz,
    range_to    timestamptz,
    digest      text,
    reason      text,
    audit_seq   bigint,
    started_at  timestamptz NOT NULL,
    duration    interval    NOT NULL,
    PRIMARY KEY (run_id, seq)
);
COMMENT ON TABLE @extschema@.maintenance_actions IS
    'What each maintenance run did, a row per action; skipped and failed actions carry the reason.';

-- The runs in progress, for an operator watching from another session.
CREATE VIEW @extschema@.maintenance_progress AS
SELECT r.id AS run_id, r.mode, r.requested_by, r.pid, r.as_of, r.step, r.actions, r.skipped, r.failed,
       r.started_at, clock_timestamp() - r.started_at AS elapsed, r.updated_at AS last_progress_at,
       a.action AS last_action, a.partition AS last_partition, a.status AS last_status
  FROM @extschema@.maintenance_runs r
  LEFT JOIN LATERAL (SELECT x.action, coalesce(x.partition, x.table_name) AS partition, x.status
                       FROM @extschema@.maintenance_actions x WHERE x.run_id = r.id
                      ORDER BY x.seq DESC LIMIT 1) a ON true
 WHERE r.status = 'running';

-- Archived partitions: detached, moved to schema d5_archive, read-only.
CREATE SCHEMA d5_archive;
COMMENT ON SCHEMA d5_archive IS 'd5_storage: partitions retired by retention with action archive (read-only).';
REVOKE ALL ON SCHEMA d5_archive FROM PUBLIC;

CREATE TABLE @extschema@.archived_partitions (
    archived_table text        NOT NULL PRIMARY KEY,
    parent_table   text        NOT NULL,
    range_from     timestamptz NOT NULL,
    range_to       timestamptz NOT NULL,
    row_count      bigint      NOT NULL,
    checksum       text        NOT NULL,
    tablespace     name,
    archived_at    timestamptz NOT NULL DEFAULT now(),
    run_id         bigint
);
COMMENT ON TABLE @extschema@.archived_partitions IS
    'Catalog of archived partitions: range, row count and d5.partition_checksum() at the time of archiving.';

CREATE FUNCTION @extschema@._archive_is_read_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'archived partition %.% is read-only', TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = '42501', HINT = 'Its row count and checksum are recorded in d5.archived_partitions.';
END
$$;

-- Row count and an order-independent checksum of every row of `tbl`:
-- sha256 over the count and the sums of the first two 64-bit words of each
-- row's sha256 (of its text form). Streams, so any partition size works.
-- The settings pin the text form of timestamps, bytea and floats.
CREATE FUNCTION @extschema@.partition_checksum(tbl regclass, OUT row_count bigint, OUT checksum text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD'
SET IntervalStyle = 'postgres' SET bytea_output = 'hex' SET extra_float_digits = 1 AS $$
DECLARE
    a numeric;
    b numeric;
BEGIN
    EXECUTE format($q$
        SELECT count(*), coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0),
               coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)
          FROM (SELECT encode(sha256(convert_to(t::text, 'UTF8')), 'hex') AS h FROM %s t) s$q$, tbl)
        INTO row_count, a, b;
    checksum := 'v1:' || encode(sha256(convert_to(row_count || ':' || a || ':' || b, 'UTF8')), 'hex');
END
$$;
COMMENT ON FUNCTION @extschema@.partition_checksum(regclass) IS
    'Row count and order-independent checksum of a table (as recorded for dropped and archived partitions). Runs as the caller.';

-- The first time of the bucket of width `g` (day/month/year, UTC) holding `at`, plus `n` buckets.
CREATE FUNCTION @extschema@._bucket(g text, at timestamptz, n int DEFAULT 0) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT (date_trunc(g, at AT TIME ZONE 'UTC') + n * ('1 ' || g)::interval) AT TIME ZONE 'UTC'
$$;

-- The name d5._ensure_partition gives the partition of `parent` holding `at`.
CREATE FUNCTION @extschema@._partition_name(parent regclass, g text, at timestamptz) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('@extschema@.%I', c.relname || '_p' || to_char(date_trunc(g, at AT TIME ZONE 'UTC'),
                  CASE g WHEN 'day' THEN 'YYYYMMDD' WHEN 'month' THEN 'YYYYMM' ELSE 'YYYY' END))
      FROM pg_class c WHERE c.oid = parent
$$;

-- The bounds of partition `part` as UTC instants (a date key is read as UTC
-- midnight); NULL for a DEFAULT partition or a table that is no partition.
CREATE FUNCTION @extschema@._partition_range(part regclass, OUT lo timestamptz, OUT hi timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN k.is_date THEN m[1]::date::timestamp AT TIME ZONE 'UTC' ELSE m[1]::timestamptz END,
           CASE WHEN k.is_date THEN m[2]::date::timestamp AT TIME ZONE 'UTC' ELSE m[2]::timestamptz END
      FROM pg_class c
      JOIN pg_inherits i ON i.inhrelid = c.oid
      CROSS JOIN LATERAL (SELECT a.atttypid = 'date'::regtype AS is_date
                            FROM pg_partitioned_table p
                            JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
                           WHERE p.partrelid = i.inhparent) k
      CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), $r$FROM \('([^']*)'\) TO \('([^']*)'\)$r$) m
     WHERE c.oid = part
$$;

-- The partitions of `parent` with their bounds (see _partition_range); the
-- DEFAULT partition has NULL bounds.
CREATE FUNCTION @extschema@._partitions(parent regclass)
RETURNS TABLE (part regclass, lo timestamptz, hi timestamptz, is_default boolean)
LANGUAGE sql STABLE ROWS 50 SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.oid::regclass,
           CASE WHEN k.is_date THEN m[1]::date::timestamp AT TIME ZONE 'UTC' ELSE m[1]::timestamptz END,
           CASE WHEN k.is_date THEN m[2]::date::timestamp AT TIME ZONE 'UTC' ELSE m[2]::timestamptz END,
           m IS NULL
      FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
      CROSS JOIN (SELECT a.atttypid = 'date'::regtype AS is_date
                    FROM pg_partitioned_table p
                    JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
                   WHERE p.partrelid = parent) k
      LEFT JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                     $r$FROM \('([^']*)'\) TO \('([^']*)'\)$r$) m ON true
     WHERE i.inhparent = parent
$$;

-- The partition key column of `parent` and whether it is a date.
CREATE FUNCTION @extschema@._partition_key(parent regclass, OUT key name, OUT is_date boolean)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT a.attname, a.atttypid = 'date'::regtype
      FROM pg_partitioned_table p
      JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
     WHERE p.partrelid = parent
$$;

-- The advisory lock key of a maintenance run (per database, as advisory locks are).
CREATE FUNCTION @extschema@._maintenance_lock_key() RETURNS bigint
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT hashtextextended('d5_storage.run_maintenance', 0)
$$;
