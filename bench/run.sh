#!/usr/bin/env bash
# Reproduces every figure in BENCHMARKS.md:
#   1. SigV4 sign + serialize per Events publish of 5 events (groupcast's own code path), sign
#      alone, and the SHA-256 work that signature requires (the floor any signer pays);
#   2. the sink's raw capacity: wrk replaying one request groupcast signed, against nginx;
#   3. the Node.js baseline publisher (@smithy/signature-v4 + fetch), as AWS documents it;
#   4. groupcast publishing 5-event batches with IAM auth to the same sink.
# Each throughput figure is the median of BENCH_ROUNDS rounds; the rounds interleave the
# publishers so that load from other processes on the machine hits all of them alike.
#
# Usage: bash bench/run.sh            (not part of the test command; takes ~3-4 min after the build)
# Knobs (environment): BENCH_DURATION=10 BENCH_WARMUP=2 BENCH_CONCURRENCY=64 BENCH_ROUNDS=3
#   BENCH_DATA_BYTES=100 BENCH_NGINX_WORKERS=auto BENCH_WRK_THREADS=2 BENCH_OUT=target/bench
#   BENCH_NO_BUILD=1 (use the release binary already in target/release)
# Needs: nginx and wrk (Debian packages `nginx`, `wrk`), node >= 20 + npm, python3, cargo.
# Everything listens on 127.0.0.1 only and is stopped by this script.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DURATION="${BENCH_DURATION:-10}"
WARMUP="${BENCH_WARMUP:-2}"
CONCURRENCY="${BENCH_CONCURRENCY:-64}"
ROUNDS="${BENCH_ROUNDS:-3}"
DATA_BYTES="${BENCH_DATA_BYTES:-100}"
NGINX_WORKERS="${BENCH_NGINX_WORKERS:-auto}"
WRK_THREADS="${BENCH_WRK_THREADS:-2}"
OUT="${BENCH_OUT:-$ROOT/target/bench}"

for tool in nginx wrk node npm python3 cargo; do
    if ! command -v "$tool" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$tool" ]; then
        echo "bench/run.sh: '$tool' is missing (Debian: apt-get install nginx wrk; Node 20 + npm; python3)" >&2
        exit 1
    fi
done
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    echo "== building groupcast-bench (release) and the Node baseline" >&2
    cargo build --release -p groupcast-bench >&2
fi
BENCH="$ROOT/target/release/groupcast-bench"
(cd bench/node && npm ci --no-audit --no-fund --loglevel=error >&2)

mkdir -p "$OUT"
WORK="$(mktemp -d)"
chmod 755 "$WORK" # nginx workers may run as another user
NGINX_PID=""
cleanup() {
    if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill "$NGINX_PID"
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT/event"
sed -e "s#@PREFIX@#$WORK#g" -e "s#@PORT@#$PORT#g" -e "s#@WORKERS@#$NGINX_WORKERS#g" \
    bench/nginx/sink.conf.template >"$WORK/sink.conf"
"$NGINX" -p "$WORK" -c "$WORK/sink.conf" &
NGINX_PID=$!
for _ in $(seq 50); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2)" 2>/dev/null; then break; fi
    sleep 0.1
done
kill -0 "$NGINX_PID" || { echo "bench/run.sh: nginx did not start:" >&2; cat "$WORK/error.log" >&2; exit 1; }
echo "== sink: nginx (workers: $NGINX_WORKERS) on $URL" >&2

LIMIT=$((WARMUP + DURATION + 30)) # hard bound on every timed step
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"

echo "== SigV4 sign + serialize (groupcast)" >&2
timeout 300 "$BENCH" sign --data-bytes "$DATA_BYTES" | tee "$OUT/sign.json"

"$BENCH" wrk-script --url "$URL" --data-bytes "$DATA_BYTES" >"$WORK/request.lua"

: >"$OUT/rounds.jsonl"
for round in $(seq "$ROUNDS"); do
    echo "== round $round/$ROUNDS: wrk (sink capacity)" >&2
    timeout "$LIMIT" wrk -t"$WRK_THREADS" -c"$CONCURRENCY" -d"${DURATION}s" -s "$WORK/request.lua" "$URL" >"$WORK/wrk.txt"
    python3 - "$WORK/wrk.txt" "$CONCURRENCY" "$round" >>"$OUT/rounds.jsonl" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
