#!/usr/bin/env bash
# The local-stack benchmark (BENCHMARKS.md, "The local stack"): the real `provisioner dev` binary
# on bench/dev/groupcast.toml (ephemeral ports, a temp state dir), measured for
#   1. start-up to ready: spawn to the `groupcast dev ready` line on stderr, BENCH_DEV_STARTS times
#      (the first start makes the CA and keys: reported apart as the cold start);
#   2. per transport (Events, GraphQL), BENCH_DEV_SUBSCRIBERS separate subscriber connections
#      (groupcast's own subscribers; users in BENCH_DEV_USER_GROUPS of 50 groups, tokens from
#      `provisioner dev token`) while groupcast's own Publisher (SigV4 with the stack's local key
#      pair) publishes at BENCH_DEV_RATE messages/s ("paced") and flat out ("flat"): deliveries/s
#      and publish-to-receive latency p50/p99 (the payload carries the publish time);
#   3. the Events baseline in the same rounds, with the same client load: the Node fixture the
#      stack replaces (tests/e2e/events-emulator.mjs, plain ws, API-key publisher).
# Rounds alternate the order of the targets so a slow spell of the host hits all alike.
#
# Usage: bash bench/dev/run.sh            (not part of the test command; ~6 min after the build)
# Knobs: BENCH_DEV_ROUNDS=5 BENCH_DEV_SUBSCRIBERS=1000 BENCH_DEV_USERS=100 BENCH_DEV_USER_GROUPS=10
#   BENCH_DEV_SECONDS=5 BENCH_DEV_RATE=100 BENCH_DEV_CONCURRENCY=16 BENCH_DEV_STARTS=6
#   BENCH_DEV_PROFILE=speed (opt-level 3; `release` is opt-level "s") BENCH_NO_BUILD=1
#   BENCH_DEV_TARGETS="stack-events emulator-events stack-graphql" BENCH_OUT=target/bench
# Needs: cargo, node >= 20 (tests/node_modules for the fixture's `ws`). Everything on 127.0.0.1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
HERE="$ROOT/bench/dev"
ROUNDS="${BENCH_DEV_ROUNDS:-5}"
SUBS="${BENCH_DEV_SUBSCRIBERS:-1000}"
USERS="${BENCH_DEV_USERS:-100}"
PER_USER="${BENCH_DEV_USER_GROUPS:-10}"
SECONDS_PER_PHASE="${BENCH_DEV_SECONDS:-5}"
RATE="${BENCH_DEV_RATE:-100}"
CONCURRENCY="${BENCH_DEV_CONCURRENCY:-16}"
STARTS="${BENCH_DEV_STARTS:-6}"
PROFILE="${BENCH_DEV_PROFILE:-speed}"
TARGETS="${BENCH_DEV_TARGETS:-stack-events emulator-events stack-graphql}"
OUT="${BENCH_OUT:-$ROOT/target/bench}/dev"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
CONFIG="$HERE/groupcast.toml"

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    echo "== building provisioner and dev-load (profile $PROFILE)" >&2
    cargo build --profile "$PROFILE" --locked -p groupcast-provisioner --bin provisioner \
        -p groupcast-bench-subscribe --bin dev-load >&2
fi
PROV="$TARGET/$PROFILE/provisioner"
LOAD="$TARGET/$PROFILE/dev-load"

