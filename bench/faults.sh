#!/usr/bin/env bash
# Reproduces the "Under injected faults" figures of BENCHMARKS.md: issue 13's scenario (1,000
# messages x 5 groups; the sink injects 10% HTTP 500, 5% 429, 5% connection resets and 2% per-event
# failed entries, seeded) published by groupcast with the default attempts and with 8, then by the
# Node publisher as AWS documents it (no retries), each against a fresh sink on 127.0.0.1.
#
# Usage: bash bench/faults.sh   (not part of the test command; ~1 min after the build)
# Knobs: BENCH_FAULT_SEED=13 BENCH_FAULT_MESSAGES=1000 BENCH_OUT=target/bench BENCH_NO_BUILD=1
# Needs: cargo, node >= 20 + npm.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${BENCH_OUT:-$ROOT/target/bench}"
mkdir -p "$OUT"
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    cargo build --release -p groupcast-bench >&2
fi
(cd bench/node && npm ci --no-audit --no-fund --loglevel=error >&2)
echo "== $(date -u '+%Y-%m-%d %H:%M') UTC, commit $(git rev-parse --short HEAD), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
timeout 600 "${CARGO_TARGET_DIR:-$ROOT/target}/release/groupcast-bench" faults \
    --seed "${BENCH_FAULT_SEED:-13}" --messages "${BENCH_FAULT_MESSAGES:-1000}" \
    --node-script bench/node/faults.mjs | tee "$OUT/faults.jsonl"
