"""Signs requests with botocore (independent of aws-sigv4) for groupcast-dev's SigV4 tests.

Usage: sign_botocore.py INPUT.json
INPUT: {"access_key", "secret_key", "token" (or null), "region",
        "requests": [{"method", "url", "headers": {..}, "body": "..", "service"}],
        "presign": [{"url", "service", "expires", "token_after": bool}]}
Prints {"requests": [{"headers": {..}}], "presign": ["url", ..]}: the signed headers, as botocore
sends them, and the presigned URLs. With token_after, the session token is left out of the signature
and appended afterwards, as AWS IoT asks for MQTT over WebSocket
(https://docs.aws.amazon.com/iot/latest/developerguide/protocols.html).
"""

import json
import sys
from urllib.parse import quote

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def main(path):
    inp = json.load(open(path))
    token = inp.get("token")
    out = {"requests": [], "presign": []}
    for r in inp.get("requests", []):
        creds = Credentials(inp["access_key"], inp["secret_key"], token)
        req = AWSRequest(method=r["method"], url=r["url"], headers=r.get("headers", {}), data=r.get("body", "").encode())
        SigV4Auth(creds, r["service"], inp["region"]).add_auth(req)
        out["requests"].append({"headers": dict(req.headers.items())})
    for p in inp.get("presign", []):
        after = p.get("token_after", False)
        creds = Credentials(inp["access_key"], inp["secret_key"], None if after else token)
        req = AWSRequest(method="GET", url=p["url"])
        SigV4QueryAuth(creds, p["service"], inp["region"], expires=p["expires"]).add_auth(req)
        url = req.url
        if after and token:
            url += "&X-Amz-Security-Token=" + quote(token, safe="")
        out["presign"].append(url)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
