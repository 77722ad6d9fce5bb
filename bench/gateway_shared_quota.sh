#!/usr/bin/env bash
# `writ gateway` throughput on an API-key route with a usage plan whose quota is counted
# by the gateway alone ("local") against one counted by the server across gateways
# ("shared": leases of admissions, docs/gateway.md#shared-quotas), in one gateway process
# and one run: the same route, the same upstream, two keys that differ only in their plan.
#
# It builds writ (release) unless WRIT_BIN names a binary, starts `writ server` (with
# --audit-file, to count the leases), makes the gateway's token (docs/gateway.md's policy
# plus writ:LeaseQuota), two API keys, a test CA and a 127.0.0.1 certificate, nginx as the
# upstream (bench/gateway/upstream.conf: `return 200 "ok\n"`), and the gateway with one
# api-key route and the plans
#   local:  quota = 1000000000000 per day
#   shared: the same, shared = true (the default lease: 1000 admissions)
# Then ROUNDS rounds of wrk (keep-alive, CONNECTIONS connections, 2 threads, SECONDS each)
# on each key, interleaved A B, B A, A B, ... so that the machine's drifting load falls on
# both alike; each run must see no non-2xx answer. It prints each run's requests per
# second, each round's ratio shared/local, and their median.
#
#   bash bench/gateway_shared_quota.sh [SECONDS] [CONNECTIONS] [ROUNDS]   # defaults 5 32 6
#   WRIT_BIN=/path/to/writ bash bench/gateway_shared_quota.sh               # a built writ
#
# Installs nginx-light and wrk (Debian) when missing. Not run by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/writ/target-bench}"
seconds="${1:-5}"
connections="${2:-32}"
rounds="${3:-6}"

missing=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi
export PATH="$PATH:/usr/sbin"

if [ -n "${WRIT_BIN:-}" ]; then
  writ="$WRIT_BIN"
else
  cargo build --release -q -p writ --bin writ
  writ="$CARGO_TARGET_DIR/release/writ"
fi

dir="$(mktemp -d -t writ-quotabench.XXXXXX)"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP_DIR:-}" ]; then echo "kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench/gateway_shared_quota.sh: $*" >&2; exit 1; }

wait_line() {
  local file="$1" regex="$2" what="$3"
  for _ in $(seq 200); do
    if grep -qE "$regex" "$file" 2>/dev/null; then grep -oE "$regex" "$file" | head -1; return; fi
    sleep 0.05
  done
  die "$what did not start: $(tail -20 "$file" "${file%.out}.err" 2>/dev/null)"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- writ server and the gateway's token ----------------------------------------------------
"$writ" server --data-dir "$dir/data" --trust-domain bench.example --listen 127.0.0.1:0 \
  --audit-file "$dir/audit.jsonl" >"$dir/server.out" 2>"$dir/server.err" </dev/null &
pids+=($!)
server_addr="$(wait_line "$dir/server.out" 'https://[0-9.]+:[0-9]+' "writ server")"
export WRIT_ADDR="$server_addr" WRIT_CACERT="$dir/data/ca.pem" WRIT_TOKEN_FILE="$dir/data/admin-token"
cat >"$dir/gateway-policy.json" <<'EOF'
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["writ:ReadRevocations", "writ:ReadIntentions"], "Resource": "*"},
  {"Effect": "Allow", "Action": "writ:PutAuditEvents", "Resource": ["writ:fn/api", "writ:gateway/no-route"]},
  {"Effect": "Allow", "Action": "writ:LeaseQuota", "Resource": "writ:quotas"}]}
EOF
"$writ" token create --policy "$dir/gateway-policy.json" 2>/dev/null | tr -d '\n' >"$dir/gateway-token"

# --- API keys --------------------------------------------------------------------------------
key() { # key ID PLAN: prints the key; appends its [[api_key]] entry to keys.toml
  "$writ" gateway apikey "$1" --plan "$2" --route api 2>"$dir/$1.entry"
  sed -n '/^\[\[api_key\]\]/,$p' "$dir/$1.entry" >>"$dir/keys.toml"
  echo >>"$dir/keys.toml"
}
local_key="$(key bench-local local)"
shared_key="$(key bench-shared shared)"

# --- the gateway's certificate -----------------------------------------------------------------
mkdir -p "$dir/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$dir/tls/ca.key" -out "$dir/tls/ca.pem" -subj "/CN=quotabench test CA" -days 1 \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$dir/tls/server.key" -out "$dir/tls/server.csr" -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
  >"$dir/tls/server.ext"
