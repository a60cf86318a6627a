# SPDX-License-Identifier: Apache-2.0
"""The TCP side's signing proxy end to end: the Python X-Ray SDK 2.x with centralized
sampling polls GetSamplingRules and SamplingTargets on xrayd's TCP address; xrayd
signs and forwards them to a recording X-Ray fake (moto has no sampling APIs) that
checks every signature with botocore. The SDK must then sample by the fake's rules,
so its segments reach the fake through xrayd's uploads. Also: paths off the
allow-list get 403 and reach nothing; without credentials xrayd answers 503 and
sends nothing at all.
"""

import calendar
import glob
import json
import os
import socket
import subprocess
import sys
import time

import harness
from harness import IntegrationCase, aws_args, http_get, http_post, wait_for

sys.path.insert(0, os.path.join(harness.HERE, "fakes"))
from recording_xray import RecordingXray, check_signature, rule  # noqa: E402

KEY, SECRET, TOKEN = "AKIDPROXYTEST", "proxy-secret", "session/token+value="
SIGNED = "content-type;host;x-amz-date;x-amz-security-token;x-amzn-xray-timestamp"
RULES = [rule("sampled-svc", 1, 1.0, 0, "py-sampled"),
         rule("dropped-svc", 2, 0.0, 0, "py-dropped"),
         rule("Default", 10000, 0.05, 1)]

# The SDK app: centralized sampling on (the SDK default), every request its botocore
# client sends printed as "SENT <json>" so the test can compare bodies byte for byte.
SDK_APP = r'''
import json, sys, time
from urllib.parse import urlsplit
from aws_xray_sdk.core import xray_recorder

xray_recorder.configure(sampling=True, context_missing="LOG_ERROR", service="py-warmup")
sampler = xray_recorder.sampler
sent = []

def record(request, **kwargs):
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    sent.append(urlsplit(request.url).path)
    print("SENT " + json.dumps({"path": urlsplit(request.url).path,
                                "body": body.decode("utf-8")}), flush=True)

sampler._connector._xray_client.meta.events.register("before-send.xray", record)

xray_recorder.begin_segment("py-warmup")   # the first decision starts the pollers
xray_recorder.end_segment()
deadline = time.time() + 10
while not sampler._cache.rules and time.time() < deadline:
    time.sleep(0.1)
print("RULES " + json.dumps(sorted(r.name for r in sampler._cache.rules)), flush=True)

# The target poller reports every ~10 s: run until it did, and a little more.
decisions = {"py-sampled": [0, 0], "py-dropped": [0, 0]}
start = time.time()
while time.time() - start < 25:
    for name in decisions:
        seg = xray_recorder.begin_segment(name)
        decisions[name][0 if seg.sampled else 1] += 1
        xray_recorder.end_segment()
    if "/SamplingTargets" in sent and time.time() - start > 11:
        break
    time.sleep(0.1)
print("DECISIONS " + json.dumps(decisions), flush=True)
'''


