#!/usr/bin/env python3
"""Cold-start benchmark of the groupcast publisher Lambda against a Node.js publisher.

Both run as real processes under the same emulated Lambda Runtime API, publishing the same message
to the same local AppSync Events sink (API key). One run = start the process, hand it one
invocation, stop the clock when its response arrives, read its peak RSS (VmHWM), SIGKILL it.
Runs alternate Rust / Node so that both see the same machine load.

Usage: coldstart.py --rust BOOTSTRAP --node-dir DIR [--runs N] [--json OUT]
Standard library only; no network beyond 127.0.0.1.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_KEY = "da2-benchlocalkey"
EVENT = {"topic": "news", "data": {"headline": "cold start"}, "groups": ["team-a"]}
CHANNEL = "/live/team-a/news"


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.pending = None  # (request id, payload) waiting for GET next
        self.have_pending = threading.Event()
        self.responses = {}  # request id -> (perf_counter, body)
        self.responded = threading.Event()
        self.published = []  # (channel, envelope) the sink accepted
        self.stop = threading.Event()
        # Bumped per run: a killed function's long-poll (still open here) must not take the next
        # run's invocation.
        self.generation = 0


STATE = State()


class Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, headers=()):
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        return self.rfile.read(int(self.headers.get("content-length") or 0))


class Runtime(Quiet):
    def do_GET(self):
        if self.path != "/2018-06-01/runtime/invocation/next":
            return self.send(404, "{}")
        with STATE.lock:
            generation = STATE.generation
        while not STATE.stop.is_set():
            if STATE.have_pending.wait(0.5):
                with STATE.lock:
                    if generation != STATE.generation:
                        return  # from a process of an earlier run
                    pending, STATE.pending = STATE.pending, None
                    STATE.have_pending.clear()
                if pending:
                    rid, payload = pending
                    deadline = str(int(time.time() * 1000) + 30000)
                    return self.send(200, json.dumps(payload), [
                        ("lambda-runtime-aws-request-id", rid),
                        ("lambda-runtime-deadline-ms", deadline),
                        ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:bench"),
                        ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000"),
                    ])

    def do_POST(self):
        now = time.perf_counter()
        body = self.body()
        parts = self.path.split("/")
        # /2018-06-01/runtime/invocation/{id}/response|error
        if len(parts) == 6 and parts[3] == "invocation":
            with STATE.lock:
                STATE.responses[parts[4]] = (now, parts[5], body)
            STATE.responded.set()
            return self.send(202, '{"status":"OK"}')
        if self.path.endswith("/init/error"):
            with STATE.lock:
                STATE.responses["init"] = (now, "init-error", body)
            STATE.responded.set()
            return self.send(202, '{"status":"OK"}')
        self.send(404, "{}")


class Sink(Quiet):
    def do_POST(self):
        body = self.body()
        if self.path != "/event" or self.headers.get("x-api-key") != API_KEY:
            return self.send(401, '{"errors":[{"errorType":"UnauthorizedException","message":"bad key"}]}')
        req = json.loads(body)
        ok = []
        for i, e in enumerate(req["events"]):
            with STATE.lock:
                STATE.published.append((req["channel"], json.loads(e)))
            ok.append({"identifier": str(uuid.uuid4()), "index": i})
        self.send(200, json.dumps({"failed": [], "successful": ok}))


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a killed function drops its long-poll connection: expected, not news


def serve(handler):
    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def one_run(cmd, cwd, env):
    rid = str(uuid.uuid4())
    with STATE.lock:
        STATE.generation += 1
        STATE.pending = (rid, EVENT)
        published_before = len(STATE.published)
    STATE.have_pending.set()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=None if os.environ.get("BENCH_DEBUG") else subprocess.PIPE)
    deadline = t0 + 60
    # The clock stops when the POST arrives (stamped by the server), so polling here adds nothing.
    while True:
        with STATE.lock:
            got = STATE.responses.get(rid) or STATE.responses.get("init")
        if got:
            break
        if proc.poll() is not None or time.perf_counter() > deadline:
            proc.kill()
            proc.wait()
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise SystemExit(f"{cmd[0]}: no response (exit {proc.returncode}): {err[-2000:]}")
        STATE.responded.wait(0.005)
        STATE.responded.clear()
    t1, kind, body = got
    # VmHWM is the peak RSS of the process image since exec. (wait4's ru_maxrss would also count
    # the pre-exec RSS of the forked Python child, ~20 MiB, hiding the function's own figure.)
    with open(f"/proc/{proc.pid}/status") as f:
        hwm_kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    os.kill(proc.pid, signal.SIGKILL)
    os.wait4(proc.pid, 0)
    proc.returncode = -9
    if kind != "response":
        raise SystemExit(f"{cmd[0]}: {kind}: {body.decode(errors='replace')}")
    answer = json.loads(body)
    with STATE.lock:
        new = STATE.published[published_before:]
    if [c for c, _ in new] != [CHANNEL] or new[0][1]["id"] != answer["messages"][0]["id"]:
        raise SystemExit(f"{cmd[0]}: the sink did not receive exactly the answered message: {new} vs {answer}")
    return (t1 - t0) * 1000.0, hwm_kib / 1024.0  # ms, MiB


def summary(xs):
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]
    return {"min": xs[0], "median": statistics.median(xs), "p90": p90, "max": xs[-1]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rust", required=True, help="the publisher bootstrap binary (cargo lambda build --release)")
    ap.add_argument("--node-dir", required=True, help="bench/lambda/node (after npm ci)")
    ap.add_argument("--node", default="node")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--json", help="write the figures here as JSON")
    args = ap.parse_args()

    runtime, sink = serve(Runtime), serve(Sink)
    base = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench", "AWS_REGION": "us-east-1",
        "GROUPCAST_EVENTS_URL": f"http://127.0.0.1:{sink.server_address[1]}",
        "GROUPCAST_EVENTS_NAMESPACE": "live", "GROUPCAST_AUTH": "api-key",
        "GROUPCAST_API_KEY": API_KEY, "GROUPCAST_TRANSPORTS": "events",
        "RUST_LOG": "warn",
    }
    rust_cmd = ([os.path.abspath(args.rust)], None)
    node_cmd = ([args.node, "index.mjs"], os.path.abspath(args.node_dir))
    one_run(*rust_cmd, base)  # warm the page cache for both, as a deployed function's image is
    one_run(*node_cmd, base)
    results = {"rust": {"ms": [], "rss_mib": []}, "node": {"ms": [], "rss_mib": []}}
    for _ in range(args.runs):
        for name, (cmd, cwd) in (("rust", rust_cmd), ("node", node_cmd)):
            ms, rss = one_run(cmd, cwd, base)
            results[name]["ms"].append(ms)
            results[name]["rss_mib"].append(rss)
    out = {name: {"first_response_ms": summary(r["ms"]), "peak_rss_mib": summary(r["rss_mib"])} for name, r in results.items()}
    # Context, not a contender: how long a bare `node -e 0` takes to start and exit here.
    floor = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        subprocess.run([args.node, "-e", "0"], check=True)
        floor.append((time.perf_counter() - t0) * 1000.0)
    out["node_bare_start_exit_ms"] = summary(floor)
    out["runs"] = args.runs
    out["speedup_median"] = out["node"]["first_response_ms"]["median"] / out["rust"]["first_response_ms"]["median"]
    STATE.stop.set()
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