openssl x509 -req -in "$dir/tls/server.csr" -CA "$dir/tls/ca.pem" -CAkey "$dir/tls/ca.key" \
  -CAcreateserial -out "$dir/tls/server.pem" -days 1 -extfile "$dir/tls/server.ext" 2>/dev/null

# --- nginx upstream ----------------------------------------------------------------------------
upstream_port="$(free_port)"
mkdir -p "$dir/nginx-upstream-tmp"
sed -e "s|@DIR@|$dir|g" -e "s|@UPSTREAM_PORT@|$upstream_port|g" bench/gateway/upstream.conf \
  >"$dir/upstream.conf"
nginx -e "$dir/nginx-upstream.error.log" -p "$dir" -c "$dir/upstream.conf" \
  >"$dir/nginx.out" 2>&1 </dev/null &
pids+=($!)

# --- writ gateway --------------------------------------------------------------------------------
cat >"$dir/gateway.toml" <<EOF
listen = "127.0.0.1:0"
trust_domain = "bench.example"
state_dir = "$dir/gateway-state"
${GATEWAY_WORKERS:+workers = $GATEWAY_WORKERS}
[server]
addr = "$server_addr"
ca_file = "$dir/data/ca.pem"
token_file = "$dir/gateway-token"
[tls]
cert = "$dir/tls/server.pem"
key = "$dir/tls/server.key"

[[route]]
name = "api"
function = "api"
path_prefix = "/"
upstream = "http://127.0.0.1:$upstream_port"
auth = ["api-key"]

[usage_plan.local]
quota = 1000000000000
quota_period = "1d"

[usage_plan.shared]
quota = 1000000000000
quota_period = "1d"
shared = true

$(cat "$dir/keys.toml")
EOF
WRIT_LOG="${GATEWAY_LOG:-warn}" "$writ" gateway --config "$dir/gateway.toml" \
  >"$dir/gateway.out" 2>"$dir/gateway.err" </dev/null &
pids+=($!)
gateway_addr="$(wait_line "$dir/gateway.out" 'gateway listening on https://[0-9.]+:[0-9]+' "writ gateway")"
gateway_url="${gateway_addr##* }/"
for _ in $(seq 100); do
  code="$(curl -sk -o /dev/null -w '%{http_code}' -H "x-api-key: $local_key" "$gateway_url")"
  [ "$code" = 200 ] && break
  sleep 0.1
done
[ "$code" = 200 ] || die "the gateway does not admit the local key: $code $(tail -5 "$dir/gateway.err")"
code="$(curl -sk -o /dev/null -w '%{http_code}' -H "x-api-key: $shared_key" "$gateway_url")"
[ "$code" = 200 ] || die "the gateway does not admit the shared key: $code $(tail -5 "$dir/gateway.err")"

# --- load ------------------------------------------------------------------------------------------
run() { # run KEY: requests per second of one wrk run; fails on any non-2xx answer
  local out
  out="$(wrk -t2 -c"$connections" -d"${seconds}s" -H "x-api-key: $1" "$gateway_url")"
  if grep -q 'Non-2xx' <<<"$out"; then die "non-2xx answers: $out"; fi
  awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}
echo "writ gateway, API-key route, ${connections} connections, ${seconds} s per run, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %14s %14s %8s\n' round local/s shared/s ratio
ratios=()
for r in $(seq "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then
    a="$(run "$local_key")"; b="$(run "$shared_key")"
  else
    b="$(run "$shared_key")"; a="$(run "$local_key")"
  fi
  ratio="$(python3 -c "print(f'{$b / $a:.3f}')")"
  ratios+=("$ratio")
  printf '%-6s %14s %14s %8s\n' "$r" "$a" "$b" "$ratio"
done
echo "median ratio shared/local: $(printf '%s\n' "${ratios[@]}" | sort -n | python3 -c 'import sys, statistics; print(f"{statistics.median(float(l) for l in sys.stdin):.3f}")')"
leases="$(grep -c '"action":"writ:LeaseQuota"' "$dir/audit.jsonl" || true)"
last="$(grep '"action":"writ:LeaseQuota"' "$dir/audit.jsonl" | tail -1 | python3 -c 'import json, sys; print(json.loads(sys.stdin.read())["event"]["reason"])' 2>/dev/null || true)"
echo "leases audited by the server: $leases; the last: $last"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
