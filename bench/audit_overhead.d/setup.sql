-- Fresh database, the extension, and the application login (member of
-- d5_app, no BYPASSRLS, not the owner of anything). Run against "postgres".
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SELECT count(pg_terminate_backend(pid)) AS terminated FROM pg_stat_activity
 WHERE datname = 'd5_audbench' AND pid <> pg_backend_pid() \gset
DROP DATABASE IF EXISTS d5_audbench;
DROP ROLE IF EXISTS bench_audit_app;
CREATE DATABASE d5_audbench;
\c d5_audbench
CREATE EXTENSION d5_storage;
CREATE ROLE bench_audit_app LOGIN NOBYPASSRLS IN ROLE d5_app;
-- As partition maintenance would: the current year's audit partition
-- (CREATE EXTENSION makes only the DEFAULT one). Skipped if this version of
-- the extension has no d5._ensure_partition.
SELECT CASE WHEN to_regprocedure('d5._ensure_partition(regclass, timestamptz)') IS NOT NULL
            THEN 'd5._ensure_partition(''d5.audit_log'', now())' END AS ensure \gset
\if :{?ensure}
SELECT :ensure AS made \gset
\endif