def raw_post(port, path, body=b"", headers=()):
    """(status, headers dict lower-cased, body) of one POST with exactly these headers."""
    lines = ["POST %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % port, "Connection: close"]
    lines += list(headers) + ["Content-Length: %d" % len(body), "", ""]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall("\r\n".join(lines).encode() + body)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    head_lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in head_lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(head_lines[0].split()[1]), hdrs, rest


class SamplingProxyTest(IntegrationCase):

    def start_fake(self, keys=None, rules=None):
        fake = RecordingXray(keys if keys is not None else {KEY: (SECRET, TOKEN)}, rules)
        self.addCleanup(fake.close)
        return fake

    def start_proxy_xrayd(self, fake, credentials=True, extra_args=()):
        env = {"AWS_ENDPOINT_URL_XRAY": fake.url}
        if credentials:
            env.update({"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET,
                        "AWS_SESSION_TOKEN": TOKEN})
        return self.start_xrayd(aws_args() + list(extra_args), env)

    def assertForwarded(self, call):
        """Signed by xrayd alone: botocore's check passed, no client header came along."""
        self.assertTrue(call.signed_ok, "%s: %s" % (call.path, call.why))
        self.assertIn("SignedHeaders=%s," % SIGNED, call.headers["authorization"])
        self.assertTrue(call.headers["user-agent"].startswith("xrayd/"), call.headers)
        for h in ("amz-sdk-invocation-id", "amz-sdk-request", "accept-encoding", "connection",
                  "keep-alive", "x-amz-content-sha256", "proxy-authorization"):
            self.assertNotIn(h, call.headers)
        self.assertEqual(call.headers["content-type"], "application/json")

    def test_fake_checks_signatures(self):
        """The fake's checker accepts the reference daemon's recorded signatures and
        refuses a tampered body, a wrong key and a stale date: its verdicts mean
        something."""
        files = sorted(glob.glob(os.path.join(harness.DATA, "http",
                                              "xray-daemon-3.5.0-upstream-*.json")))
        self.assertEqual(len(files), 4)
        for f in files:
            with open(f) as fh:
                j = json.load(fh)
            h = {}
            for k, v in j["headers"].items():
                h[(k[5:] if k.startswith("HTTP_") else k).lower().replace("_", "-")] = v
            when = calendar.timegm(time.strptime(h["x-amz-date"], "%Y%m%dT%H%M%SZ"))
            body = j["body"].encode()
            keys = {"AKIDTEST": ("secret", None)}
            self.assertEqual(check_signature("POST", j["path"], h, body, keys, now=when),
                             (True, ""), f)
            self.assertFalse(check_signature("POST", j["path"], h, body + b" ", keys, now=when)[0])
            self.assertFalse(check_signature("POST", j["path"], h, body,
                                             {"AKIDTEST": ("other", None)}, now=when)[0])
            self.assertFalse(check_signature("POST", j["path"], h, body, keys,
                                             now=when + 600)[0])

    def test_sdk_pollers_through_the_proxy(self):
        fake = self.start_fake(rules=RULES)
        x = self.start_proxy_xrayd(fake)
        app = os.path.join(self.tmp, "sampling_app.py")
        with open(app, "w") as f:
            f.write(SDK_APP)
        env = harness.clean_env(self.tmp, {
            "AWS_XRAY_DAEMON_ADDRESS": "tcp:127.0.0.1:%d udp:127.0.0.1:%d" % (x.tcp_port,
                                                                               x.udp_port),
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR"})
        r = subprocess.run([sys.executable, app], env=env, cwd=self.tmp,
                           capture_output=True, timeout=90)
        out = (r.stdout + r.stderr).decode("utf-8", "replace")
        self.assertEqual(r.returncode, 0, out[-3000:])
        sent = [json.loads(l[5:]) for l in out.splitlines() if l.startswith("SENT ")]
        lines = {l.split(" ", 1)[0]: l.split(" ", 1)[1] for l in out.splitlines()
                 if l.startswith(("RULES ", "DECISIONS "))}
        self.assertEqual(json.loads(lines["RULES"]), ["Default", "dropped-svc", "sampled-svc"],
                         out[-3000:])

        # Every call the pollers made reached X-Ray once, signed, with the SDK's body.
        paths = [s["path"] for s in sent]
        self.assertIn("/GetSamplingRules", paths)
        self.assertIn("/SamplingTargets", paths, out[-3000:])
        got = [c for c in fake.requests() if c.path in ("/GetSamplingRules", "/SamplingTargets")]
        self.assertEqual(sorted((c.path, c.body) for c in got),
                         sorted((s["path"], s["body"].encode()) for s in sent))
        for c in got:
            self.assertForwarded(c)
        targets = json.loads(next(c.body for c in got if c.path == "/SamplingTargets"))
        self.assertEqual({d["RuleName"] for d in targets["SamplingStatisticsDocuments"]},
                         {"sampled-svc", "dropped-svc"})

        # The SDK sampled by the rules it got through xrayd ...
        decisions = json.loads(lines["DECISIONS"])
        self.assertGreater(decisions["py-sampled"][0], 50)
        self.assertEqual(decisions["py-sampled"][1], 0)
        self.assertEqual(decisions["py-dropped"][0], 0)
        # ... so its sampled segments, and only those, arrive upstream.
        def sampled_upstream():
            return sum(d.get("name") == "py-sampled" for d in fake.documents())
        wait_for(lambda: sampled_upstream() >= decisions["py-sampled"][0], 10,
                 what="the sampled segments at the fake")
        self.assertEqual(sampled_upstream(), decisions["py-sampled"][0])
        self.assertFalse([d for d in fake.documents() if d.get("name") == "py-dropped"])
        for c in fake.requests():
            self.assertTrue(c.signed_ok, "%s: %s" % (c.path, c.why))

    def test_allow_list_and_bodies(self):
        fake = self.start_fake()
        x = self.start_proxy_xrayd(fake)
        # Not on the list, or not a POST: 403 naming the setting, nothing forwarded.
        for method, path in (("POST", "/TraceSummaries"), ("POST", "/DeleteSamplingRule"),
                             ("GET", "/GetSamplingRules")):
            status, body = (http_post(x.tcp_url + path, b"{}") if method == "POST"
                            else http_get(x.tcp_url + path))
            self.assertEqual(status, 403, (method, path, body))
            err = json.loads(body)
            self.assertEqual(err["__type"], "AccessDeniedException")
            self.assertIn("--proxy-allow-paths", err["message"])
            self.assertIn("Xrayd.ProxyAllowPaths", err["message"])
            self.assertIn("%s %s" % (method, path), err["message"])
        self.assertEqual(x.healthz()[0], 200)
        self.assertEqual(fake.requests(), [])

        # ADOT's bodiless GetSamplingRules goes out bodiless; client signature headers stay.
        status, hdrs, body = raw_post(x.tcp_port, "/GetSamplingRules", b"", [
            "Authorization: AWS4-HMAC-SHA256 Credential=AKIDCLIENT/20200101/us-east-1/xray/"
            "aws4_request, SignedHeaders=host, Signature=" + "0" * 64,
            "X-Amz-Date: 20200101T000000Z", "X-Amz-Security-Token: client-token",
            "X-Amz-Content-Sha256: UNSIGNED-PAYLOAD", "Keep-Alive: timeout=5",
            "Proxy-Authorization: Basic eDp5"])
        self.assertEqual(status, 200, body)
        self.assertEqual(hdrs["content-type"], "application/json")
        self.assertEqual(json.loads(body)["SamplingRuleRecords"][0]["SamplingRule"]["RuleName"],
                         "Default")
        call = fake.requests("/GetSamplingRules")[0]
        self.assertEqual(call.body, b"")
        self.assertForwarded(call)
        self.assertEqual(call.headers["x-amz-security-token"], TOKEN)
        self.assertIn("Credential=%s/" % KEY, call.headers["authorization"])
        # X-Ray's errors come back as X-Ray sent them.
        status, body = http_post(x.tcp_url + "/SamplingTargets", b"not json")
        self.assertEqual((status, json.loads(body)["__type"]), (400, "SerializationException"))

        # A list of one path, written loosely.
        y = self.start_proxy_xrayd(fake, extra_args=["--proxy-allow-paths",
                                                     " /SamplingTargets ,, "])
        status, body = http_post(y.tcp_url + "/GetSamplingRules", b"{}")
        self.assertEqual(status, 403, body)
        self.assertIn("now /SamplingTargets;", json.loads(body)["message"])
        n = len(fake.requests())
        status, body = http_post(y.tcp_url + "/SamplingTargets",
                                 b'{"SamplingStatisticsDocuments":[]}')
        self.assertEqual(status, 200, body)
        self.assertEqual(len(fake.requests()), n + 1)

    def test_no_credentials(self):
        fake = self.start_fake()
        x = self.start_proxy_xrayd(fake, credentials=False)
        for path in ("/GetSamplingRules", "/SamplingTargets"):
            status, body = http_post(x.tcp_url + path, b"{}")
            self.assertEqual(status, 503, body)
            err = json.loads(body)
            self.assertEqual(err["__type"], "NoCredentialsException")
            self.assertIn("no AWS credentials", err["message"])
        # A segment too: its upload cannot be signed either.
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        doc = {"name": "svc", "id": "70de5b6f19ff9a0a", "trace_id":
               "1-5759e988-bd862e3fe1be46a994272793", "start_time": time.time(),
               "end_time": time.time()}
        sock.sendto(b'{"format":"json","version":1}\n' + json.dumps(doc).encode(), x.udp_addr)
        sock.close()
        time.sleep(2.5)
        self.assertEqual(fake.requests(), [])
        self.assertEqual(x.healthz()[0], 200)


if __name__ == "__main__":
    harness.main()
