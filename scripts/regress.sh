#!/usr/bin/env bash
# pg_regress (expected-output SQL tests) against the cluster in $PGHOST/$PGPORT.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGXS=$(/usr/lib/postgresql/15/bin/pg_config --pgxs)
REGRESS=$(dirname "$PGXS")/../test/regress/pg_regress
cd "$ROOT/tests/pg_regress"
tests=$(cd sql && ls ./*.sql | sed 's|^\./||; s|\.sql$||' | sort)
out=$ROOT/target/pg_regress
rm -rf "$out"; mkdir -p "$out"; chmod 777 "$out"
psql -X -q -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres \
    -c "DROP DATABASE IF EXISTS d5_regress WITH (FORCE)" -c "CREATE DATABASE d5_regress"
"$REGRESS" --use-existing --host="$PGHOST" --port="$PGPORT" --user=postgres \
    --inputdir=. --outputdir="$out" --dbname=d5_regress $tests || {
    cat "$out/regression.diffs" 2>/dev/null | head -200; exit 1; }
