#!/usr/bin/env bash
# Durable, batched audit appends: the release example crates/writ-server/examples/audit_append.rs
# with 512, 4096 and 8192 concurrent producers, each waiting until its event is committed
# (one transaction and one signed checkpoint per batch), on SQLite in a temporary directory
# and, when WRIT_BENCH_POSTGRES_URL names a server, on a fresh PostgreSQL database there.
#
#   bash bench/audit.sh [SECONDS]
#   WRIT_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432 bash bench/audit.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/writ/target}"
seconds="${1:-5}"
cargo build --release -q -p writ-server --example audit_append
bin="$CARGO_TARGET_DIR/release/examples/audit_append"
for producers in 512 4096 8192; do
  "$bin" --seconds "$seconds" --producers "$producers"
done
if [ -n "${WRIT_BENCH_POSTGRES_URL:-}" ]; then
  db="writ_bench_$$"
  psql -q "$WRIT_BENCH_POSTGRES_URL/postgres" -c "CREATE DATABASE $db"
  trap 'psql -q "$WRIT_BENCH_POSTGRES_URL/postgres" -c "DROP DATABASE IF EXISTS $db"' EXIT
  for producers in 512 4096 8192; do
    "$bin" --seconds "$seconds" --producers "$producers" --store "$WRIT_BENCH_POSTGRES_URL/$db"
  done
fi
