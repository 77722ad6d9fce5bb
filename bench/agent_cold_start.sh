#!/usr/bin/env bash
# Agent cold start: from exec to "ready" (attested, first X.509-SVID, first secret fetched),
# measured from outside the process, N times, against a release writ server on loopback.
# Peer in the same run: one curl HTTPS request to the same server (TLS handshake + a GET).
#   bash bench/agent_cold_start.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/writ/target}"
cargo build --release --quiet -p writ
WRIT="$CARGO_TARGET_DIR/release/writ"
DIR="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$DIR"' EXIT

"$WRIT" server --data-dir "$DIR/data" --trust-domain bench.local --listen 127.0.0.1:0 > "$DIR/server.out" 2>/dev/null &
for _ in $(seq 100); do grep -q listening "$DIR/server.out" && break; sleep 0.1; done
ADDR="$(grep -o 'https://[0-9.:]*' "$DIR/server.out" | tail -1)"
export WRIT_ADDR="$ADDR" WRIT_CACERT="$DIR/data/ca.pem" WRIT_TOKEN_FILE="$DIR/data/admin-token"
cat > "$DIR/policy.json" <<'JSON'
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secrets:GetSecretValue", "Resource": "writ:secret/bench/*"}]}
JSON
"$WRIT" fn register orders --policy "$DIR/policy.json" > /dev/null
printf 'postgres://orders:pw@db/orders' > "$DIR/value"
"$WRIT" secret put bench/db --value-file "$DIR/value" > /dev/null

ms() { echo $(( ($2 - $1) / 1000000 )); }
agent=(); curl_times=()
for i in $(seq "$RUNS"); do
  "$WRIT" token create --fn orders > "$DIR/join"
  t0=$(date +%s%N)
  AWS_SESSION_TOKEN=x "$WRIT" agent --function orders --join-token-file "$DIR/join" \
    --listen 127.0.0.1:0 --prefetch bench/db --exit-when-ready > /dev/null 2>&1
  t1=$(date +%s%N)
  curl -s -o /dev/null --cacert "$WRIT_CACERT" "$ADDR/v1/health"
  t2=$(date +%s%N)
  agent+=("$(ms "$t0" "$t1")"); curl_times+=("$(ms "$t1" "$t2")")
done
stats() { sort -n | awk '{a[NR]=$1} END {printf "median %d ms, p90 %d ms, min %d ms", a[int((NR+1)/2)], a[int(NR*0.9+0.5)], a[1]}'; }
echo "runs: $RUNS   ($(uptime | sed 's/.*load/load/'))"
echo "agent exec -> attested, SVID, first secret, exit: $(printf '%s\n' "${agent[@]}" | stats)"
echo "peer, curl one HTTPS GET to the server:           $(printf '%s\n' "${curl_times[@]}" | stats)"
