#!/usr/bin/env bash
# `writ gateway` under load, against calling the upstream directly and against nginx
# terminating mTLS in front of the same upstream (issue 6, DESIGN.md's gateway target).
#
# It builds writ (release), starts `writ server` in a temporary directory, registers two
# functions (the caller `client` and the destination `echo`), allows client -> echo by an
# intention, makes the gateway's token (the policy of docs/gateway.md), logs `client` in
# with a join token (an openssl key and CSR, POST /v1/login) to get its X.509-SVID, makes a
# test CA and a 127.0.0.1 server certificate with openssl, then starts:
#   - nginx as the upstream: plain HTTP, `return 200 "ok\n"` (bench/gateway/upstream.conf);
#   - nginx terminating mTLS in front of it (bench/gateway/mtls-proxy.conf): TLS 1.3,
#     ssl_verify_client on against writ's trust bundle, an upstream keep-alive pool;
#   - `writ gateway` in front of it (bench/gateway/gateway.toml): one route, auth = ["mtls"].
# Both proxies serve the same certificate and key. The load tool is oha, which presents
# the SVID as its client certificate (--cert/--key); every connection is kept alive.
# For each path: a throughput run (CONNECTIONS connections) and a latency run (one
# connection), each after a warm-up, one load at a time; the added latency of a proxy is
# its p50 (p99) minus the direct p50 (p99) of the same round.
#
#   bash bench/gateway.sh [SECONDS] [CONNECTIONS] [ROUNDS]      # defaults: 10 64 1
#   PERF_DATA=/tmp/gw.perf bash bench/gateway.sh                # also profiles the gateway
#   HOLD=1 bash bench/gateway.sh >/tmp/gw.env                    # sets up, prints, waits
#   WRIT_BIN=/tmp/writ-old bash bench/gateway.sh                  # another build of writ
#   NGINX_LOG=1 bash bench/gateway.sh      # also nginx writing an access log line per request
#   GATEWAY_WORKERS=1 NGINX_WORKERS=1 bash bench/gateway.sh    # one worker each
#   NGINX_REUSEPORT=1 bash bench/gateway.sh  # nginx's connections spread over its workers
#   git apply bench/gateway/bare-forward.patch && WRIT_BENCH_BARE_FORWARD=1 bash bench/gateway.sh
#       # the gateway reduced to forwarding (then: git apply -R bench/gateway/bare-forward.patch)
#   git apply bench/gateway/no-audit.patch && WRIT_BENCH_NO_AUDIT=1 bash bench/gateway.sh
#       # every step but handing the audit record to the sender (the server stores nothing)
#
# Installs nginx (Debian's nginx-light) and oha (crates.io) when missing. Not run by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/writ/target-bench}"
seconds="${1:-10}"
connections="${2:-64}"
rounds="${3:-1}"
warmup="${WARMUP_SECONDS:-2}"

# --- tools ------------------------------------------------------------------------------
missing=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi
export PATH="$PATH:/usr/sbin:$HOME/.cargo/bin"
command -v oha >/dev/null || cargo install oha --locked

# WRIT_BIN: run a writ binary built elsewhere (another commit, for an A/B comparison).
if [ -n "${WRIT_BIN:-}" ]; then
  writ="$WRIT_BIN"
else
  # The release profile strips symbols; a profile needs them (and line tables) back.
  if [ -n "${PERF_DATA:-}" ]; then
    export CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_PROFILE_RELEASE_STRIP=none
  fi
  cargo build --release -q -p writ --bin writ
  writ="$CARGO_TARGET_DIR/release/writ"
fi

# --- processes, cleaned up on any exit ------------------------------------------------------
dir="$(mktemp -d -t writ-gwbench.XXXXXX)"
pids=()
cleanup() {
  local p
  [ -z "${hold_sleep:-}" ] || kill "$hold_sleep" 2>/dev/null || true
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP_DIR:-}" ]; then echo "kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench/gateway.sh: $*" >&2; exit 1; }

