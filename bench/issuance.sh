#!/usr/bin/env bash
# SVID issuance and secret reads through the API: starts a release `writ server` on SQLite
# in a temporary directory, then runs the load generator
# (crates/writ-server/examples/issuance_load.rs) against it, for X.509-SVID renewal over
# mTLS, JWT-SVID minting, and authenticated secret reads. For scale, it
# also runs `openssl speed ecdsap256` in the same session: each X.509 issuance costs one
# ECDSA P-256 verification (the CSR) and one signature (the certificate), plus TLS.
#
#   bash bench/issuance.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/writ/target}"
seconds="${1:-10}"
connections="${2:-32}"

cargo build --release -q -p writ --bin writ
cargo build --release -q -p writ-server --example issuance_load
dir="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$dir"' EXIT
"$CARGO_TARGET_DIR/release/writ" server --data-dir "$dir" --trust-domain bench.example \
  --listen 127.0.0.1:0 >"$dir/out" 2>/dev/null &
server=$!
for _ in $(seq 100); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
addr="$(grep -o 'https://[0-9.:]*' "$dir/out")" || { echo "the server did not start" >&2; exit 1; }

for what in x509 jwt secret; do
  "$CARGO_TARGET_DIR/release/examples/issuance_load" --addr "$addr" --data-dir "$dir" \
    --what "$what" --seconds "$seconds" --connections "$connections"
done
echo "peer: openssl speed -seconds 5 ecdsap256 (one core)"
openssl speed -seconds 5 ecdsap256 2>/dev/null | grep -E '^ *256 bits ecdsa'
