"""A local stub in front of moto for the provisioner's tests.

It forwards every request to a moto server, except the calls moto 5.2.5 lacks, which it serves
itself with the same REST-JSON shapes as AWS:

  AppSync (SigV4 service "appsync")
    POST   /v2/apis/{id}                                  UpdateApi (kept as an overlay on moto's api)
    GET    /v2/apis[/{id}]                                forwarded, then the overlay applied
    GET    /v2/apis/{id}/channelNamespaces/{name}         GetChannelNamespace (from moto's list)
    POST   /v2/apis/{id}/channelNamespaces/{name}         UpdateChannelNamespace (overlay)
    GET    /v2/apis/{id}/channelNamespaces                forwarded, then the overlay applied
    *      /v1/apis/{id}/datasources[/{name}]             data sources (in memory)
    *      /v1/apis/{id}/types/{type}/resolvers[/{field}] unit resolvers (in memory)
  IoT (SigV4 service "iot")
    POST   /policies/{name}                               forwarded; its `tags` are kept here
    GET    /tags?resourceArn=                             ListTagsForResource
    POST   /tags, POST /untag                             TagResource, UntagResource
    DELETE /policies/{name}                               forwarded; its tags are dropped
    POST|GET|PUT|DELETE /authorizer/{name}                Create/Describe/Update/DeleteAuthorizer
                                                          (in memory; an ACTIVE one cannot be deleted)

Test controls (never counted as calls):
    GET  /_stub/calls            every counted request so far: [{"method", "path", "service", "action"}]
                                 (action: the form's Action for query-protocol calls, the
                                 X-Amz-Target operation for JSON-protocol calls, else null)
    POST /_stub/calls/reset      forget them
    POST /_stub/fail?nth=N[&status=S&type=T]
                                 make the Nth counted request from now fail once (default: 400
                                 BadRequestException; 429 ThrottlingException tests retries)
    POST /moto-api/reset         wipes this stub's state and moto's

Usage:
  python stub_proxy.py MOTO_URL        front an existing moto server
  python stub_proxy.py --spawn-moto    start `moto_server` (beside this python) on a free port first
Prints "PORT <stub port> MOTO <moto url>" once listening. Exits, stopping the moto server it
started, when its stdin closes: the test process holds the other end, so peers never outlive it.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MOTO = None
LOCK = threading.Lock()
STATE = {}


def reset_state():
    STATE.clear()
    STATE.update(
        calls=[],
        fail_at=None,
        fail_with=(400, "BadRequestException"),
        api_overlay={},  # api id -> {name, eventConfig, ownerContact}
        ns_overlay={},  # (api id, name) -> {publishAuthModes, subscribeAuthModes, codeHandlers, handlerConfigs}
        datasources={},  # (api id, name) -> dict
        resolvers={},  # (api id, type, field) -> dict
        iot_tags={},  # arn -> {key: value}
        authorizers={},  # name -> authorizerDescription
    )


reset_state()


def service_of(headers):
    m = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request", headers.get("Authorization", ""))
    return m.group(1) if m else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    # ---- plumbing -------------------------------------------------------------------------
    def body(self):
        if not hasattr(self, "_body"):
            n = int(self.headers.get("Content-Length") or 0)
            self._body = self.rfile.read(n) if n else b""
        return self._body

    def json_body(self):
        b = self.body()
        return json.loads(b) if b else {}

    def reply(self, status, obj=None, error_type=None):
        data = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if error_type:
            self.send_header("x-amzn-errortype", error_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def not_found(self, what):
        self.reply(404, {"message": f"{what} not found"}, "NotFoundException")

    def moto(self, method=None, path=None, body=None):
        """Forwards (a possibly different) request to moto; returns (status, headers, bytes)."""
        method = method or self.command
        path = path or self.path
        data = self.body() if body is None else body
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        # No body rather than an empty one: urllib would add a form content-type that moto
        # then tries to parse, and it stops matching the operation (e.g. ListAttachedPolicies).
        req = urllib.request.Request(MOTO + path, data=data if data and method not in ("GET", "HEAD") else None,
                                     method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def forward(self):
        status, headers, data = self.moto()
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    # ---- dispatch -------------------------------------------------------------------------
    def handle_any(self):
        # One handler instance serves every request of a keep-alive connection: forget the last body.
        self.__dict__.pop("_body", None)
        parsed = urllib.parse.urlparse(self.path)
        path = parsed.path
        if path.startswith("/_stub/"):
            return self.control(path, urllib.parse.parse_qs(parsed.query))
        if path == "/moto-api/reset":
            with LOCK:
                reset_state()
            return self.forward()
        if path.startswith("/moto-api/"):
            return self.forward()
        service = service_of(self.headers)
        action = None
        with LOCK:
            # Query-protocol services (IAM, STS) POST every call: record its Action, so tests can
            # tell reads (Get*/List*) from writes.
            if "x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
                action = urllib.parse.parse_qs(self.body().decode()).get("Action", [None])[0]
            # JSON-protocol services (EventBridge) POST every call too: the operation is the
            # X-Amz-Target's last part ("AWSEvents.DescribeRule").
            elif self.headers.get("X-Amz-Target"):
                action = self.headers["X-Amz-Target"].rsplit(".", 1)[-1]
            STATE["calls"].append({"method": self.command, "path": self.path, "service": service,
                                   "action": action})
            n = len(STATE["calls"])
            fail = STATE["fail_at"] is not None and n == STATE["fail_at"]
            if fail:
                STATE["fail_at"] = None
        if fail:
            status, kind = STATE["fail_with"]
            if kind == "html":
                # What moto answers for a call it does not implement: an HTML page, no error type.
                page = b"<!doctype html><html><title>404 Not Found</title><h1>Not Found</h1></html>"
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                return
            if action is not None:
                # Query-protocol services read an XML error.
                xml = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{kind}</Code>"
                       f"<Message>injected failure on call {n}</Message></Error>"
                       f"<RequestId>stub</RequestId></ErrorResponse>").encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(xml)))
                self.end_headers()
                self.wfile.write(xml)
                return
            return self.reply(status, {"message": f"injected failure on call {n}"}, kind)
        if service == "appsync":
            return self.appsync(path)
        if service == "iot":
            return self.iot(path, urllib.parse.parse_qs(parsed.query))
        return self.forward()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

    def control(self, path, query):
        if path == "/_stub/calls" and self.command == "GET":
            with LOCK:
                return self.reply(200, STATE["calls"])
        if path == "/_stub/calls/reset":
            with LOCK:
                STATE["calls"] = []
            return self.reply(200, {})
        if path == "/_stub/fail":
            with LOCK:
                STATE["fail_at"] = len(STATE["calls"]) + int(query["nth"][0])
                STATE["fail_with"] = (int(query.get("status", ["400"])[0]),
                                      query.get("type", ["BadRequestException"])[0])
            return self.reply(200, {})
        self.not_found(path)

    # ---- AppSync --------------------------------------------------------------------------
    def appsync(self, path):
        m = self.command
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        # /v2/apis, /v2/apis/{id}
        if parts[:2] == ["v2", "apis"] and len(parts) <= 3:
            if m == "POST" and len(parts) == 3:
                return self.update_api(parts[2])
            if m == "GET":
                return self.overlay_apis(parts[2] if len(parts) == 3 else None)
            if m == "DELETE" and len(parts) == 3:
                with LOCK:
                    STATE["api_overlay"].pop(parts[2], None)
        # /v2/apis/{id}/channelNamespaces[/{name}]
        if parts[:2] == ["v2", "apis"] and len(parts) >= 4 and parts[3] == "channelNamespaces":
            api = parts[2]
            if len(parts) == 4 and m == "GET":
                return self.overlay_namespaces(api)
            if len(parts) == 5 and m == "GET":
                return self.get_namespace(api, parts[4])
            if len(parts) == 5 and m == "POST":
                return self.update_namespace(api, parts[4])
            if len(parts) == 5 and m == "DELETE":
                with LOCK:
                    STATE["ns_overlay"].pop((api, parts[4]), None)
        if parts[:2] == ["v1", "apis"] and len(parts) >= 4 and parts[3] == "datasources":
            return self.datasources(parts[2], parts[4] if len(parts) > 4 else None)
        if parts[:2] == ["v1", "apis"] and len(parts) >= 6 and parts[3] == "types" and parts[5] == "resolvers":
            return self.resolvers(parts[2], parts[4], parts[6] if len(parts) > 6 else None)
        return self.forward()

    def apply_api_overlay(self, api):
        ov = STATE["api_overlay"].get(api.get("apiId"))
        if ov:
            api.update({k: v for k, v in ov.items() if v is not None})
        return api

    def overlay_apis(self, api_id):
        status, headers, data = self.moto()
        if status != 200:
            return self.forward_raw(status, headers, data)
        doc = json.loads(data)
        with LOCK:
            if api_id:
                self.apply_api_overlay(doc["api"])
            else:
                for a in doc.get("apis", []):
                    self.apply_api_overlay(a)
        self.reply(200, doc)

    def forward_raw(self, status, headers, data):
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def update_api(self, api_id):
        body = self.json_body()
        status, headers, data = self.moto("GET", f"/v2/apis/{api_id}", b"")
        if status != 200:
            return self.forward_raw(status, headers, data)
        if not body.get("name"):
            return self.reply(400, {"message": "name is required"}, "BadRequestException")
        with LOCK:
            STATE["api_overlay"][api_id] = {
                "name": body.get("name"),
                "eventConfig": body.get("eventConfig"),
                "ownerContact": body.get("ownerContact"),
            }
            api = self.apply_api_overlay(json.loads(data)["api"])
        self.reply(200, {"api": api})

    def moto_namespaces(self, api):
        status, headers, data = self.moto("GET", f"/v2/apis/{api}/channelNamespaces", b"")
        return status, headers, data

    def overlay_namespaces(self, api):
        status, headers, data = self.moto_namespaces(api)
        if status != 200:
            return self.forward_raw(status, headers, data)
        doc = json.loads(data)
        with LOCK:
            for ns in doc.get("channelNamespaces", []):
                ns.update(STATE["ns_overlay"].get((api, ns["name"]), {}))
        self.reply(200, doc)

    def get_namespace(self, api, name):
        status, headers, data = self.moto_namespaces(api)
        if status != 200:
            return self.forward_raw(status, headers, data)
        for ns in json.loads(data).get("channelNamespaces", []):
            if ns["name"] == name:
                with LOCK:
                    ns.update(STATE["ns_overlay"].get((api, name), {}))
                return self.reply(200, {"channelNamespace": ns})
        self.not_found(f"channel namespace {name}")

    def update_namespace(self, api, name):
        body = self.json_body()
        status, headers, data = self.moto_namespaces(api)
        if status != 200:
            return self.forward_raw(status, headers, data)
        for ns in json.loads(data).get("channelNamespaces", []):
            if ns["name"] == name:
                fields = {k: body.get(k) for k in
                          ("publishAuthModes", "subscribeAuthModes", "codeHandlers", "handlerConfigs")}
                fields["lastModified"] = time.time()
                with LOCK:
                    STATE["ns_overlay"][(api, name)] = fields
                ns.update(fields)
                return self.reply(200, {"channelNamespace": ns})
        self.not_found(f"channel namespace {name}")

    def datasources(self, api, name):
        m, key = self.command, (api, name)
        with LOCK:
            store = STATE["datasources"]
            if m == "POST" and name is None:
                body = self.json_body()
                if (api, body["name"]) in store:
                    return self.reply(409, {"message": "data source exists"}, "BadRequestException")
                ds = dict(body, dataSourceArn=f"arn:aws:appsync:us-east-1:123456789012:apis/{api}/datasources/{body['name']}")
                store[(api, body["name"])] = ds
                return self.reply(200, {"dataSource": ds})
            if m == "GET" and name is None:
                return self.reply(200, {"dataSources": [v for (a, _), v in store.items() if a == api]})
            if key not in store:
                return self.not_found(f"data source {name}")
            if m == "GET":
                return self.reply(200, {"dataSource": store[key]})
            if m == "POST":
                store[key].update(self.json_body())
                return self.reply(200, {"dataSource": store[key]})
            if m == "DELETE":
                del store[key]
                return self.reply(200, {})
        self.not_found(self.path)

    def resolvers(self, api, type_name, field):
        m = self.command
        with LOCK:
            store = STATE["resolvers"]
            if m == "POST" and field is None:
                body = self.json_body()
                key = (api, type_name, body["fieldName"])
                if key in store:
                    return self.reply(409, {"message": "resolver exists"}, "BadRequestException")
                if (api, body.get("dataSourceName")) not in STATE["datasources"]:
                    return self.reply(404, {"message": "No data source found"}, "NotFoundException")
                r = dict(body, typeName=type_name,
                         resolverArn=f"arn:aws:appsync:us-east-1:123456789012:apis/{api}/types/{type_name}/resolvers/{body['fieldName']}")
                store[key] = r
                return self.reply(200, {"resolver": r})
            if m == "GET" and field is None:
                return self.reply(200, {"resolvers": [v for (a, t, _), v in store.items() if a == api and t == type_name]})
            key = (api, type_name, field)
            if key not in store:
                return self.not_found(f"resolver {type_name}.{field}")
            if m == "GET":
                return self.reply(200, {"resolver": store[key]})
            if m == "POST":
                store[key].update(self.json_body())
                return self.reply(200, {"resolver": store[key]})
            if m == "DELETE":
                del store[key]
                return self.reply(200, {})
        self.not_found(self.path)

    # ---- IoT ------------------------------------------------------------------------------
    def iot(self, path, query):
        m = self.command
        if path == "/tags" and m == "GET":
            arn = query.get("resourceArn", [""])[0]
            with LOCK:
                tags = STATE["iot_tags"].get(arn, {})
            return self.reply(200, {"tags": [{"Key": k, "Value": v} for k, v in tags.items()]})
        if path == "/tags" and m == "POST":
            body = self.json_body()
            with LOCK:
                STATE["iot_tags"].setdefault(body["resourceArn"], {}).update(
                    {t["Key"]: t["Value"] for t in body.get("tags", [])})
            return self.reply(200, {})
        if path == "/untag" and m == "POST":
            body = self.json_body()
            with LOCK:
                for k in body.get("tagKeys", []):
                    STATE["iot_tags"].get(body["resourceArn"], {}).pop(k, None)
            return self.reply(200, {})
        authorizer = re.fullmatch(r"/authorizer/([^/]+)", path)
        if authorizer:
            return self.iot_authorizer(urllib.parse.unquote(authorizer.group(1)), m)
        policy = re.fullmatch(r"/policies/([^/]+)", path)
        if policy and m == "POST":
            status, headers, data = self.moto()
            if status == 200:
                arn = json.loads(data)["policyArn"]
                tags = self.json_body().get("tags", [])
                with LOCK:
                    STATE["iot_tags"][arn] = {t["Key"]: t["Value"] for t in tags}
            return self.forward_raw(status, headers, data)
        if policy and m == "DELETE":
            status, headers, data = self.moto()
            if status < 300:
                with LOCK:
                    for arn in [a for a in STATE["iot_tags"] if a.endswith(":policy/" + urllib.parse.unquote(policy.group(1)))]:
                        del STATE["iot_tags"][arn]
            return self.forward_raw(status, headers, data)
        return self.forward()

    def iot_authorizer(self, name, m):
        """The IoT custom authorizer calls moto 5.2.5 lacks, with AWS's shapes
        (https://docs.aws.amazon.com/iot/latest/apireference/API_CreateAuthorizer.html and its siblings)."""
        fields = ["authorizerFunctionArn", "tokenKeyName", "tokenSigningPublicKeys", "status",
                  "signingDisabled", "enableCachingForHttp"]
        with LOCK:
            current = STATE["authorizers"].get(name)
            if m == "POST":
                if current is not None:
                    return self.reply(409, {"message": f"authorizer {name} exists"},
                                      error_type="ResourceAlreadyExistsException")
                body = self.json_body()
                arn = f"arn:aws:iot:us-east-1:123456789012:authorizer/{name}"
                desc = {"authorizerName": name, "authorizerArn": arn, "status": "ACTIVE",
                        "signingDisabled": False, "enableCachingForHttp": False,
                        "creationDate": time.time(), "lastModifiedDate": time.time()}
                desc.update({k: body[k] for k in fields if k in body})
                STATE["authorizers"][name] = desc
                STATE["iot_tags"][arn] = {t["Key"]: t["Value"] for t in body.get("tags", [])}
                return self.reply(200, {"authorizerName": name, "authorizerArn": arn})
            if current is None:
                return self.reply(404, {"message": f"authorizer {name} not found"},
                                  error_type="ResourceNotFoundException")
            if m == "GET":
                return self.reply(200, {"authorizerDescription": current})
            if m == "PUT":
                body = self.json_body()
                # signingDisabled is fixed at creation: UpdateAuthorizer has no such field.
                current.update({k: body[k] for k in fields if k in body and k != "signingDisabled"})
                current["lastModifiedDate"] = time.time()
                return self.reply(200, {"authorizerName": name, "authorizerArn": current["authorizerArn"]})
            if m == "DELETE":
                if current.get("status") == "ACTIVE":
                    return self.reply(409, {"message": "an ACTIVE authorizer cannot be deleted"},
                                      error_type="DeleteConflictException")
                del STATE["authorizers"][name]
                STATE["iot_tags"].pop(current["authorizerArn"], None)
                return self.reply(200, {})
        self.not_found(self.path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_moto():
    port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "moto_server")
    if not os.path.exists(exe):
        sys.exit(f"stub_proxy: {exe} not found: create the venv from tests/requirements.txt (moto[server])")
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).read()
            return proc, url
        except Exception:
            if proc.poll() is not None:
                sys.exit(f"stub_proxy: moto_server exited with {proc.returncode}")
            time.sleep(0.1)
    proc.kill()
    sys.exit("stub_proxy: moto_server did not answer within 30 s")


def main():
    global MOTO
    moto_proc = None
    if sys.argv[1] == "--spawn-moto":
        moto_proc, MOTO = spawn_moto()

        def stop(*_):
            moto_proc.kill()
            os._exit(0)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    else:
        MOTO = sys.argv[1].rstrip("/")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"PORT {server.server_address[1]} MOTO {MOTO}", flush=True)
    sys.stdin.read()  # returns at EOF: the test process is gone or done with us
    if moto_proc:
        moto_proc.kill()
        moto_proc.wait()


if __name__ == "__main__":
    main()