# Waits until FILE has a line matching REGEX; prints the first match.
wait_line() {
  local file="$1" regex="$2" what="$3"
  for _ in $(seq 200); do
    if grep -qE "$regex" "$file" 2>/dev/null; then grep -oE "$regex" "$file" | head -1; return; fi
    sleep 0.05
  done
  die "$what did not start: $(cat "$file" "${file%.out}.err" 2>/dev/null | tail -20)"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- writ server, functions, intention, gateway token, SVID ---------------------------------
"$writ" server --data-dir "$dir/data" --trust-domain bench.example --listen 127.0.0.1:0 \
  >"$dir/server.out" 2>"$dir/server.err" </dev/null &
pids+=($!)
server_pid=$!
server_addr="$(wait_line "$dir/server.out" 'https://[0-9.]+:[0-9]+' "writ server")"
export WRIT_ADDR="$server_addr" WRIT_CACERT="$dir/data/ca.pem" WRIT_TOKEN_FILE="$dir/data/admin-token"
"$writ" fn register client >/dev/null
"$writ" fn register echo >/dev/null
"$writ" intention allow client echo >/dev/null
cat >"$dir/gateway-policy.json" <<'EOF'
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["writ:ReadRevocations", "writ:ReadIntentions", "writ:PutAuditEvents"], "Resource": "*"},
  {"Effect": "Allow", "Action": "secrets:GetSecretValue", "Resource": "writ:secret/hooks/*"}]}
EOF
"$writ" token create --policy "$dir/gateway-policy.json" | tr -d '\n' >"$dir/gateway-token"
join_token="$("$writ" token create --fn client | tr -d '\n')"

openssl ecparam -name prime256v1 -genkey -noout -out "$dir/client.key" 2>/dev/null
openssl req -new -key "$dir/client.key" -subj /O=x -out "$dir/client.csr" 2>/dev/null
JOIN_TOKEN="$join_token" python3 - "$dir/client.csr" >"$dir/login.json" <<'EOF'
import json, os, sys
print(json.dumps({"function": "client",
                  "attestation": {"type": "joinToken", "token": os.environ["JOIN_TOKEN"]},
                  "csr": open(sys.argv[1]).read()}))
EOF
curl -sS --fail-with-body --cacert "$dir/data/ca.pem" -H 'content-type: application/json' \
  --data-binary "@$dir/login.json" "$server_addr/v1/login" >"$dir/login-answer.json" \
  || die "login failed: $(cat "$dir/login-answer.json")"
python3 - "$dir" <<'EOF'
import json, sys
d = sys.argv[1]
a = json.load(open(f"{d}/login-answer.json"))
open(f"{d}/client.pem", "w").write(a["x509Svid"])
open(f"{d}/writ-bundle.pem", "w").write(a["x509Bundle"])
EOF

# --- the proxies' server certificate: a test CA and a certificate for 127.0.0.1 ---------------
mkdir -p "$dir/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$dir/tls/ca.key" -out "$dir/tls/ca.pem" -subj "/CN=gwbench test CA" -days 1 \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$dir/tls/server.key" -out "$dir/tls/server.csr" -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
  >"$dir/tls/server.ext"
openssl x509 -req -in "$dir/tls/server.csr" -CA "$dir/tls/ca.pem" -CAkey "$dir/tls/ca.key" \
  -CAcreateserial -out "$dir/tls/server.pem" -days 1 -extfile "$dir/tls/server.ext" 2>/dev/null

# --- nginx: upstream and mTLS proxy ---------------------------------------------------------
upstream_port="${UPSTREAM_PORT:-$(free_port)}"
proxy_port="${PROXY_PORT:-$(free_port)}"
# render SRC DST [NAME PORT ACCESS_LOG]: SRC with this run's values filled in; an nginx
# configuration also gets its instance NAME, listening PORT and access_log directive.
# NGINX_WORKERS and GATEWAY_WORKERS set each proxy's worker count (default: one per
# core for both); NGINX_REUSEPORT=1 gives each nginx worker a listening socket of its own,
# so the kernel spreads connections over them (without it, one worker often takes all 64).
cores="$(nproc)"
gateway_workers="${GATEWAY_WORKERS:+workers = $GATEWAY_WORKERS}"
render() {
  sed -e "s|@DIR@|$dir|g" -e "s|@UPSTREAM_PORT@|$upstream_port|g" \
    -e "s|@SERVER_ADDR@|$server_addr|g" -e "s|@NAME@|${3:-}|g" -e "s|@PROXY_PORT@|${4:-}|g" \
    -e "s|@ACCESS_LOG@|${5:-access_log off;}|g" -e "s|@WORKERS@|${NGINX_WORKERS:-$cores}|g" \
    -e "s|@REUSEPORT@|${NGINX_REUSEPORT:+reuseport}|g" \
    -e "s|@GATEWAY_WORKERS@|$gateway_workers|g" "$1" >"$2"
}
# start_nginx NAME [CONF PORT ACCESS_LOG]: nginx running bench/gateway/CONF.conf (NAME.conf).
start_nginx() {
  local name="$1" conf="${2:-$1}"
  mkdir -p "$dir/nginx-$name-tmp"
  render "bench/gateway/$conf.conf" "$dir/$name.conf" "$name" "${3:-}" "${4:-}"
  nginx -t -q -e "$dir/nginx-$name.error.log" -p "$dir" -c "$dir/$name.conf" \
    || die "nginx $name: bad configuration: $(cat "$dir/nginx-$name.error.log")"
  nginx -e "$dir/nginx-$name.error.log" -p "$dir" -c "$dir/$name.conf" \
    >"$dir/nginx-$name.out" 2>&1 </dev/null &
  pids+=($!)
}
start_nginx upstream
upstream_pid=$!
start_nginx mtls-proxy mtls-proxy "$proxy_port"
proxy_pid=$!
# NGINX_LOG=1: a second nginx proxy, the same but for one access log line per request
# (nginx's default `combined` format, buffered and flushed each second), the nearest
# thing nginx has to the gateway's audit event (which is hash-chained and stored by the
# writ server, so still more work).
log_proxy_pid=""
if [ -n "${NGINX_LOG:-}" ]; then
  log_proxy_port="$(free_port)"
  start_nginx mtls-proxy-log mtls-proxy "$log_proxy_port" \
    "access_log $dir/nginx-access.log combined buffer=64k flush=1s;"
  log_proxy_pid=$!
