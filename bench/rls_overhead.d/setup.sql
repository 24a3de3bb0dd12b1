-- Fresh database, the extension, and two logins with identical privileges
-- (both members of d5_app); they differ only in that bench_explicit has
-- BYPASSRLS, so its queries run with row-level security turned off and name
-- the tenant in an explicit WHERE instead. Run against database "postgres".
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SELECT count(pg_terminate_backend(pid)) AS terminated FROM pg_stat_activity
 WHERE datname = 'd5_bench' AND pid <> pg_backend_pid() \gset
DROP DATABASE IF EXISTS d5_bench;
DROP ROLE IF EXISTS bench_rls;
DROP ROLE IF EXISTS bench_explicit;
CREATE DATABASE d5_bench;
\c d5_bench
CREATE EXTENSION d5_storage;
CREATE ROLE bench_rls      LOGIN NOBYPASSRLS IN ROLE d5_app;
CREATE ROLE bench_explicit LOGIN BYPASSRLS   IN ROLE d5_app;
