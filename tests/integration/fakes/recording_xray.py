# SPDX-License-Identifier: Apache-2.0
"""A recording X-Ray endpoint for the integration tests. It is a fake: moto has no
sampling APIs, so nothing real answers GetSamplingRules and SamplingTargets on
loopback.

Every request is recorded with the verdict of a SigV4 check made with botocore's
signer (an implementation independent of xrayd's): the access key must be one the
fake knows, the scope us-east-1/xray, X-Amz-Date within AWS's five minutes, the
session token sent and signed when the key has one. A bad signature gets 403
InvalidSignatureException, as X-Ray answers. Signed calls get valid JSON in X-Ray's
shapes: the rules given, targets for the rules reported, empty summaries, and empty
PutTraceSegments / PutTelemetryRecords answers. Listens on 127.0.0.1 only.
"""

import calendar
import collections
import hmac
import http.server
import json
import re
import threading
import time

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REGION = "us-east-1"
CLOCK_SKEW_S = 300  # AWS refuses signatures dated more than 5 minutes away

Recorded = collections.namedtuple("Recorded", "method path headers body signed_ok why")

_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                   r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")

# Created long ago, so the SDK pollers never think the rules changed under them.
RULES_CREATED = 1600000000


def rule(name, priority, rate, reservoir, service="*"):
    """A SamplingRule as GetSamplingRules returns it."""
    return {"RuleName": name, "RuleARN": "arn:aws:xray:%s:123456789012:sampling-rule/%s" % (REGION, name),
            "ResourceARN": "*", "Priority": priority, "FixedRate": rate,
            "ReservoirSize": reservoir, "ServiceName": service, "ServiceType": "*", "Host": "*",
            "HTTPMethod": "*", "URLPath": "*", "Version": 1, "Attributes": {}}


DEFAULT_RULES = [rule("Default", 10000, 0.05, 1)]


def check_signature(method, path, headers, body, keys, now=None):
    """(True, "") when headers (lower-cased names) carry a valid SigV4 signature for
    service xray in REGION by one of keys {access key: (secret, token or None)};
    else (False, why)."""
    m = _AUTH.match(headers.get("authorization", ""))
    if not m:
        return False, "no SigV4 Authorization header"
    key, day, region, service, signed, signature = m.groups()
    if key not in keys:
        return False, "unknown access key %s" % key
    if (region, service) != (REGION, "xray"):
        return False, "scope %s/%s, want %s/xray" % (region, service, REGION)
    amz_date = headers.get("x-amz-date", "")
    try:
        when = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return False, "bad X-Amz-Date %r" % amz_date
    if amz_date[:8] != day or abs((now or time.time()) - when) > CLOCK_SKEW_S:
        return False, "X-Amz-Date %s does not match the scope or the clock" % amz_date
    names = signed.split(";")
    if "host" not in names or "x-amz-date" not in names:
        return False, "host and x-amz-date must be signed"
    secret, token = keys[key]
    if token is not None and (headers.get("x-amz-security-token") != token or
                              "x-amz-security-token" not in names):
        return False, "session token missing, wrong or unsigned"
    missing = [n for n in names if n not in headers]
    if missing:
        return False, "signed headers not sent: %s" % ",".join(missing)
    req = AWSRequest(method=method, url="http://%s%s" % (headers["host"], path), data=body,
                     headers={n: headers[n] for n in names})
    req.context["timestamp"] = amz_date
    auth = SigV4Auth(Credentials(key, secret, token), "xray", region)
    if auth.signed_headers(auth.headers_to_sign(req)) != signed:
        return False, "botocore would not sign %s" % signed
    expected = auth.signature(auth.string_to_sign(req, auth.canonical_request(req)), req)
    if not hmac.compare_digest(expected, signature):
        return False, "signature does not match"
    return True, ""


class RecordingXray:
    """The fake on a free loopback port: url, requests(path), documents(), close()."""

    def __init__(self, keys, rules=None):
        self.keys = dict(keys)
        self.rules = list(rules or DEFAULT_RULES)
        self._calls = []
        self._lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                headers = {}
                for k, v in self.headers.items():
                    headers.setdefault(k.lower(), v)
                ok, why = check_signature("POST", self.path, headers, body, fake.keys)
                with fake._lock:
                    fake._calls.append(Recorded("POST", self.path, headers, body, ok, why))
                if not ok:
                    self._answer(403, {"__type": "InvalidSignatureException", "message": why})
                    return
                self._answer(*fake._reply(self.path, body))

            def do_GET(self):
                self._answer(404, {"__type": "UnknownOperationException",
                                   "message": "GET is not an X-Ray API here"})

            def _answer(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("x-amzn-RequestId", "fake-%d" % len(fake._calls))
                if status >= 400:
                    self.send_header("x-amzn-ErrorType", obj["__type"])
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _reply(self, path, body):
        try:
            req = json.loads(body) if body else {}
        except ValueError:
            return 400, {"__type": "SerializationException", "message": "body is not JSON"}
        now = time.time()
        if path == "/GetSamplingRules":
            return 200, {"SamplingRuleRecords": [
                {"SamplingRule": r, "CreatedAt": RULES_CREATED, "ModifiedAt": RULES_CREATED}
                for r in self.rules]}
        if path == "/SamplingTargets":
            by_name = {r["RuleName"]: r for r in self.rules}
            docs, unprocessed = [], []
            for s in req.get("SamplingStatisticsDocuments", []):
                r = by_name.get(s.get("RuleName"))
                if r is None:
                    unprocessed.append({"RuleName": s.get("RuleName"), "ErrorCode": "400",
                                        "Message": "unknown rule"})
                    continue
                docs.append({"RuleName": r["RuleName"], "FixedRate": r["FixedRate"],
                             "ReservoirQuota": r["ReservoirSize"],
                             "ReservoirQuotaTTL": int(now) + 30, "Interval": 10})
            return 200, {"SamplingTargetDocuments": docs, "LastRuleModification": RULES_CREATED,
                         "UnprocessedStatistics": unprocessed}
        if path == "/SamplingStatisticSummaries":
            return 200, {"SamplingStatisticSummaries": []}
        if path == "/TraceSegments":
            return 200, {"UnprocessedTraceSegments": []}
        if path == "/TelemetryRecords":
            return 200, {}
        return 404, {"__type": "UnknownOperationException", "message": "no API at %s" % path}

    def requests(self, path=None):
        """Recorded calls, in arrival order (all, or those on path)."""
        with self._lock:
            return [c for c in self._calls if path is None or c.path == path]

    def documents(self):
        """Segment documents received through PutTraceSegments, parsed."""
        docs = []
        for c in self.requests("/TraceSegments"):
            for d in json.loads(c.body).get("TraceSegmentDocuments", []):
                docs.append(json.loads(d))
        return docs

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
