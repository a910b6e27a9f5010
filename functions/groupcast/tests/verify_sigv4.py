"""Re-verifies SigV4 signatures that groupcast produced, with botocore's signer.

Independent of aws-sigv4: botocore rebuilds the canonical request from what the test server
captured (method, path and query, the headers named in SignedHeaders, the body), signs it with
the same fixed credentials and the captured x-amz-date, and the signatures must match.

Usage: verify_sigv4.py INPUT.json
INPUT: {"access_key", "secret_key", "requests": [{"method", "target", "headers": [[k, v]...], "body"}]}
Prints a JSON list, one entry per request: {"ok", "reason", "expected", "got", "service", "region",
"canonical_uri"}.
"""

import json
import re
import sys

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<akid>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<sig>[0-9a-f]{64})$"
)


def verify(req, access_key, secret_key):
    headers = {}
    for k, v in req["headers"]:
        headers[k.lower()] = v
    m = AUTH_RE.match(headers.get("authorization", ""))
    if not m:
        return {"ok": False, "reason": "no SigV4 authorization header"}
    if m["akid"] != access_key:
        return {"ok": False, "reason": f"access key {m['akid']} is not {access_key}"}
    amz_date = headers.get("x-amz-date", "")
    if amz_date[:8] != m["date"]:
        return {"ok": False, "reason": "credential scope date differs from x-amz-date"}
    signed = m["signed"].split(";")
    missing = [h for h in signed if h not in headers]
    if missing:
        return {"ok": False, "reason": f"signed headers not sent: {missing}"}
    creds = Credentials(access_key, secret_key, headers.get("x-amz-security-token"))
    signer = SigV4Auth(creds, m["service"], m["region"])
    url = f"http://{headers['host']}{req['target']}"
    request = AWSRequest(
        method=req["method"],
        url=url,
        headers={h: headers[h] for h in signed},
        data=req["body"].encode("utf-8"),
    )
    request.context["timestamp"] = amz_date
    to_sign = signer.headers_to_sign(request)
    if signer.signed_headers(to_sign) != m["signed"]:
        return {"ok": False, "reason": "botocore would sign a different header list"}
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    return {
        "ok": expected == m["sig"],
        "reason": "" if expected == m["sig"] else "signature mismatch",
        "expected": expected,
        "got": m["sig"],
        "service": m["service"],
        "region": m["region"],
        "canonical_uri": canonical.split("\n")[1],
    }


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    out = [verify(r, spec["access_key"], spec["secret_key"]) for r in spec["requests"]]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
