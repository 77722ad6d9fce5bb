#!/usr/bin/env bash
# Instructions per request through `writ gateway`, counted by valgrind's callgrind: the
# setup of bench/gateway.sh (HOLD=1), then a second gateway with the same configuration
# under callgrind, a warm-up of 2,000 requests, the counters zeroed, REQUESTS mTLS requests
# from oha on 8 connections, and a dump. Prints the count divided by REQUESTS. The count
# covers the whole gateway (request path, audit sender, sync), not the load tool.
#
#   bash bench/gateway_callgrind.sh [REQUESTS]            # default 20000
#   WRIT_BIN=/tmp/writ-old bash bench/gateway_callgrind.sh  # another build of writ
#   CALLGRIND_OUT=/tmp/gw.cg bash bench/gateway_callgrind.sh  # keeps the dump, for callgrind_annotate
#   git apply bench/gateway/bare-forward.patch && WRIT_BENCH_BARE_FORWARD=1 bash bench/gateway_callgrind.sh
#
# Not run by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${1:-20000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/writ/target-bench}"
export PATH="$PATH:/usr/sbin:$HOME/.cargo/bin"
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }

work="$(mktemp -d -t writ-gwcg.XXXXXX)"
hold_pid=""
cleanup() {
  if [ -n "${valgrind_pid:-}" ]; then
    kill -TERM "$valgrind_pid" 2>/dev/null || true
    wait "$valgrind_pid" 2>/dev/null || true
  fi
  if [ -n "$hold_pid" ]; then
    kill -TERM "$hold_pid" 2>/dev/null || true
    wait "$hold_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

HOLD=1 bash bench/gateway.sh >"$work/env" 2>"$work/setup.err" &
hold_pid=$!
for _ in $(seq 900); do grep -q upstream_pid "$work/env" 2>/dev/null && break; sleep 1; done
grep -q upstream_pid "$work/env" || { cat "$work/setup.err" >&2; exit 1; }
dir="$(grep -o '/tmp/writ-gwbench[^/ ]*' "$work/env" | head -1)"
sed "s|$dir/gateway-state|$dir/gateway-state-callgrind|" "$dir/gateway.toml" >"$work/gateway.toml"

WRIT_LOG=warn valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$work/cg.out" \
  "${WRIT_BIN:-$CARGO_TARGET_DIR/release/writ}" gateway --config "$work/gateway.toml" \
  >"$work/gateway.out" 2>"$work/gateway.err" </dev/null &
valgrind_pid=$!
for _ in $(seq 120); do grep -q "listening on" "$work/gateway.out" 2>/dev/null && break; sleep 1; done
url="$(grep -oE 'https://[0-9.]+:[0-9]+' "$work/gateway.out" | head -1)/"
tls=(--cacert "$dir/tls/ca.pem" --cert "$dir/client.pem" --key "$dir/client.key")
for _ in $(seq 60); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "${tls[@]}" "$url" || true)" = 200 ] && break
  sleep 1
done

oha -n 2000 -c 8 --no-tui "${tls[@]}" "$url" >/dev/null 2>&1
callgrind_control -z "$valgrind_pid" >/dev/null 2>&1
oha -n "$requests" -c 8 --no-tui --output-format json "${tls[@]}" "$url" >"$work/oha.json"
sleep 3   # the audit sender's next tick sends these requests' events
callgrind_control -d "$valgrind_pid" >/dev/null 2>&1
sleep 1
if [ -n "${CALLGRIND_OUT:-}" ]; then cp "$(ls -t "$work"/cg.out.* | head -1)" "$CALLGRIND_OUT"; fi
python3 - "$work/oha.json" "$requests" "$work"/cg.out* <<'PY'
import json, re, sys
oha, n, dumps = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
codes = json.load(open(oha))["statusCodeDistribution"]
total = 0
for d in dumps:
    for line in open(d):
        m = re.match(r"summary: (\d+)", line) or re.match(r"totals: (\d+)", line)
        if m:
            total = max(total, int(m.group(1)))
            break
print(f"status codes: {codes}")
print(f"{total:,} instructions after the warm-up, {total / n:,.0f} per request")
PY
