#!/usr/bin/env bash
# The demo in one command on a fresh machine: installs the PostgreSQL server with apt
# when it is missing (as scripts/test.sh does), builds rowhook, and runs `rowhook demo`,
# which starts a throwaway cluster of its own and removes everything when it ends.
# Extra arguments go to `rowhook demo` (e.g. `--database-url URL`).
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/postgres.sh

postgres_install_if_missing
cargo build --release --locked --quiet --bin rowhook
ROWHOOK_PG_BINDIR="${ROWHOOK_PG_BINDIR:-$(postgres_bindir)}" exec target/release/rowhook demo "$@"