mkdir -p "$OUT"
WORK="$(mktemp -d)"
STACK_PID=""
EMU_PID=""
stop() { # stop PID-variable-name
    local pid="${!1}"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    eval "$1="
}
cleanup() { stop STACK_PID; stop EMU_PID; cp "$WORK"/stack.err "$OUT"/stack.log 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

STATE="$WORK/state"
PORTS="events=0,graphql=0,iot_wss=0,iot_mqtt=0,aws=0"
# Starts the stack (STACK_PID); sets READY_MS to the milliseconds from spawn to the ready line.
# Not called in $(…): the PID must stay in this shell so that it can be stopped.
READY_MS=""
start_stack() {
    : >"$WORK/stack.err"
    local t0 t1
    t0="$(date +%s%N)"
    "$PROV" --config "$CONFIG" dev --ports "$PORTS" --state-dir "$STATE" \
        --outputs "$WORK/outputs.json" --amplify-outputs "$WORK/amplify_outputs.json" \
        >"$WORK/stack.out" 2>"$WORK/stack.err" &
    STACK_PID=$!
    for _ in $(seq 3000); do
        grep -q '^groupcast dev ready' "$WORK/stack.err" && break
        kill -0 "$STACK_PID" 2>/dev/null || { cat "$WORK/stack.err" >&2; echo "provisioner dev exited" >&2; exit 1; }
        sleep 0.002
    done
    t1="$(date +%s%N)"
    grep -q '^groupcast dev ready' "$WORK/stack.err" || { cat "$WORK/stack.err" >&2; exit 1; }
    READY_MS=$(( (t1 - t0) / 1000000 ))
}

echo "== start-up to ready, $STARTS starts ($(date -u +%T))" >&2
: >"$OUT/startup.jsonl"
for i in $(seq "$STARTS"); do
    start_stack
    ms="$READY_MS"
    self="$(sed -n 's/^groupcast dev ready in \([0-9]*\) ms.*/\1/p' "$WORK/stack.err")"
    echo "{\"start\":$i,\"cold\":$([ "$i" = 1 ] && echo true || echo false),\"spawn_to_ready_ms\":$ms,\"self_reported_ms\":$self}" >>"$OUT/startup.jsonl"
    echo "   start $i: ${ms} ms to the ready line (self-reported ${self} ms)" >&2
    [ "$i" = "$STARTS" ] || stop STACK_PID
done
sed -n 's/^groupcast dev ready.*/&/p' "$WORK/stack.err" >&2

# Users u0..u{USERS-1}, user k in PER_USER consecutive groups of g0..g49 from g{(k*7) mod 50}.
echo "== $USERS users, tokens from provisioner dev token" >&2
: >"$WORK/tokens"
for k in $(seq 0 $((USERS - 1))); do
    groups=""
    for j in $(seq 0 $((PER_USER - 1))); do groups="$groups${groups:+,}g$(( (k * 7 + j) % 50 ))"; done
    token="$("$PROV" --config "$CONFIG" dev token --user "u$k" --groups "$groups" --state-dir "$STATE")"
    echo "u$k $groups $token" >>"$WORK/tokens"
done
CA="$(sed -n 's/.*(CA: \(.*\))$/\1/p' "$WORK/stack.err" | tail -n1)"

# The Node fixture for the Events baseline, and an outputs file pointing Events at it.
API_KEY="da2-benchdevbaseline0000000000"
GROUPCAST_PROVISIONER="$PROV" node "$HERE/emulator.mjs" "$CONFIG" "$API_KEY" >"$WORK/emu.json" 2>"$WORK/emu.err" &
EMU_PID=$!
for _ in $(seq 300); do [ -s "$WORK/emu.json" ] && break; sleep 0.1; done
[ -s "$WORK/emu.json" ] || { cat "$WORK/emu.err" >&2; echo "the Node fixture did not start" >&2; exit 1; }
node -e '
const fs = require("node:fs");
const [outputs, emu, dest] = process.argv.slice(1);
const o = JSON.parse(fs.readFileSync(outputs, "utf8")), e = JSON.parse(fs.readFileSync(emu, "utf8"));
o.events.httpHost = e.httpUrl; o.events.realtimeHost = e.realtimeUrl;
fs.writeFileSync(dest, JSON.stringify(o));' "$WORK/outputs.json" "$WORK/emu.json" "$WORK/emu-outputs.json"

run_target() { # target round
    local target="$1" round="$2" args
    case "$target" in
        stack-events) args=(--transport events --outputs "$WORK/outputs.json" --credentials "$STATE/credentials.json") ;;
        stack-graphql) args=(--transport graphql --outputs "$WORK/outputs.json" --credentials "$STATE/credentials.json") ;;
        emulator-events) args=(--transport events --outputs "$WORK/emu-outputs.json" --api-key "$API_KEY") ;;
    esac
    SSL_CERT_FILE="$CA" timeout 600 "$LOAD" "${args[@]}" --tokens "$WORK/tokens" \
        --subscribers "$SUBS" --rounds 1 --seconds "$SECONDS_PER_PHASE" --rate "$RATE" \
        --concurrency "$CONCURRENCY" 2>>"$OUT/load.err" |
        node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const l of s.trim().split("\n")){const r=JSON.parse(l);r.target=process.argv[1];r.round=Number(process.argv[2]);console.log(JSON.stringify(r))}})' "$target" "$round" |
        tee -a "$OUT/rounds.jsonl" >&2
}

: >"$OUT/rounds.jsonl"
: >"$OUT/load.err"
echo "== $ROUNDS rounds ($PROFILE build): $SUBS subscribers, $USERS users in $PER_USER of 50 groups, ${SECONDS_PER_PHASE} s per phase, paced $RATE msg/s ($(date -u +%T))" >&2
read -r -a order <<<"$TARGETS"
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then list=("${order[@]}"); else list=(); for ((i=${#order[@]}-1; i>=0; i--)); do list+=("${order[$i]}"); done; fi
    for target in "${list[@]}"; do run_target "$target" "$round"; done
done
echo "== done ($(date -u +%T)); load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

node "$HERE/summary.mjs" "$OUT/startup.jsonl" "$OUT/rounds.jsonl" >"$OUT/summary.md"
cat "$OUT/summary.md"
