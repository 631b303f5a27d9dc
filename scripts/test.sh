#!/usr/bin/env bash
# The test command: installs the PostgreSQL server if it is missing, starts a throwaway
# cluster (wal_level = logical) on a free loopback port in a temporary directory, checks
# formatting and lints, runs every test against the cluster, and stops it again, leaving
# no process behind even when tests fail. Extra arguments go to `cargo test` (e.g.
# `scripts/test.sh --test replication`). The integration tests run once per store backend.
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/postgres.sh

# What needs no database first: a formatting slip or a lint fails in seconds.
cargo fmt --all --check
cargo clippy --locked --all-targets -- -D warnings

postgres_install_if_missing
postgres_start_cluster          # exports ROWHOOK_TEST_DATABASE_URL and friends
trap postgres_stop_everything EXIT

cargo build --all-targets --locked
# The whole suite on the default store (sled), then the integration tests again on the
# PostgreSQL store (`ROWHOOK_TEST_STORE`, read by the tests' `write_config`): one suite,
# both backends. `ROWHOOK_TEST_STORES=sled` (or `postgres`) runs one of them.
status=0
stores="${ROWHOOK_TEST_STORES:-sled postgres}"
for store in $stores; do
    echo "== tests on the $store store"
    if [ "$store" = sled ]; then
        ROWHOOK_TEST_STORE=sled cargo test --locked --no-fail-fast "$@" 2>&1 || status=1
    else
        ROWHOOK_TEST_STORE="$store" cargo test --locked --no-fail-fast --test '*' "$@" 2>&1 || status=1
    fi
done
exit "$status"
