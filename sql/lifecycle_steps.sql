-- Lifecycle, part 2: the steps of a maintenance run. The Rust executor
-- (src/lifecycle/executor.rs) calls, each in its own transaction when it
-- runs in a background worker:
--   _maint_begin                       take the run lock, record the run
--   _maint_plan(step)                  list the work of one step
--   _maint_do(item)                    do one item under a bounded lock wait, record and audit it
--   _maint_finish                      close the run, prune history, release the run lock
-- Steps, in order: premake, move, rollup, retention, tablespace.
-- Every function runs with TimeZone = UTC: bucket arithmetic and
-- `now - retention` must not depend on the caller's time zone.

CREATE FUNCTION @extschema@._maint_begin(run bigint, "now" timestamptz, mode text, requested_by text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    key    constant bigint := @extschema@._maintenance_lock_key();
    got    boolean;
    holder int;
BEGIN
    -- A run in the caller's transaction holds the lock to its end; a worker
    -- commits step by step, so it holds a session lock until _maint_finish.
    IF mode = 'transaction' THEN
        got := pg_try_advisory_xact_lock(key);
    ELSE
        got := pg_try_advisory_lock(key);
    END IF;
    IF NOT got THEN
        SELECT l.pid INTO holder FROM pg_locks l
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND ((l.classid::bigint << 32) | l.objid::bigint) = key
         LIMIT 1;
        INSERT INTO @extschema@.maintenance_runs (id, as_of, mode, requested_by, status, finished_at, error)
        VALUES (run, "now", mode, requested_by, 'busy', clock_timestamp(),
                format('another maintenance run is in progress (pid %s); this one did nothing', holder));
        INSERT INTO @extschema@.maintenance_actions (run_id, seq, step, action, status, reason, started_at, duration)
        VALUES (run, 1, 'run', 'run', 'skipped',
                format('another maintenance run is in progress (pid %s)', holder), clock_timestamp(), interval '0');
        RETURN false;
    END IF;
    -- We hold the lock, so a run still marked running has died.
    UPDATE @extschema@.maintenance_runs r
       SET status = 'interrupted', finished_at = r.updated_at,
           error = coalesce(r.error, 'the run stopped before finishing (terminated, crashed or cancelled)')
     WHERE r.status = 'running';
    INSERT INTO @extschema@.maintenance_runs (id, as_of, mode, requested_by) VALUES (run, "now", mode, requested_by);
    RETURN true;
END
$$;

CREATE FUNCTION @extschema@._maint_plan(run bigint, step text, "now" timestamptz)
RETURNS TABLE (parent regclass, part regclass, at timestamptz, action text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC'
-- These small catalog queries look costly to the planner; JIT would add a second.
SET jit = off AS $$
#variable_conflict use_variable
DECLARE
    c   record;
    k   record;
    ts  text;
    tso oid;
BEGIN
    UPDATE @extschema@.maintenance_runs r SET step = _maint_plan.step, updated_at = clock_timestamp() WHERE r.id = run;
    IF step = 'premake' THEN
        -- The current bucket and `premake` ahead for every table, and the
        -- rollup targets of pending tenant-days (so rollups never land in a
        -- DEFAULT partition).
        -- Checked by name, as d5._ensure_partition names them: reading every
        -- partition's bounds would be most of a steady-state run.
        RETURN QUERY
        WITH wanted AS (
            SELECT pc.parent AS t, pc.granularity AS g, @extschema@._bucket(pc.granularity, "now", i) AS b
              FROM @extschema@.partition_config pc, generate_series(0, pc.premake) i
            UNION
            SELECT pc.parent, pc.granularity, @extschema@._bucket(pc.granularity, d.day::timestamp AT TIME ZONE 'UTC')
              FROM (SELECT DISTINCT p.day FROM @extschema@.cost_rollup_pending p) d,
                   @extschema@.partition_config pc
             WHERE pc.parent IN ('@extschema@.cost_metrics_hourly'::regclass, '@extschema@.cost_metrics_daily'::regclass,
                                 '@extschema@.cost_metrics_monthly'::regclass))
        SELECT w.t, NULL::regclass, w.b, 'create'::text
          FROM wanted w
         WHERE to_regclass(@extschema@._partition_name(w.t, w.g, w.b)) IS NULL
         ORDER BY w.t::text, w.b;
    ELSIF step = 'move' THEN
        -- Every bucket that has rows in a DEFAULT partition.
        FOR c IN SELECT pc.parent AS t, pc.granularity AS g, pt.partdefid::regclass AS def
                   FROM @extschema@.partition_config pc
                   JOIN pg_partitioned_table pt ON pt.partrelid = pc.parent
                  WHERE pt.partdefid <> 0 ORDER BY pc.parent::text LOOP
            k := @extschema@._partition_key(c.t);
            RETURN QUERY EXECUTE format(
                'SELECT %L::regclass, %L::regclass, b, ''move''::text
                   FROM (SELECT DISTINCT @extschema@._bucket(%L, %s) AS b FROM %s) s ORDER BY b',
                c.t, c.def, c.g,
                CASE WHEN k.is_date THEN format('%I::timestamp AT TIME ZONE ''UTC''', k.key) ELSE quote_ident(k.key) END,
                c.def);
        END LOOP;
    ELSIF step = 'rollup' THEN
        IF EXISTS (SELECT 1 FROM @extschema@.cost_rollup_pending) THEN
            RETURN QUERY SELECT NULL::regclass, NULL::regclass, NULL::timestamptz, 'rollup'::text;
        END IF;
    ELSIF step = 'retention' THEN
        -- Oldest first: an audit partition may only go after every older one.
        RETURN QUERY
        SELECT rp.table_name, x.part, x.lo, rp.action
          FROM @extschema@.retention_policies rp
          JOIN @extschema@.partition_config pc ON pc.parent = rp.table_name
          CROSS JOIN LATERAL @extschema@._partitions(rp.table_name) x
         WHERE NOT x.is_default AND x.hi <= "now" - rp.retention
         ORDER BY rp.table_name::text, x.lo;
    ELSIF step = 'tablespace' THEN
        ts := nullif(current_setting('d5.archive_tablespace', true), '');
        IF ts IS NOT NULL THEN
            SELECT oid INTO tso FROM pg_tablespace WHERE spcname = ts;
            IF tso = (SELECT dattablespace FROM pg_database WHERE datname = current_database()) THEN
                tso := 0;
            END IF;
            RETURN QUERY
            SELECT NULL::regclass, cl.oid::regclass, NULL::timestamptz, 'tablespace'::text
              FROM @extschema@.archived_partitions a
              JOIN pg_class cl ON cl.oid = to_regclass(a.archived_table)
             WHERE tso IS NULL OR cl.reltablespace <> tso
             ORDER BY a.archived_at, a.archived_table;
        END IF;
    ELSE
        RAISE EXCEPTION 'unknown maintenance step %', step USING ERRCODE = '22023';
    END IF;
END
$$;

-- Whether any step has work as of `now`. The caller asks this before
-- starting a worker; reading the DEFAULT partitions takes locks that its
-- transaction would hold while the worker needs them, so the check runs in
-- a subtransaction that is always rolled back, which releases them.
CREATE FUNCTION @extschema@._maint_has_work("now" timestamptz) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    step text;
    found_work boolean := false;
BEGIN
    BEGIN
        FOREACH step IN ARRAY ARRAY['premake', 'move', 'rollup', 'retention', 'tablespace'] LOOP
            IF EXISTS (SELECT 1 FROM @extschema@._maint_plan(0, step, "now")) THEN
                found_work := true;
                EXIT;
            END IF;
        END LOOP;
        RAISE EXCEPTION 'd5: undo the check' USING ERRCODE = 'P0004';
    EXCEPTION WHEN assert_failure THEN
        NULL;
    END;
    RETURN found_work;
END
$$;

-- Makes the partition of `parent` covering `at`, moving its rows out of the
-- DEFAULT partition (d5._ensure_partition). status 'noop' when it exists.
CREATE FUNCTION @extschema@._maint_make(parent regclass, at timestamptz,
    OUT status text, OUT rows bigint, OUT digest text, OUT reason text,
    OUT partition text, OUT range_from timestamptz, OUT range_to timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' AS $$
DECLARE
    made regclass;
    g    text;
BEGIN
    SELECT pc.granularity INTO g FROM @extschema@.partition_config pc WHERE pc.parent = _maint_make.parent;
    range_from := @extschema@._bucket(g, at);
    range_to := @extschema@._bucket(g, at, 1);
    -- By name, as d5._ensure_partition itself decides.
    IF to_regclass(@extschema@._partition_name(parent, g, at)) IS NOT NULL THEN
        status := 'noop';
        RETURN;
    END IF;
    made := @extschema@._ensure_partition(parent, at);
    -- The new partition holds exactly the rows just moved (ATTACH still locks it).
    EXECUTE format('SELECT count(*) FROM %s', made) INTO rows;
    IF rows > 0 THEN
        SELECT c.checksum INTO digest FROM @extschema@.partition_checksum(made) c;
    END IF;
    partition := made::text;
    status := 'done';
END
$$;

-- Drops or archives one partition older than its retention.
CREATE FUNCTION @extschema@._maint_retire(run bigint, parent regclass, part regclass, action text,
    OUT status text, OUT rows bigint, OUT digest text, OUT reason text,
    OUT partition text, OUT range_from timestamptz, OUT range_to timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' AS $$
DECLARE
    pending bigint;
    fk      name;
    base    name;
    target  name;
    n       int := 1;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = part AND i.inhparent = parent) THEN
        status := 'noop';  -- already gone
        RETURN;
    END IF;
    SELECT r.lo, r.hi INTO range_from, range_to FROM @extschema@._partition_range(part) r;
    partition := part::text;
    -- SHARE blocks writers to this (old) partition only, so the checksum is
    -- of exactly the rows that leave; readers go on.
    EXECUTE format('LOCK TABLE %s IN SHARE MODE', part);
    -- Raw and hourly rows are what rollups are computed from.
    IF parent IN ('@extschema@.cost_metrics_raw'::regclass, '@extschema@.cost_metrics_hourly'::regclass) THEN
        SELECT count(*) INTO pending FROM @extschema@.cost_rollup_pending p
         WHERE p.day >= (range_from AT TIME ZONE 'UTC')::date AND p.day < (range_to AT TIME ZONE 'UTC')::date;
        IF pending > 0 THEN
            status := 'skipped';
            reason := format('%s tenant-day(s) in this range are not rolled up yet; retried next run', pending);
            RETURN;
        END IF;
    END IF;
    SELECT c.row_count, c.checksum INTO rows, digest FROM @extschema@.partition_checksum(part) c;
    -- The short exclusive part: every query on the parent waits from here to
    -- this item's commit, so nothing slow happens after it.
    EXECUTE format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', parent);
    IF parent = '@extschema@.audit_log'::regclass THEN
        -- Seal first: the kept chain then starts at a record the seal anchors.
        PERFORM @extschema@._audit_seal(range_to);
    END IF;
    IF action = 'drop' THEN
        EXECUTE format('DROP TABLE %s', part);
    ELSE
        EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', parent, part);
        -- An archive is a snapshot: it must not block deleting what it refers to.
        FOR fk IN SELECT conname FROM pg_constraint WHERE conrelid = part AND contype = 'f' LOOP
            EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', part, fk);
        END LOOP;
        base := (SELECT relname FROM pg_class WHERE oid = part);
        target := base;
        WHILE to_regclass(format('d5_archive.%I', target)) IS NOT NULL LOOP
            n := n + 1;
            target := left(base, 55) || '_' || n;
        END LOOP;
        IF target <> base THEN
            EXECUTE format('ALTER TABLE %s RENAME TO %I', part, target);
        END IF;
        EXECUTE format('ALTER TABLE %s SET SCHEMA d5_archive', part);
        EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', part);
        EXECUTE format('GRANT SELECT ON %s TO d5_auditor, d5_admin', part);
        EXECUTE format('CREATE TRIGGER d5_archive_read_only BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s
                        FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._archive_is_read_only()', part);
        INSERT INTO @extschema@.archived_partitions
               (archived_table, parent_table, range_from, range_to, row_count, checksum, run_id)
        VALUES (part::text, parent::text, range_from, range_to, rows, digest, run);
        partition := part::text;
    END IF;
    status := 'done';
END
$$;

-- Moves an archived table and its indexes to d5.archive_tablespace.
CREATE FUNCTION @extschema@._maint_tablespace(part regclass,
    OUT status text, OUT rows bigint, OUT digest text, OUT reason text,
    OUT partition text, OUT range_from timestamptz, OUT range_to timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ts  text := current_setting('d5.archive_tablespace');
    idx regclass;
BEGIN
    EXECUTE format('ALTER TABLE %s SET TABLESPACE %I', part, ts);
    FOR idx IN SELECT indexrelid::regclass FROM pg_index WHERE indrelid = part LOOP
        EXECUTE format('ALTER INDEX %s SET TABLESPACE %I', idx, ts);
    END LOOP;
    UPDATE @extschema@.archived_partitions a SET tablespace = ts WHERE a.archived_table = part::text
    RETURNING a.row_count, a.checksum, a.range_from, a.range_to INTO rows, digest, range_from, range_to;
    partition := part::text;
    status := 'done';
END
$$;

-- Does one planned item: bounded lock waits with retries and back-off,
-- then records the action (and audits it when something changed).
-- Returns the recorded action; nothing when there was nothing to do.
CREATE FUNCTION @extschema@._maint_do(run bigint, step text, parent regclass, part regclass, at timestamptz,
                                      action text, "now" timestamptz)
RETURNS SETOF @extschema@.maintenance_actions
LANGUAGE plpgsql SECURITY DEFINER
-- lock_timeout is set per attempt below; this clause restores the caller's value on exit.
SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET lock_timeout = '1s' SET jit = off AS $$
#variable_conflict use_variable
DECLARE
    t0       constant timestamptz := clock_timestamp();
    -- The setting reads as text with its unit ('100ms').
    wait_ms  constant int := coalesce(extract(epoch FROM nullif(current_setting('d5.maintenance_lock_timeout', true), '')::interval)
                                      * 1000, 100);
    retries  constant int := coalesce(nullif(current_setting('d5.maintenance_lock_retries', true), '')::int, 2);
    tname    constant text := coalesce(parent::text, CASE WHEN action = 'rollup' THEN '@extschema@.cost_rollup_pending' END);
    attempt  int := 0;
    st       text;
    n        bigint;
    dg       text;
    why      text;
    pname    text;
    lo       timestamptz;
    hi       timestamptz;
    aseq     bigint;
    result   @extschema@.maintenance_actions;
BEGIN
    -- An earlier item on this table could not get its lock or failed: do
    -- not wait again, and never retire a later partition before it.
    IF EXISTS (SELECT 1 FROM @extschema@.maintenance_actions a
                WHERE a.run_id = run AND a.table_name = tname
                  AND (a.status = 'failed' OR (a.status = 'skipped' AND a.reason LIKE 'lock not available%'))) THEN
        st := 'skipped';
        why := 'lock not available: an earlier step on this table in this run could not get its lock or failed; retried next run';
    ELSE
        BEGIN
            LOOP
                attempt := attempt + 1;
                BEGIN
                    PERFORM set_config('lock_timeout', wait_ms || 'ms', true);
                    IF action IN ('create', 'move') THEN
                        SELECT * INTO st, n, dg, why, pname, lo, hi FROM @extschema@._maint_make(parent, at);
                    ELSIF action IN ('drop', 'archive') THEN
                        SELECT * INTO st, n, dg, why, pname, lo, hi FROM @extschema@._maint_retire(run, parent, part, action);
                    ELSIF action = 'tablespace' THEN
                        SELECT * INTO st, n, dg, why, pname, lo, hi FROM @extschema@._maint_tablespace(part);
                    ELSIF action = 'rollup' THEN
                        n := @extschema@._rollup_pending();
                        st := CASE WHEN n > 0 THEN 'done' ELSE 'noop' END;
                    ELSE
                        RAISE EXCEPTION 'unknown maintenance action %', action USING ERRCODE = '22023';
                    END IF;
                    EXIT;
                EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
                    IF attempt > retries THEN
                        st := 'skipped';
                        why := format('lock not available after %s attempt(s) of %s ms (%s); retried next run',
                                      attempt, wait_ms, SQLERRM);
                        EXIT;
                    END IF;
                    -- Back off (jittered, doubling) holding none of the item's locks.
                    PERFORM pg_sleep(least(2.0, wait_ms / 1000.0 * 2 ^ (attempt - 1) * (0.5 + random())));
                END;
            END LOOP;
            IF st = 'noop' THEN
                RETURN;
            END IF;
            IF st = 'done' THEN
                aseq := @extschema@._audit_event(NULL, tname, 'MAINTENANCE', n, dg,
                    jsonb_strip_nulls(jsonb_build_object(
                        'run_id', run, 'step', step, 'action', action, 'partition', pname,
                        'range_from', lo, 'range_to', hi, 'as_of', "now",
                        'requested_by', (SELECT m.requested_by FROM @extschema@.maintenance_runs m WHERE m.id = run))));
            END IF;
        EXCEPTION WHEN OTHERS THEN
            -- Everything this item did is rolled back; the run goes on.
            st := 'failed';
            why := SQLSTATE || ': ' || SQLERRM;
            n := NULL; dg := NULL; aseq := NULL;
        END;
    END IF;
    INSERT INTO @extschema@.maintenance_actions AS a
           (run_id, seq, step, table_name, partition, action, status, rows, range_from, range_to, digest, reason,
            audit_seq, started_at, duration)
    VALUES (run, (SELECT coalesce(max(x.seq), 0) + 1 FROM @extschema@.maintenance_actions x WHERE x.run_id = run),
            step, tname, coalesce(pname, part::text), action, st,
            CASE WHEN st = 'done' THEN n END,
            coalesce(lo, CASE WHEN action IN ('create', 'move') THEN at END), hi,
            CASE WHEN st = 'done' THEN dg END, why, aseq, t0, clock_timestamp() - t0)
    RETURNING a.* INTO result;
    UPDATE @extschema@.maintenance_runs m
       SET actions = m.actions + (st = 'done')::int, skipped = m.skipped + (st = 'skipped')::int,
           failed = m.failed + (st = 'failed')::int, updated_at = clock_timestamp()
     WHERE m.id = run;
    RETURN NEXT result;
END
$$;

CREATE FUNCTION @extschema@._maint_finish(run bigint, error text)
RETURNS @extschema@.maintenance_runs
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    result @extschema@.maintenance_runs;
BEGIN
    UPDATE @extschema@.maintenance_runs r
       SET finished_at = clock_timestamp(), updated_at = clock_timestamp(), step = NULL,
           status = CASE WHEN _maint_finish.error IS NOT NULL OR r.failed > 0 THEN 'failed'
                         WHEN r.skipped > 0 THEN 'partial' ELSE 'ok' END,
           error = coalesce(_maint_finish.error, r.error)
     WHERE r.id = run AND r.status = 'running'
    RETURNING r.* INTO result;
    -- History: runs that did nothing for a day, the others for 400 days.
    DELETE FROM @extschema@.maintenance_runs r
     WHERE r.id <> run AND r.status IN ('ok', 'busy') AND r.actions = 0
       AND r.finished_at < clock_timestamp() - interval '1 day';
    DELETE FROM @extschema@.maintenance_runs r
     WHERE r.id <> run AND r.finished_at < clock_timestamp() - interval '400 days';
    IF result.mode <> 'transaction' THEN
        PERFORM pg_advisory_unlock(@extschema@._maintenance_lock_key());
    END IF;
    RETURN result;
END
$$;

-- The public entry. The work is done by d5._run_maintenance (Rust): in a
-- background worker that commits after every action when it can, else in
-- this transaction (see README "Lifecycle").
CREATE FUNCTION @extschema@.run_maintenance("now" timestamptz DEFAULT now())
RETURNS TABLE (run_id bigint, step text, table_name text, partition text, action text, status text,
               rows bigint, duration interval, digest text, reason text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    run bigint;
BEGIN
    IF run_maintenance."now" IS NULL THEN
        RAISE EXCEPTION 'now must not be NULL' USING ERRCODE = '22023';
    END IF;
    run := @extschema@._run_maintenance(run_maintenance."now");
    RETURN QUERY
    SELECT s.run_id, s.step, s.table_name, s.partition, s.action, s.status, s.rows, s.duration, s.digest, s.reason
      FROM (SELECT a.run_id, a.seq, a.step, a.table_name, a.partition, a.action, a.status, a.rows, a.duration,
                   a.digest, a.reason
              FROM @extschema@.maintenance_actions a WHERE a.run_id = run
            UNION ALL
            -- A closing row for the run as a whole (a busy run has its row already).
            SELECT m.id, 2147483647, 'run', NULL, NULL, 'run', m.status, m.actions::bigint,
                   coalesce(m.finished_at, clock_timestamp()) - m.started_at, NULL, m.error
              FROM @extschema@.maintenance_runs m WHERE m.id = run AND m.status <> 'busy') s
     ORDER BY s.seq;
END
$$;
COMMENT ON FUNCTION @extschema@.run_maintenance(timestamptz) IS
    'Premakes partitions, moves rows out of DEFAULT partitions, rolls up, applies retention; a row per action and a closing run row.';