errors = re.search(r"Socket errors:.*", text)
print(json.dumps({"publisher": "wrk (sink capacity)", "round": int(sys.argv[3]),
                  "concurrency": int(sys.argv[2]), "requests_per_s": round(rps),
                  "events_per_s": round(rps * 5),
                  "errors": int(non2xx.group(1)) if non2xx else 0,
                  "socket_errors": errors.group(0) if errors else None}))
PY
    tail -n1 "$OUT/rounds.jsonl" >&2

    for hash in js node; do
        echo "== round $round/$ROUNDS: Node publisher (--hash $hash)" >&2
        timeout "$LIMIT" node bench/node/publish.mjs --url "$URL" --concurrency "$CONCURRENCY" \
            --duration "$DURATION" --warmup "$WARMUP" --data-bytes "$DATA_BYTES" --hash "$hash" \
            | python3 -c "import json,sys; d=json.loads(sys.stdin.read()); d['round']=$round; print(json.dumps(d))" \
            >>"$OUT/rounds.jsonl"
        tail -n1 "$OUT/rounds.jsonl" >&2
    done

    # groupcast, then two reqwest-only rows that apportion its cost (see BENCHMARKS.md).
    for client in groupcast reqwest-signed reqwest-presigned; do
        echo "== round $round/$ROUNDS: $client publisher" >&2
        timeout "$LIMIT" "$BENCH" publish --client "$client" --url "$URL" --concurrency "$CONCURRENCY" \
            --duration "$DURATION" --warmup "$WARMUP" --data-bytes "$DATA_BYTES" \
            | python3 -c "import json,sys; d=json.loads(sys.stdin.read()); d['round']=$round; print(json.dumps(d))" \
            >>"$OUT/rounds.jsonl"
        tail -n1 "$OUT/rounds.jsonl" >&2
    done
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$OUT/sign.json" "$OUT/rounds.jsonl" "$LOAD_START" "$LOAD_END" "$CONCURRENCY" "$DURATION" "$ROUNDS" "$NGINX_WORKERS" "$WRK_THREADS" <<'PY' | tee "$OUT/summary.md"
import json, statistics, sys, datetime, os, platform
sign = json.loads(open(sys.argv[1]).read())
load_start, load_end, conc, dur, rounds, ngx, wrkt = sys.argv[3:10]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
rows = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
order = []
for r in rows:
    if r["publisher"] not in order:
        order.append(r["publisher"])
med = {}
print(f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores ({cpu}); "
      f"kernel {platform.release()}; load average (1/5/15 min) at start {load_start}, at end {load_end}")
print(f"concurrency {conc}; {dur} s measured per run after warm-up; {rounds} rounds, interleaved; "
      f"nginx worker_processes {ngx}; wrk -t{wrkt}")
print()
def phase(label, x):
    print(f"{label}: median {x['median_us']:.1f} µs (p10 {x['p10_us']:.1f}, p90 {x['p90_us']:.1f}, "
          f"p99 {x['p99_us']:.1f}; CPU-time mean {x['cpu_mean_us']:.1f} µs; {x['samples']} samples)")
print(f"One Events publish of 5 events: {sign['body_bytes']} byte body, "
      f"{sign['canonical_request_bytes']} byte canonical request")
phase("serialize + SigV4 sign", sign["total"])
phase("SigV4 sign alone", sign["sign_only"])
phase("the SHA-256 work of that signature (floor)", sign["sha256_work"])
phase("signing key derivation alone", sign["signing_key"])
print()
print("| publisher | events/s (median) | requests/s (median) | rounds (events/s) | errors |")
print("|---|---:|---:|---|---:|")
for p in order:
    rs = [r for r in rows if r["publisher"] == p]
    ev = statistics.median(r["events_per_s"] for r in rs)
    rq = statistics.median(r["requests_per_s"] for r in rs)
    med[p] = (ev, rq)
    print(f"| {p} | {ev:,.0f} | {rq:,.0f} | {', '.join(format(round(r['events_per_s']), ',') for r in rs)} | "
          f"{sum(r.get('errors', 0) for r in rs)} |")
print()
gc, node, sink = med.get("groupcast"), med.get("node"), med.get("wrk (sink capacity)")
if gc and node and sink:
    print(f"groupcast / Node (documented): {gc[0] / node[0]:.1f}x (target >= 10x); "
          f"groupcast / sink capacity: {gc[1] / sink[1]:.2f} (target >= 0.5); "
          f"sign median {sign['sign_only']['median_us']:.1f} µs, its SHA-256 floor "
          f"{sign['sha256_work']['median_us']:.1f} µs (target <= 20 µs)")
PY
echo "== figures in $OUT (summary.md, sign.json, rounds.jsonl)" >&2
