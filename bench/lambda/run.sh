#!/usr/bin/env bash
# Cold-start benchmark of the groupcast publisher Lambda vs a Node.js (Amplify events.post)
# publisher, under the same emulated Lambda Runtime API, publishing to the same local sink.
# Also reports binary and zip sizes of all three functions. Not part of the test command.
#
#   bash bench/lambda/run.sh [RUNS]        # default 20 runs of each, alternating
#
# Needs: cargo-lambda on PATH (or in .venv: pip install cargo-lambda==1.9.2), node >= 20, python3.
# Writes bench/lambda/results.json and prints the figures; bench/lambda/RESULTS.md records a run.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-20}"
if ! command -v cargo-lambda >/dev/null && [ -x .venv/bin/cargo-lambda ]; then
  export PATH="$PWD/.venv/bin:$PATH"
fi
command -v cargo-lambda >/dev/null || { echo "cargo-lambda not found: pip install cargo-lambda==1.9.2" >&2; exit 1; }

echo "== cargo lambda build --release (x86_64, zip)" >&2
cargo lambda build --release --output-format zip -p publisher -p authorizer -p iot-grant >&2

bin_dir=target/lambda
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "== sizes" >&2
printf '| function | binary (bytes) | binary (MiB) | zip (bytes) | zip (MB) |\n|---|---|---|---|---|\n'
for f in publisher authorizer iot-grant; do
  zip="$bin_dir/$f/bootstrap.zip"
  (cd "$work" && rm -f bootstrap && unzip -q -o "$OLDPWD/$zip" bootstrap)
  b=$(stat -c %s "$work/bootstrap"); z=$(stat -c %s "$zip")
  printf '| %s | %d | %.2f | %d | %.2f |\n' "$f" "$b" "$(echo "$b/1048576" | bc -l)" "$z" "$(echo "$z/1000000" | bc -l)"
done
(cd "$work" && rm -f bootstrap && unzip -q -o "$OLDPWD/$bin_dir/publisher/bootstrap.zip" bootstrap)

echo "== node baseline (npm ci)" >&2
[ -d bench/lambda/node/node_modules ] || (cd bench/lambda/node && npm ci --no-audit --no-fund >&2)

echo "== cold start, $runs runs each" >&2
python3 bench/lambda/coldstart.py --rust "$work/bootstrap" --node-dir bench/lambda/node \
  --runs "$runs" --json bench/lambda/results.json
echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "rustc: $(rustc --version); node: $(node --version); cargo-lambda: $(cargo-lambda lambda --version 2>/dev/null || cargo lambda --version)"
