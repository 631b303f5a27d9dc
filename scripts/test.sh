#!/usr/bin/env bash
# The test command: installs the PostgreSQL server if it is missing, starts a throwaway
# cluster (wal_level = logical) on a free loopback port in a temporary directory, checks
# formatting and lints, runs every test against the cluster, and stops it again, leaving
# no process behind even when tests fail. Extra arguments go to `cargo test` (e.g.
# `scripts/test.sh --test replication`). The integration tests run once per store backend.
# Without arguments, the fuzz targets run first, ROWHOOK_FUZZ_SECONDS (10) each.
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/postgres.sh

# What needs no database first: a formatting slip or a lint fails in seconds.
cargo fmt --all --check
cargo clippy --locked --all-targets -- -D warnings

status=0
# The fuzz targets (the unit tests under a `::fuzz::` module) need no database either:
# one at a time, so each gets the budget and prints its number of executions. In the
# suite below they only replay their corpus. Skipped when arguments pick tests.
fuzz_seconds="${ROWHOOK_FUZZ_SECONDS:-10}"
if [ $# -eq 0 ] && [ "$fuzz_seconds" != 0 ]; then
    echo "== fuzz targets, $fuzz_seconds s each"
    ROWHOOK_FUZZ_SECONDS="$fuzz_seconds" cargo test --locked --lib ::fuzz:: -- --nocapture \
        --test-threads=1 2>&1 || status=1
fi

postgres_install_if_missing
postgres_start_cluster          # exports ROWHOOK_TEST_DATABASE_URL and friends
trap postgres_stop_everything EXIT

cargo build --all-targets --locked
# The whole suite on the default store (sled), then the integration tests again on the
# PostgreSQL store (`ROWHOOK_TEST_STORE`, read by the tests' `write_config`): one suite,
# both backends. `ROWHOOK_TEST_STORES=sled` (or `postgres`) runs one of them.
stores="${ROWHOOK_TEST_STORES:-sled postgres}"
for store in $stores; do
    echo "== tests on the $store store"
    if [ "$store" = sled ]; then
        ROWHOOK_FUZZ_SECONDS=0 ROWHOOK_TEST_STORE=sled cargo test --locked --no-fail-fast "$@" 2>&1 \
            || status=1
    else
        ROWHOOK_TEST_STORE="$store" cargo test --locked --no-fail-fast --test '*' "$@" 2>&1 || status=1
    fi
done
exit "$status"