fi

# --- writ gateway -------------------------------------------------------------------------
render bench/gateway/gateway.toml "$dir/gateway.toml"
WRIT_LOG="${GATEWAY_LOG:-warn}" "$writ" gateway --config "$dir/gateway.toml" \
  >"$dir/gateway.out" 2>"$dir/gateway.err" </dev/null &
pids+=($!)
gateway_pid=$!
gateway_addr="$(wait_line "$dir/gateway.out" 'gateway listening on https://[0-9.]+:[0-9]+' "writ gateway")"
gateway_addr="${gateway_addr##* }"
metrics_addr="$(wait_line "$dir/gateway.out" 'http://[0-9.]+:[0-9]+/metrics' "writ gateway metrics")"

direct_url="http://127.0.0.1:$upstream_port/"
gateway_url="$gateway_addr/"
nginx_url="https://127.0.0.1:$proxy_port/"
nginx_log_url="${log_proxy_pid:+https://127.0.0.1:${log_proxy_port:-}/}"
mtls=(--cacert "$dir/tls/ca.pem" --cert "$dir/client.pem" --key "$dir/client.key")

# Every path answers before the load: the gateway once it has synced the intentions.
check() {
  local url="$1" code=""
  shift
  for _ in $(seq 100); do
    code="$(curl -s -o /dev/null -w '%{http_code}' "$@" "$url" || true)"
    [ "$code" = 200 ] && return
    sleep 0.1
  done
  die "$url answers $code, not 200 (logs in $dir: KEEP_DIR=1 keeps them)"
}
check "$direct_url"
check "$nginx_url" "${mtls[@]}"
[ -z "$nginx_log_url" ] || check "$nginx_log_url" "${mtls[@]}"
check "$gateway_url" "${mtls[@]}"
# ... and refuses a caller without a certificate (unless it is the bare-forward build of
# bench/gateway/bare-forward.patch, which checks nothing).
if [ -z "${WRIT_BENCH_BARE_FORWARD:-}" ]; then
  code="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$dir/tls/ca.pem" "$gateway_url")"
  [ "$code" = 401 ] || die "the gateway answered $code to a request without a certificate"
fi

# HOLD=1: set up, print what to load and the processes, and wait (for profiling by hand).
if [ -n "${HOLD:-}" ]; then
  cat <<EOF2
direct_url=$direct_url
gateway_url=$gateway_url
nginx_url=$nginx_url
nginx_log_url=$nginx_log_url
mtls="${mtls[*]}"
gateway_pid=$gateway_pid server_pid=$server_pid proxy_pid=$proxy_pid upstream_pid=$upstream_pid log_proxy_pid=$log_proxy_pid
EOF2
  echo "holding; Ctrl-C stops" >&2
  # A signal interrupts `wait` (not a foreground sleep), so the cleanup runs at once.
  while :; do
    sleep 3600 &
    hold_sleep=$!
    wait "$hold_sleep" || true
  done
fi

