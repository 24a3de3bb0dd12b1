#!/usr/bin/env bash
# Starts (or reuses) the throwaway demo cluster under target/pg/demo, loads
# sample data for two tenants and shows isolation, audit and cost queries.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck disable=SC1090
source "$(scripts/pgcluster start demo "shared_preload_libraries = 'd5_storage'")"
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL'
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'd5_demo' AND pid <> pg_backend_pid();
DROP DATABASE IF EXISTS d5_demo;
DROP ROLE IF EXISTS demo_app;
DROP ROLE IF EXISTS demo_admin;
DROP ROLE IF EXISTS demo_auditor;
CREATE DATABASE d5_demo;
SQL
psql -X -v ON_ERROR_STOP=1 -d d5_demo -f scripts/demo.sql
cat <<MSG

The demo cluster keeps running (PostgreSQL 15, port $PGPORT, data in target/pg/demo).
  connect:  psql -h 127.0.0.1 -p $PGPORT -U demo_app d5_demo      (or -U postgres)
  stop it:  make demo-stop        (or: scripts/pgcluster stop demo)
MSG
