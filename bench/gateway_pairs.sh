#!/usr/bin/env bash
# writ gateway against nginx, throughput only, as many short interleaved pairs: the
# setup of bench/gateway.sh (HOLD=1), then PAIRS pairs of SECONDS-long oha loads on
# CONNECTIONS connections, one through the gateway and one through nginx's mTLS proxy,
# their order alternating (writ first, then nginx first, ...) so that a drift in the
# machine's speed falls on both alike. Each load follows a one-second warm-up.
#
# On a shared two-core machine, consecutive 10-second runs of the same proxy differ by
# up to 30 %, and one run of each (bench/gateway.sh) cannot tell a 3 % difference. A pair
# of loads seconds apart sees nearly the same machine, so the ratio within a pair is
# steadier, and many pairs give an interval for it. Prints one JSON line per load, then:
# the ratio's geometric mean with a 95 % interval (Student's t on the log ratios), its
# median, how many pairs writ won (and the two-sided sign test's p), and the CPU each
# process spent per request, by path.
#
#   bash bench/gateway_pairs.sh [PAIRS] [SECONDS] [CONNECTIONS]   # defaults: 20 5 64
#   WRIT_BIN=/tmp/writ-old bash bench/gateway_pairs.sh              # another build of writ
#
# Not run by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
pairs="${1:-20}"
seconds="${2:-5}"
connections="${3:-64}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/writ/target-bench}"
export PATH="$PATH:/usr/sbin:$HOME/.cargo/bin"

work="$(mktemp -d -t writ-gwpairs.XXXXXX)"
hold_pid=""
cleanup() {
  if [ -n "$hold_pid" ]; then
    kill -TERM "$hold_pid" 2>/dev/null || true
    wait "$hold_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

HOLD=1 bash bench/gateway.sh >"$work/env" 2>"$work/setup.err" &
hold_pid=$!
for _ in $(seq 900); do grep -q upstream_pid "$work/env" 2>/dev/null && break; sleep 1; done
grep -q upstream_pid "$work/env" || { cat "$work/setup.err" >&2; exit 1; }
# shellcheck disable=SC1090
source <(grep = "$work/env")
read -r -a tls <<<"$mtls"

# CPU clock ticks (user + system, all threads) used so far by PID and its children.
ticks() {
  local total=0 p u s
  for p in "$1" $(pgrep -P "$1" || true); do
    [ -r "/proc/$p/stat" ] || continue
    read -r u s < <(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12, $13}')
    total=$((total + u + s))
  done
  echo "$total"
}
snapshot() {
  echo "$(ticks "$gateway_pid") $(ticks "$server_pid") $(ticks "$proxy_pid") $(ticks "$upstream_pid")"
}

results="$work/results.jsonl"
# load PAIR PATH URL: one warmed-up load, appended to the results as a JSON line.
load() {
  local pair="$1" path="$2" url="$3" before after
  oha --no-tui -c "$connections" -z 1s "${tls[@]}" "$url" >/dev/null
  before="$(snapshot)"
  python3 -c '
import resource, subprocess, sys
with open(sys.argv[1], "wb") as out:
    subprocess.run(sys.argv[2:], stdout=out, check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(r.ru_utime + r.ru_stime)' "$work/oha.json" oha --no-tui --output-format json \
    -c "$connections" -z "${seconds}s" "${tls[@]}" "$url" >"$work/oha.cpu"
  after="$(snapshot)"
  python3 - "$work/oha.json" "$pair" "$path" "$before" "$after" "$(cat "$work/oha.cpu")" \
    "$(getconf CLK_TCK)" >>"$results" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
hz = int(sys.argv[7])
names = ["gateway", "server", "nginx", "upstream"]
cpu = {n: (int(a) - int(b)) / hz
       for n, b, a in zip(names, sys.argv[4].split(), sys.argv[5].split())}
cpu["oha"] = float(sys.argv[6])
codes = r.get("statusCodeDistribution", {})
print(json.dumps({"pair": int(sys.argv[2]), "path": sys.argv[3],
                  "rps": r["summary"]["requestsPerSec"], "ok": codes.get("200", 0),
                  "other": {k: v for k, v in codes.items() if k != "200"},
                  "errors": {k: v for k, v in r.get("errorDistribution", {}).items()
                             if k != "aborted due to deadline"},
                  "cpu": cpu}))
EOF
  tail -1 "$results" >&2
}

echo "load: $(uptime)" >&2
for pair in $(seq "$pairs"); do
  if [ $((pair % 2)) -eq 1 ]; then
    load "$pair" writ "$gateway_url"
    load "$pair" nginx "$nginx_url"
  else
    load "$pair" nginx "$nginx_url"
    load "$pair" writ "$gateway_url"
  fi
done
echo "load: $(uptime)" >&2

python3 - "$results" "$seconds" "$connections" <<'EOF'
import json, math, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
seconds, connections = sys.argv[2], sys.argv[3]
by = {(r["pair"], r["path"]): r for r in rows}
pairs = sorted({r["pair"] for r in rows})
ratios = [by[(p, "writ")]["rps"] / by[(p, "nginx")]["rps"] for p in pairs]
logs = [math.log(x) for x in ratios]
n = len(logs)
# Student's t, 97.5th percentile, by degrees of freedom (1.96 beyond the table).
T = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26,
     10: 2.23, 11: 2.20, 12: 2.18, 13: 2.16, 14: 2.14, 15: 2.13, 16: 2.12, 17: 2.11,
     18: 2.10, 19: 2.09, 20: 2.09, 25: 2.06, 30: 2.04, 40: 2.02, 60: 2.00, 120: 1.98}
def t975(df):
    return next((T[k] for k in sorted(T) if k >= df), 1.96)
mean = statistics.fmean(logs)
print(f"\n{n} pairs of {seconds} s loads on {connections} connections, order alternating")
print("writ/nginx req/s by pair: " + ", ".join(f"{x:.2f}" for x in ratios))
if n > 1:
    half = t975(n - 1) * statistics.stdev(logs) / math.sqrt(n)
    print(f"geometric mean {math.exp(mean):.3f}, 95 % interval "
          f"{math.exp(mean - half):.3f} to {math.exp(mean + half):.3f}; "
          f"median {statistics.median(ratios):.3f}")
wins = sum(x > 1 for x in ratios)
ties = sum(x == 1 for x in ratios)
m = n - ties
k = min(wins, m - wins)
p = min(1.0, 2 * sum(math.comb(m, i) for i in range(k + 1)) / 2 ** m) if m else 1.0
print(f"writ faster in {wins} of {n} pairs (sign test, two-sided p = {p:.3f})")
us = lambda r, who: r["cpu"][who] / max(r["ok"], 1) * 1e6
for path, who in [("writ", ["gateway", "server", "upstream", "oha"]),
                  ("nginx", ["nginx", "upstream", "oha"])]:
    loads = [by[(p, path)] for p in pairs]
    parts = ", ".join(f"{w} {statistics.fmean(us(r, w) for r in loads):.1f}" for w in who)
    total = statistics.fmean(sum(us(r, w) for w in who) for r in loads)
    print(f"CPU per request through {path}, mean (us): {parts}; all {total:.1f}")
bad = [r for r in rows if r["other"] or r["errors"]]
for r in bad:
    print(f"NOT 200: pair {r['pair']} {r['path']}: {r['other']} {r['errors']}")
EOF
