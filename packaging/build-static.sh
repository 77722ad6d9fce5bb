#!/usr/bin/env bash
# Builds `writ` as one static binary (x86_64 Linux, musl libc) and checks it: no dynamic
# section, `writ --version` and `writ dev --help` run. The Dockerfile runs this script for
# its build stage, so where docker is not available its build steps still run the same way:
#
#   bash packaging/build-static.sh [OUT]     # OUT defaults to ./writ-static
#   WRIT_STATIC_PROFILE=dev bash packaging/build-static.sh /tmp/writ   # a quicker debug build
#
# Needs rustup (for the musl target's standard library) and musl-gcc (Debian/Ubuntu:
# musl-tools), which compiles the C in ring, SQLite and mimalloc against musl; both are
# installed when missing and the machine can.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
profile="${WRIT_STATIC_PROFILE:-release}"
out="${1:-writ-static}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

if ! rustc --print target-libdir --target "$target" >/dev/null 2>&1 \
  || [ ! -d "$(rustc --print target-libdir --target "$target")" ]; then
  rustup target add "$target"
fi
if ! command -v musl-gcc >/dev/null; then
  if command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq musl-tools
  else
    echo "build-static: musl-gcc is missing; install musl-tools (or your system's musl gcc wrapper)" >&2
    exit 1
  fi
fi

# The C parts (ring, SQLite, mimalloc) are compiled by musl-gcc; Rust links its own
# self-contained musl startup files, so the result has no interpreter and no NEEDED entries.
export CC_x86_64_unknown_linux_musl=musl-gcc
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER="${CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER:-cc}"
cargo build --locked --profile "$profile" --target "$target" -p writ --bin writ

dir="$profile"
[ "$profile" = dev ] && dir=debug
bin="$CARGO_TARGET_DIR/$target/$dir/writ"

# Static: no program interpreter, no shared libraries.
if command -v readelf >/dev/null; then
  if readelf -l "$bin" | grep -q 'INTERP' || readelf -d "$bin" | grep -q 'NEEDED'; then
    echo "build-static: $bin is not static:" >&2
    readelf -d "$bin" >&2 || true
    exit 1
  fi
fi
"$bin" --version
"$bin" dev --help >/dev/null

mkdir -p "$(dirname "$out")"
cp "$bin" "$out"
echo "build-static: $out ($(wc -c <"$out") bytes, static, $profile profile)"
