-- Fresh database, the extension, and the application login (member of
-- d5_app, no BYPASSRLS, owns nothing). Run against "postgres".
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SELECT count(pg_terminate_backend(pid)) AS terminated FROM pg_stat_activity
 WHERE datname = 'd5_costquery' AND pid <> pg_backend_pid() \gset
DROP DATABASE IF EXISTS d5_costquery;
DROP ROLE IF EXISTS bench_query_app;
CREATE DATABASE d5_costquery;
\c d5_costquery
CREATE EXTENSION d5_storage;
CREATE ROLE bench_query_app LOGIN NOBYPASSRLS IN ROLE d5_app;
CREATE SCHEMA bench;
CREATE TABLE bench.load_info (key text PRIMARY KEY, value text);
