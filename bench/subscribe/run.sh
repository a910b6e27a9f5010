#!/usr/bin/env bash
# The subscriber benchmark (BENCHMARKS.md, "Subscribing"): deliveries per second per CPU core and
# peak memory of ONE subscriber process holding --groups (1,000) group subscriptions on one
# connection, receiving from a local load generator, groupcast beside the official aws-amplify
# Events client doing the same, in alternating order, BENCH_SUB_ROUNDS times each.
#
# Usage: bash bench/subscribe/run.sh          (not part of the test command; ~2 min after the build)
# Knobs (environment): BENCH_SUB_ROUNDS=5 BENCH_SUB_GROUPS=1000 BENCH_SUB_MESSAGES=300000
#   BENCH_SUB_BYTES=100 BENCH_OUT=target/bench BENCH_NO_BUILD=1 (reuse the built binaries)
#   BENCH_SUB_PROFILE=speed (the workspace's opt-level 3 profile: a long-running subscriber is built
#   for speed; `release` is opt-level "s", sized for Lambda)
# Needs: cargo, node >= 20 + npm, openssl. Everything listens on 127.0.0.1 only; the load
# generator serves wss:// with a throwaway self-signed certificate (Amplify connects to wss://
# only), its CA trusted through SSL_CERT_FILE (groupcast) and NODE_EXTRA_CA_CERTS (Node).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
HERE="$ROOT/bench/subscribe"

ROUNDS="${BENCH_SUB_ROUNDS:-5}"
GROUPS_N="${BENCH_SUB_GROUPS:-1000}"
MESSAGES="${BENCH_SUB_MESSAGES:-300000}"
BYTES="${BENCH_SUB_BYTES:-100}"
OUT="${BENCH_OUT:-$ROOT/target/bench}/subscribe"
PROFILE="${BENCH_SUB_PROFILE:-speed}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

for tool in cargo node npm openssl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench/subscribe/run.sh: '$tool' is missing" >&2; exit 1; }
done

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    echo "== building groupcast-bench-subscribe (profile $PROFILE)" >&2
    cargo build --profile "$PROFILE" --locked -p groupcast-bench-subscribe >&2
fi
LOADGEN="$TARGET/$PROFILE/subscribe-loadgen"
SUBSCRIBER="$TARGET/$PROFILE/subscribe-groupcast"
echo "== npm ci (aws-amplify, pinned in bench/subscribe/package-lock.json)" >&2
(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >&2)

mkdir -p "$OUT"
WORK="$(mktemp -d)"
LOADGEN_PID=""
cleanup() {
    if [ -n "$LOADGEN_PID" ] && kill -0 "$LOADGEN_PID" 2>/dev/null; then
        kill "$LOADGEN_PID" 2>/dev/null || true
        wait "$LOADGEN_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# A throwaway CA and a server certificate for 127.0.0.1 signed by it (webpki refuses a self-signed
# CA certificate as the server's own).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=groupcast-bench-ca -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
    -keyout "$WORK/key.pem" -out "$WORK/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$WORK/ext"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
    -days 1 -extfile "$WORK/ext" -out "$WORK/cert.pem" 2>/dev/null

# Runs one client against a fresh load generator; appends its JSON line to rounds.jsonl.
run_one() {
    local client="$1" round="$2"
    : >"$WORK/port"
    "$LOADGEN" --cert "$WORK/cert.pem" --key "$WORK/key.pem" --subscriptions "$GROUPS_N" \
        --messages "$MESSAGES" --bytes "$BYTES" >"$WORK/port" 2>>"$WORK/loadgen.log" &
    LOADGEN_PID=$!
    for _ in $(seq 100); do
        [ -s "$WORK/port" ] && break
        sleep 0.1
    done
    local port
    port="$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$WORK/port")"
    [ -n "$port" ] || { echo "the load generator printed no port" >&2; exit 1; }
    local line
    case "$client" in
        groupcast)
            line="$(SSL_CERT_FILE="$WORK/ca.pem" timeout 600 "$SUBSCRIBER" \
                --url "wss://127.0.0.1:$port" --groups "$GROUPS_N" --messages "$MESSAGES")"
            ;;
        amplify)
            line="$(cd "$HERE" && NODE_EXTRA_CA_CERTS="$WORK/ca.pem" timeout 600 node amplify.mjs \
                --endpoint "https://127.0.0.1:$port/event" --groups "$GROUPS_N" --messages "$MESSAGES")"
            ;;
    esac
    wait "$LOADGEN_PID" || true
    LOADGEN_PID=""
    echo "$line" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);r.round=Number(process.argv[1]);console.log(JSON.stringify(r))})' "$round" >>"$OUT/rounds.jsonl"
    echo "   round $round $client: $line" >&2
}

: >"$OUT/rounds.jsonl"
echo "== $ROUNDS rounds ($PROFILE build): $GROUPS_N subscriptions, $MESSAGES messages of ~$BYTES payload bytes ($(date -u +%T))" >&2
for round in $(seq "$ROUNDS"); do
    # Alternate which client goes first, so a slow spell of the host hits both alike.
    if [ $((round % 2)) = 1 ]; then order="groupcast amplify"; else order="amplify groupcast"; fi
    for client in $order; do run_one "$client" "$round"; done
done

node - "$OUT/rounds.jsonl" "$GROUPS_N" "$MESSAGES" >"$OUT/summary.md" <<'NODE'
const fs = require('node:fs');
const [file, groups, messages] = process.argv.slice(2);
const rows = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const fmt = (x) => Math.round(x).toLocaleString('en-US');
const stats = {};
for (const client of ['groupcast', 'amplify']) {
  const rs = rows.filter((r) => r.client === client);
  const perCore = rs.map((r) => r.messages / r.cpu_s);
  const perSec = rs.map((r) => r.messages / r.wall_s);
  const rss = rs.map((r) => r.peak_rss_kib / 1024);
  const sub = rs.map((r) => r.subscribe_s);
  stats[client] = { perCore, perSec, rss, sub, n: rs.length };
}
const line = (name, s) => `| ${name} | **${fmt(median(s.perCore))}** | ${fmt(Math.min(...s.perCore))}–${fmt(Math.max(...s.perCore))} | ${fmt(median(s.perSec))} | **${median(s.rss).toFixed(1)}** | ${Math.min(...s.rss).toFixed(1)}–${Math.max(...s.rss).toFixed(1)} | ${median(s.sub).toFixed(2)} | ${s.n} |`;
const g = stats.groupcast, a = stats.amplify;
console.log(`${groups} subscriptions on one connection, ${messages} messages per run; medians, with the range over the runs.\n`);
console.log('| subscriber | deliveries/s per CPU core | range | deliveries/s (wall) | peak RSS MiB | range | subscribe all (s) | runs |');
console.log('|---|---:|---|---:|---:|---|---:|---:|');
console.log(line('groupcast `EventsSubscriber`', g));
console.log(line('aws-amplify `events.connect`', a));
console.log(`\nRatio (medians): **${(median(g.perCore) / median(a.perCore)).toFixed(1)}×** the deliveries per CPU core, **1/${(median(a.rss) / median(g.rss)).toFixed(1)}** of the memory.`);
NODE
cat "$OUT/summary.md"
