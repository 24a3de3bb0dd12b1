-- The query d5.verify_audit_chain() reads the log with (src/audit/verify.rs
-- RECORDS, $1 = NULL), run alone: EXPLAIN ANALYZE evaluates every output
-- column (the ::text conversions included) without sending rows anywhere.
-- The function opens it as an SPI cursor without CURSOR_OPT_PARALLEL_OK and
-- with $1 bound to NULL (a custom plan, so the WHERE folds away): hence no
-- parallel workers here and NULL literals. psql variable: enable_sort (on:
-- the plan the function gets; off: the primary key order instead of a sort).
SET max_parallel_workers_per_gather = 0;
SET enable_sort = :enable_sort;
EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF)
SELECT tenant_id, seq, prev_hash, hash,
        (extract(epoch FROM logged_at) * 1000000)::bigint, txid, db_role, actor, table_name,
        operation, row_pk::text, old_row::text, new_row::text, changed_cols::text,
        row_count, rows_digest, detail::text
   FROM d5.audit_log WHERE NULL::uuid IS NULL OR tenant_id = NULL::uuid ORDER BY tenant_id, seq;
