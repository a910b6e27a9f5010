"""Re-verifies a SigV4-presigned URL (query authentication) that groupcast produced, with botocore.

Independent of aws-sigv4: botocore's SigV4QueryAuth builds the X-Amz-* query of the same request
(GET, the URL's host and path, the credentials without the session token: AWS IoT signs without
it and appends it afterwards, https://docs.aws.amazon.com/iot/latest/developerguide/protocols.html)
at the URL's X-Amz-Date, and signs it; the query parameters and the signature must match.

Usage: verify_presigned.py INPUT.json
INPUT: {"access_key", "secret_key", "token" (or null), "url": "http(s)://host[:port]/path?query"}
Prints one JSON object: {"ok", "reason", "expected", "got", "service", "region", "expires"}.
"""

import json
import sys
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def verify(inp):
    url = urlsplit(inp["url"])
    params = dict(parse_qsl(url.query, keep_blank_values=True))
    got = params.get("X-Amz-Signature")
    if not got:
        return {"ok": False, "reason": "no X-Amz-Signature"}
    token = params.get("X-Amz-Security-Token")
    if token != inp.get("token"):
        return {"ok": False, "reason": f"X-Amz-Security-Token is {token!r}, expected {inp.get('token')!r}"}
    try:
        akid, date, region, service, terminator = params["X-Amz-Credential"].split("/")
        expires = int(params["X-Amz-Expires"])
        timestamp = params["X-Amz-Date"]
    except (KeyError, ValueError) as e:
        return {"ok": False, "reason": f"malformed X-Amz-* parameters: {e}"}
    if akid != inp["access_key"] or terminator != "aws4_request" or timestamp[:8] != date:
        return {"ok": False, "reason": "credential scope does not match"}
    # The session token is not signed: sign without it.
    signer = SigV4QueryAuth(Credentials(inp["access_key"], inp["secret_key"]), service, region, expires)
    request = AWSRequest(method="GET", url=f"{url.scheme}://{url.netloc}{url.path}", headers={"host": url.netloc})
    request.context["timestamp"] = timestamp
    signer._modify_request_before_signing(request)
    expected_params = dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))
    sent_params = {k: v for k, v in params.items() if k not in ("X-Amz-Signature", "X-Amz-Security-Token")}
    if expected_params != sent_params:
        return {"ok": False, "reason": f"signed parameters differ: botocore {expected_params}, sent {sent_params}"}
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    return {
        "ok": expected == got,
        "reason": "" if expected == got else "signature differs",
        "expected": expected,
        "got": got,
        "service": service,
        "region": region,
        "expires": expires,
    }


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        inp = json.load(f)
    print(json.dumps(verify(inp)))


if __name__ == "__main__":
    main()
