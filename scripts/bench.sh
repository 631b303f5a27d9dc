#!/usr/bin/env bash
# Benchmarks: `scripts/bench.sh [--baseline REV] capture|deliver …`. Starts a throwaway
# PostgreSQL cluster like the tests do, but durable (fsync and synchronous commit on, as
# a production server), runs the named cargo benches in release mode, and stops the
# cluster again. With --baseline, the delivery benchmark also measures the rowhook built
# from git revision REV (in a worktree under target/), in the same run, side by side.
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/postgres.sh

baseline=
if [ "${1:-}" = "--baseline" ]; then
    baseline="${2:?--baseline needs a git revision}"
    shift 2
fi

if [ -n "$baseline" ]; then
    revision="$(git rev-parse --short "$baseline")"
    worktree="target/baseline-$revision"
    if [ ! -d "$worktree" ]; then
        git worktree add --detach "$worktree" "$revision" >/dev/null
    fi
    (cd "$worktree" && CARGO_TARGET_DIR="$PWD/target" cargo build --release --locked --bin rowhook)
    export ROWHOOK_BENCH_BASELINE="$PWD/$worktree/target/release/rowhook"
fi

postgres_install_if_missing
# Benchmarks measure what a production server does: fsync and synchronous commit on.
POSTGRES_DURABLE=1 postgres_start_cluster
trap postgres_stop_everything EXIT

for bench in "${@:-capture}"; do
    cargo bench --locked --bench "$bench"
done
