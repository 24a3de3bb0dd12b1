-- Time partitions shared by every partitioned d5 table: a registry of each
-- parent's granularity, and one function that makes (or completes) the
-- partition covering an instant. Only DEFAULT partitions are made at
-- CREATE EXTENSION, so that pg_dump/pg_restore recreate dated partitions as
-- ordinary tables with their original bounds.

CREATE TABLE @extschema@.partition_config (
    parent      regclass NOT NULL PRIMARY KEY,
    granularity text     NOT NULL CHECK (granularity IN ('day', 'month', 'year')),
    premake     int      NOT NULL CHECK (premake BETWEEN 1 AND 366)
);
COMMENT ON TABLE @extschema@.partition_config IS
    'Partitioned d5 tables: partition width and how many partitions maintenance makes ahead.';

-- Makes the partition of `parent` that covers `at` unless it exists; rows of
-- that range already in the DEFAULT partition are moved into it first (the
-- guards are bypassed for that move only: rows move, none change).
-- session_replication_role = replica (for this function only) keeps the
-- append-only and audit triggers from firing on rows that merely move.
CREATE FUNCTION @extschema@._ensure_partition(parent regclass, at timestamptz) RETURNS regclass
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
REVOKE ALL ON FUNCTION @extschema@._ensure_partition(regclass, timestamptz) FROM PUBLIC;

-- Moves the indexes and unique constraints of a partitioned table down to
-- its partitions: each partition keeps an index of the same name and
-- definition, the parent keeps none (why: see the top of this file). A
-- unique index per partition is still unique over the table, since every
-- such key of a d5 table includes the partition key: equal keys share a
-- partition. Run for every registered table at CREATE EXTENSION (and by an
-- upgrade); returns how many partition indexes it remade.
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
