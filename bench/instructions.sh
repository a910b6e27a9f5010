#!/usr/bin/env bash
# Instructions per request of each `groupcast-bench sign` phase, counted by valgrind's callgrind.
# Unlike the µs figures, these do not move with the load on a shared machine: the same binary
# and inputs give the same counts, so they show what a code change did to the signing path.
#
# Each phase runs twice, with N and 6N calls; (count(6N) - count(N)) / 5N cancels start-up.
#
# Usage: bash bench/instructions.sh            (~2 min after the build; not part of the tests)
# Knobs: BENCH_ITER=200 (N), BENCH_NO_BUILD=1 (use target/profiling/groupcast-bench as built)
# Needs: valgrind (Debian package `valgrind`), cargo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
N="${BENCH_ITER:-200}"
command -v valgrind >/dev/null || { echo "bench/instructions.sh: valgrind is missing (apt-get install valgrind)" >&2; exit 1; }

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    # The release profile with symbols kept (`[profile.profiling]` in Cargo.toml): same code.
    cargo build --profile profiling -p groupcast-bench >&2
fi
BENCH="$ROOT/target/profiling/groupcast-bench"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

count() { # phase iterations -> total instructions of the run
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" \
        "$BENCH" sign --phase "$1" --iterations "$2" >/dev/null 2>"$WORK/valgrind.txt"
    sed -n 's/^summary: //p' "$WORK/cg.out"
}

echo "| phase | instructions per request |"
echo "|---|---:|"
for phase in total sign sha256-work signing-key; do
    a="$(count "$phase" "$N")"
    b="$(count "$phase" $((6 * N)))"
    echo "| $phase | $(( (b - a) / (5 * N) )) |"
done
