#!/usr/bin/env bash
# Benchmarks: `scripts/bench.sh capture` (and later ones by name). Starts a throwaway
# PostgreSQL cluster like the tests do, runs the named cargo bench in release mode, and
# stops the cluster again.
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/postgres.sh

postgres_install_if_missing
# Benchmarks measure what a production server does: fsync and synchronous commit on.
POSTGRES_DURABLE=1 postgres_start_cluster
trap postgres_stop_everything EXIT

for bench in "${@:-capture}"; do
    cargo bench --locked --bench "$bench"
done
