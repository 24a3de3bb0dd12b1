-- The COPY baseline: bench.plain, one column per CSV header field in header
-- order (PascalCase names kept), typed like the matching d5.cost_metrics_raw
-- column (numeric, timestamptz, jsonb, text), text for x_ columns. No index,
-- no constraint, no trigger, not partitioned, logged. psql variables:
-- header (the CSV header line), app (the login that loads it).
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS bench;
DROP TABLE IF EXISTS bench.plain;
SELECT string_agg(format('%I %s', h, coalesce(a.typ, 'text')), ', ' ORDER BY x.ord) AS cols
  FROM unnest(string_to_array(:'header', ',')) WITH ORDINALITY AS x(h, ord)
  LEFT JOIN (SELECT attname::text AS name, format_type(atttypid, atttypmod) AS typ FROM pg_attribute
              WHERE attrelid = 'd5.cost_metrics_raw'::regclass AND attnum > 0 AND NOT attisdropped) a
         ON a.name = lower(regexp_replace(x.h, '([a-z0-9])([A-Z])', '\1_\2', 'g')) \gset
CREATE TABLE bench.plain (:cols);
GRANT USAGE ON SCHEMA bench TO :"app";
GRANT INSERT, SELECT ON bench.plain TO :"app";
SELECT count(*) FILTER (WHERE format_type(atttypid, atttypmod) <> 'text') AS typed_columns, count(*) AS columns
  FROM pg_attribute WHERE attrelid = 'bench.plain'::regclass AND attnum > 0;
