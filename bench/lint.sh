#!/usr/bin/env bash
# writ lint throughput: generates a corpus of FILES files (default 10,000: Terraform,
# CloudFormation YAML and JSON, IAM policy JSON; 1-6 KB each, see bench/lint_corpus.py) in a
# temporary directory and times the release `writ lint` over it, with hyperfine when it is
# installed (`cargo install hyperfine --locked`) and /usr/bin/time otherwise. When checkov is
# on PATH (or CHECKOV names it), it is timed once on the same corpus as a peer, offline
# (--skip-download) and limited to its Terraform and CloudFormation frameworks, the formats
# both tools read (checkov does not read standalone IAM policy files).
#
#   bash bench/lint.sh [FILES]
#   CHECKOV=/tmp/checkov-venv/bin/checkov bash bench/lint.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/writ/target}"
files="${1:-10000}"
cargo build --release -q -p writ
writ="$CARGO_TARGET_DIR/release/writ"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 bench/lint_corpus.py "$tmp/corpus" "$files"
# writ lint exits 1 when it finds something, which it does: -i / || true.
"$writ" lint --format json "$tmp/corpus" > "$tmp/findings.json" || true
python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['summary']; print('writ lint:', s['findings'], 'findings in', s['files'], 'files,', s['parse_errors'], 'parse errors')" "$tmp/findings.json"
if command -v hyperfine > /dev/null; then
  hyperfine -N -i --warmup 1 --runs 10 --export-json "$tmp/writ.json" \
    "$writ lint --format json $tmp/corpus" > /dev/null
  mean="$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][0]['mean'])" "$tmp/writ.json")"
  python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f\"writ lint: mean {r['mean']:.3f} s ± {r['stddev']:.3f} (min {r['min']:.3f}, max {r['max']:.3f}, 10 runs)\")" "$tmp/writ.json"
else
  "$writ" lint --format json "$tmp/corpus" > /dev/null || true  # warm the page cache
  for run in 1 2 3; do
    /usr/bin/time -f %e -o "$tmp/time.$run" "$writ" lint --format json "$tmp/corpus" > /dev/null || true
  done
  # time writes "Command exited with non-zero status 1" first when writ lint finds something.
  mean="$(for t in "$tmp"/time.*; do tail -n 1 "$t"; done | python3 -c "import sys; t=[float(x) for x in sys.stdin]; print(sum(t) / len(t))")"
  echo "writ lint: mean $mean s over 3 runs (/usr/bin/time; install hyperfine for statistics)"
fi
python3 -c "import sys; print(f'writ lint: {int(sys.argv[1]) / float(sys.argv[2]):,.0f} files/s')" "$files" "$mean"
checkov="${CHECKOV:-checkov}"
if command -v "$checkov" > /dev/null; then
  echo "checkov $("$checkov" --version 2>/dev/null | tail -1): one run on the same corpus"
  start="$(date +%s.%N)"
  "$checkov" -d "$tmp/corpus" --quiet --compact -o json --skip-download --framework terraform cloudformation \
    > "$tmp/checkov.json" 2> "$tmp/checkov.err" || true
  end="$(date +%s.%N)"
  python3 -c "import sys; t=float(sys.argv[2]) - float(sys.argv[1]); w=float(sys.argv[4]); print(f'checkov: {t:.1f} s, {int(sys.argv[3]) / t:,.0f} files/s; writ lint is {t / w:,.0f}x faster')" "$start" "$end" "$files" "$mean"
else
  echo "checkov: not installed (pip install checkov), peer not measured"
fi