# --- loads ----------------------------------------------------------------------------------
# oha CONNECTIONS SECONDS URL [TLS ARGS]: prints its JSON summary.
load() {
  local c="$1" s="$2" url="$3"
  shift 3
  oha --no-tui --output-format json -c "$c" -z "${s}s" "$@" "$url"
}

# CPU time (clock ticks, all threads) used so far by each PID and its children (nginx's
# workers are the children of the PID started), as USER:SYSTEM.
ticks() {
  local user=0 system=0 p u s
  [ "$#" -gt 0 ] || { echo 0:0; return; }
  for p in "$@" $(pgrep -P "$(echo "$@" | tr ' ' ,)" || true); do
    [ -r "/proc/$p/stat" ] || continue
    read -r u s < <(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12, $13}')
    user=$((user + u))
    system=$((system + s))
  done
  echo "$user:$system"
}
hz="$(getconf CLK_TCK)"
results="$dir/results.jsonl"
run() {
  local round="$1" path="$2" kind="$3" c="$4" url="$5"
  shift 5
  load "$c" "$warmup" "$url" "$@" >/dev/null
  # CPU used during the run by each process (whichever path is loaded): the gateway, the
  # writ server (which stores the gateway's audit events), nginx's mTLS proxy workers, the
  # upstream, the logging nginx proxy's workers (NGINX_LOG=1), and the load tool (its
  # rusage, read by a wrapper).
  local before after
  before="$(ticks "$gateway_pid") $(ticks "$server_pid") $(ticks "$proxy_pid") $(ticks "$upstream_pid") $(ticks $log_proxy_pid)"
  # PERF_DATA=FILE: a `perf record -g` profile of the gateway during its throughput run.
  local perf_pid=""
  if [ -n "${PERF_DATA:-}" ] && [ "$path/$kind" = writ/throughput ]; then
    perf record -g -o "$PERF_DATA" -p "$gateway_pid" -- sleep "$seconds" 2>/dev/null &
    perf_pid=$!
  fi
  python3 -c '
import resource, subprocess, sys
with open(sys.argv[1], "wb") as out:
    subprocess.run(sys.argv[2:], stdout=out, check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(r.ru_utime + r.ru_stime)' "$dir/oha.json" oha --no-tui --output-format json -c "$c" \
    -z "${seconds}s" "$@" "$url" >"$dir/oha.cpu"
  after="$(ticks "$gateway_pid") $(ticks "$server_pid") $(ticks "$proxy_pid") $(ticks "$upstream_pid") $(ticks $log_proxy_pid)"
  [ -z "$perf_pid" ] || wait "$perf_pid" || true
  python3 - "$dir/oha.json" "$round" "$path" "$kind" "$c" "$before" "$after" \
    "$(cat "$dir/oha.cpu")" "$hz" >>"$results" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
hz = int(sys.argv[9])
# CPU seconds used during the run, by process, and of them in user space (the rest is
# the kernel's: TCP on loopback, system calls).
names = ["gateway", "server", "nginx", "upstream", "nginx_log"]
before = [tuple(map(int, t.split(":"))) for t in sys.argv[6].split()]
after = [tuple(map(int, t.split(":"))) for t in sys.argv[7].split()]
cpu = {n: (sum(a) - sum(b)) / hz for n, b, a in zip(names, before, after)}
cpu["oha"] = float(sys.argv[8])
user = {n: (a[0] - b[0]) / hz for n, b, a in zip(names, before, after)}
codes = r.get("statusCodeDistribution", {})
print(json.dumps({"round": int(sys.argv[2]), "path": sys.argv[3], "kind": sys.argv[4],
                  "connections": int(sys.argv[5]),
                  "rps": r["summary"]["requestsPerSec"],
                  "p50": r["latencyPercentiles"]["p50"], "p99": r["latencyPercentiles"]["p99"],
                  "ok": codes.get("200", 0),
                  "cpu": cpu, "user": user,
                  "other": {k: v for k, v in codes.items() if k != "200"},
                  # oha cuts the requests in flight at the deadline: not errors.
                  "errors": {k: v for k, v in r.get("errorDistribution", {}).items()
                             if k != "aborted due to deadline"}}))
EOF
  tail -1 "$results" >&2
}

echo "load: $(uptime)" >&2
for round in $(seq "$rounds"); do
  run "$round" direct throughput "$connections" "$direct_url"
  run "$round" writ throughput "$connections" "$gateway_url" "${mtls[@]}"
  run "$round" nginx throughput "$connections" "$nginx_url" "${mtls[@]}"
  [ -z "$nginx_log_url" ] || run "$round" nginx-log throughput "$connections" "$nginx_log_url" "${mtls[@]}"
  run "$round" direct latency 1 "$direct_url"
  run "$round" writ latency 1 "$gateway_url" "${mtls[@]}"
  run "$round" nginx latency 1 "$nginx_url" "${mtls[@]}"
  [ -z "$nginx_log_url" ] || run "$round" nginx-log latency 1 "$nginx_log_url" "${mtls[@]}"
done
echo "load: $(uptime)" >&2

curl -s "$metrics_addr" | grep -E '^writ_gateway_(requests_total|audit_events_dropped_total)' >"$dir/metrics.txt" || true

# --- table ----------------------------------------------------------------------------------
python3 - "$results" "$dir/metrics.txt" "$seconds" "$connections" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
seconds, connections = sys.argv[3], sys.argv[4]
us = lambda s: s * 1e6
names = {"direct": "direct to the upstream (HTTP)", "writ": "writ gateway (mTLS)",
         "nginx": "nginx (mTLS)", "nginx-log": "nginx (mTLS, access log)"}
for rnd in sorted({r["round"] for r in rows}):
    get = {(r["path"], r["kind"]): r for r in rows if r["round"] == rnd}
    print(f"\nround {rnd}: {seconds} s per run, oha, keep-alive")
    print(f"| path | req/s ({connections} conn) | p50 | p99 | req/s (1 conn) | p50 | p99 | added p50 | added p99 |")
    print("|---|---|---|---|---|---|---|---|---|")
    d = get[("direct", "latency")]
    for p in ["direct", "writ", "nginx", "nginx-log"]:
        if (p, "throughput") not in get:
            continue
        t, l = get[(p, "throughput")], get[(p, "latency")]
        added = ("- | -" if p == "direct"
                 else f"{us(l['p50'] - d['p50']):.0f} us | {us(l['p99'] - d['p99']):.0f} us")
        print(f"| {names[p]} | {t['rps']:,.0f} | {us(t['p50']):.0f} us | {us(t['p99']):.0f} us "
              f"| {l['rps']:,.0f} | {us(l['p50']):.0f} us | {us(l['p99']):.0f} us | {added} |")
    w, n = get[("writ", "throughput")], get[("nginx", "throughput")]
    wl, nl = get[("writ", "latency")], get[("nginx", "latency")]
    print(f"\nwrit/nginx throughput: {w['rps'] / n['rps']:.2f}"
          f"   added p50 writ/nginx: {(wl['p50'] - d['p50']) / (nl['p50'] - d['p50']):.2f}"
          f"   added p99 writ/nginx: {(wl['p99'] - d['p99']) / (nl['p99'] - d['p99']):.2f}")
    # CPU per request during the throughput runs: what each proxy costs, whatever share
    # of the two cores the load tool and the upstream left it.
    per = lambda r, who: us(r["cpu"][who] / max(r["ok"], 1))
    print(f"CPU per request ({connections} conn): writ gateway {per(w, 'gateway'):.1f} us"
          f" + writ server (audit) {per(w, 'server'):.1f} us; nginx {per(n, 'nginx'):.1f} us;"
          f" load tool {per(w, 'oha'):.1f} us (writ) / {per(n, 'oha'):.1f} us (nginx);"
          f" upstream {per(w, 'upstream'):.1f} / {per(n, 'upstream'):.1f} us")
    if "user" in w:
        user = lambda r, who: us(r["user"][who] / max(r["ok"], 1))
        print(f"  of which in user space: writ gateway {user(w, 'gateway'):.1f} us,"
              f" nginx {user(n, 'nginx'):.1f} us (the rest is the kernel's)")
    if ("nginx-log", "throughput") in get:
        g, gl = get[("nginx-log", "throughput")], get[("nginx-log", "latency")]
        print(f"against nginx with an access log: writ/nginx throughput {w['rps'] / g['rps']:.2f}"
              f"   added p50 writ/nginx: {(wl['p50'] - d['p50']) / (gl['p50'] - d['p50']):.2f};"
              f" CPU per request: nginx {per(g, 'nginx_log'):.1f} us,"
              f" load tool {per(g, 'oha'):.1f} us, upstream {per(g, 'upstream'):.1f} us")
    bad = [r for r in rows if r["round"] == rnd and (r["other"] or r["errors"])]
    for r in bad:
        print(f"NOT 200: {r['path']} {r['kind']}: {r['other']} {r['errors']}")
print("\ngateway metrics after the runs:")
print(open(sys.argv[2]).read().rstrip() or "(none)")
EOF
