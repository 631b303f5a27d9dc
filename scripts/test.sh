#!/usr/bin/env bash
# The test command: installs the PostgreSQL server if it is missing, starts a throwaway
# cluster (wal_level = logical) on a free loopback port in a temporary directory, checks
# formatting and lints, runs every test against the cluster, and stops it again, leaving
# no process behind even when tests fail. Extra arguments go to `cargo test` (e.g.
# `scripts/test.sh --test replication`).
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
cargo test --locked --no-fail-fast "$@" 2>&1
