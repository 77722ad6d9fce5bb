#!/usr/bin/env bash
# writ lint --deps: the cost of loading an advisory database, on a synthetic npm database of
# RECORDS OSV records (default 100,000, ~400 bytes each; OSV's real npm data is of that
# order, malicious-package reports included) and one package-lock.json naming two packages.
# Times the release binary with the database as unpacked by hand (no index: every record
# file is read and searched for the packages' names) and as `writ advisories update` leaves
# it (with .writ-index.tsv: only the records of those packages are opened). Page cache warm.
#
#   bash bench/lint_deps.sh [RECORDS]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/writ/target}"
records="${1:-100000}"
cargo build --release -q -p writ
writ="$CARGO_TARGET_DIR/release/writ"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp" "$records" <<'PY'
import json, os, sys
root, n = sys.argv[1], int(sys.argv[2])
db = os.path.join(root, "db", "npm")
os.makedirs(db)
index = []
for i in range(n):
    rec = {"id": f"TEST-{i}", "summary": "synthetic", "details": "x" * 300,
           "affected": [{"package": {"ecosystem": "npm", "name": f"pkg{i}"},
                         "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.0"}]}]}]}
    with open(os.path.join(db, f"TEST-{i}.json"), "w") as f:
        json.dump(rec, f)
    index.append(f"pkg{i}\tTEST-{i}.json\n")
with open(os.path.join(root, "index.tsv"), "w") as f:
    f.write("".join(index))
os.makedirs(os.path.join(root, "app"))
with open(os.path.join(root, "app", "package-lock.json"), "w") as f:
    json.dump({"lockfileVersion": 3, "packages": {"": {}, "node_modules/pkg5": {"version": "0.5.0"},
                                                   "node_modules/lodash": {"version": "4.17.15"}}}, f)
PY
run() {
  "$writ" lint --deps --advisories-dir "$tmp/db" --format json "$tmp/app" > /dev/null 2>&1 || true
  for i in 1 2 3; do
    /usr/bin/time -f "$1: %e s, max RSS %M KB" "$writ" lint --deps --advisories-dir "$tmp/db" \
      --format json "$tmp/app" 2>&1 > /dev/null | grep -v '^writ lint\|^Command exited' || true
  done
}
run "no index ($records records read)"
cp "$tmp/index.tsv" "$tmp/db/npm/.writ-index.tsv"
echo "{\"downloaded_at\": $(date +%s), \"records\": $records}" > "$tmp/db/npm/.writ-download.json"
run "with the index"
