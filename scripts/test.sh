#!/usr/bin/env bash
# Runs every test of the project: pure-Rust unit tests, integration tests
# against a real cluster (ordinary login roles), pg_regress SQL tests, and
# the in-backend #[pg_test]s. Prints one closing line "N passed, N failed".
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
LOG=$ROOT/target/test-logs
mkdir -p "$LOG"

echo "== building and installing the extension"
cargo pgrx install --pg-config "$PG_CONFIG" --release >"$LOG/install.log" 2>&1 || { tail -50 "$LOG/install.log"; exit 1; }
# The install scripts of released versions, for tests/upgrade.rs.
scripts/install-sql "$PG_CONFIG"

# A fresh cluster for every run, so nothing from an earlier run leaks in.
scripts/pgcluster destroy test
# shellcheck disable=SC1090
# No shared_preload_libraries: every feature but the worker must work without it.
source "$(scripts/pgcluster start test)"
export D5_TEST_PGHOST=$PGHOST D5_TEST_PGPORT=$PGPORT
trap 'scripts/pgcluster stop test' EXIT

status=0
run() { # name, command…
    local name=$1; shift
    echo "== $name"
    if "$@" 2>&1 | tee "$LOG/$name.log"; then :; else status=1; fi
}

run unit cargo test -q --no-fail-fast --workspace --exclude d5_storage
run integration cargo test -q --no-fail-fast -p d5_storage --test '*'
run regress scripts/regress.sh
# The filter keeps cargo pgrx test to the in-backend #[pg_test]s (it would rerun tests/ too).
run pg_test cargo pgrx test pg15 tests::pg_ --runas postgres --pgdata /var/tmp/d5-pgrx/data

# One closing line for CI: totals over every runner above.
passed=0; failed=0
while read -r p f; do passed=$((passed + p)); failed=$((failed + f)); done < <(
    cat "$LOG"/{unit,integration,pg_test}.log 2>/dev/null |
        sed -nE 's/^test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/p')
# pg_regress (PG15) prints "test NAME ... ok" / "... FAILED" per test.
rp=$(grep -cE '\.\.\. ok' "$LOG/regress.log" || true)
rf=$(grep -cE '\.\.\. FAILED' "$LOG/regress.log" || true)
passed=$((passed + ${rp:-0})); failed=$((failed + ${rf:-0}))
[ "$status" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "d5_storage: $passed passed, $failed failed"
exit $status
