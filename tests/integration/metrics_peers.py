# SPDX-License-Identifier: Apache-2.0
"""What the metrics tests share: the three-trace traffic mix, reading one sample of
xrayd's own /metrics, and a real Prometheus (Debian `prometheus`) that scrapes xrayd,
receives its remote write, or both, queried through its HTTP API.

The mix: a user calls "web" (root, 0.3 s), which calls "api" (a traced remote call
the caller sees take 0.3 s, api itself 0.15 s); the second call faults on both sides.
"""

import base64
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

import harness
from harness import wait_for

TRACES = 3
FAULT_AT = 1
HEADER = b'{"format":"json","version":1}\n'

USER = "rw"
PASSWORD = "s3cret-pw"
# bcrypt of PASSWORD (cost 4, the lowest Go's bcrypt takes), for Prometheus's web config.
PASSWORD_BCRYPT = "$2b$04$SEEx38WzweG11RFT4BCwZeUb0oQ.eayFlikW/NqRlaXBKgmP26M.O"


def trace_docs(i, now):
    """The documents of trace i of the mix (api's segment first, as SDKs send it)."""
    tid = "1-%08x-%024x" % (int(now), 0xabc000 + i)
    fault = i == FAULT_AT
    call = {"name": "api", "id": "%016x" % (0xb00 + i), "namespace": "remote", "traced": True,
            "start_time": now + 0.05, "end_time": now + 0.35,
            "http": {"response": {"status": 500 if fault else 200}}}
    if fault:
        call["fault"] = True
    web = {"name": "web", "id": "%016x" % (0xa00 + i), "trace_id": tid,
           "start_time": now, "end_time": now + 0.3, "subsegments": [call]}
    api = {"name": "api", "id": "%016x" % (0xc00 + i), "trace_id": tid,
           "parent_id": call["id"], "start_time": now + 0.06, "end_time": now + 0.21}
    if fault:
        api["fault"] = True
    return [api, web]


def send_mix(case, x, bad=True):
    """Sends the mix to x over UDP, and one datagram that is not JSON when bad."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    case.addCleanup(sock.close)
    now = time.time()
    for i in range(TRACES):
        for d in trace_docs(i, now):
            sock.sendto(HEADER + json.dumps(d).encode(), x.udp_addr)
    if bad:
        sock.sendto(HEADER + b"not json", x.udp_addr)


def scrape_value(x, key):
    """The value of one sample line of xrayd's own /metrics, or None."""
    status, body = harness.http_get(x.tcp_url + "/metrics")
    if status != 200:
        return None
    for line in body.decode("utf-8").splitlines():
        if line.startswith(key + " "):
            return float(line.rpartition(" ")[2])
    return None


class Prometheus:
    """A Prometheus on a given or free loopback port: a remote-write receiver, and a
    scraper of `scrape` (a host:port serving /metrics, every second) when given."""

    def __init__(self, case, port=None, basic_auth=False, scrape=None, name="prometheus"):
        self.port = port or harness.free_port()
        self.auth = None
        conf = os.path.join(case.tmp, name + ".yml")
        with open(conf, "w") as f:
            if scrape:
                f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                        "scrape_configs:\n  - job_name: xrayd\n    static_configs:\n"
                        "      - targets: ['%s']\n" % scrape)
            else:
                f.write("global:\n  scrape_interval: 15s\n")
        argv = ["prometheus", "--config.file=" + conf,
                "--storage.tsdb.path=" + os.path.join(case.tmp, name + "-data"),
                "--web.listen-address=127.0.0.1:%d" % self.port,
                "--web.enable-remote-write-receiver"]
        if basic_auth:
            web = os.path.join(case.tmp, name + "-web.yml")
            with open(web, "w") as f:
                f.write("basic_auth_users:\n  %s: %s\n" % (USER, PASSWORD_BCRYPT))
            argv.append("--web.config.file=" + web)
            self.auth = "Basic " + base64.b64encode(
                ("%s:%s" % (USER, PASSWORD)).encode()).decode()
        self.url = "http://127.0.0.1:%d/api/v1/write" % self.port
        self.proc = harness.Proc(name, argv, harness.clean_env(case.tmp), case.tmp)
        case._procs.append(self.proc)
        case.addCleanup(self.proc.stop)
        wait_for(lambda: self._get("/-/ready")[0] == 200, 30, 0.2, "Prometheus to be ready")

    def _get(self, path):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path))
        if self.auth:
            req.add_header("Authorization", self.auth)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError:
            return 0, b""

    def query(self, expr, at=None):
        """The result vector of an instant query ([] when empty), at now or at time `at`."""
        args = {"query": expr}
        if at is not None:
            args["time"] = "%.3f" % at
        status, body = self._get("/api/v1/query?" + urllib.parse.urlencode(args))
        if status != 200:
            raise AssertionError("query %s: HTTP %d %r" % (expr, status, body[:300]))
        return json.loads(body)["data"]["result"]

    def value(self, expr, at=None):
        """The one value of expr as a float, None when the vector is empty."""
        res = self.query(expr, at)
        if not res:
            return None
        if len(res) != 1:
            raise AssertionError("%s: %d series: %r" % (expr, len(res), res))
        return float(res[0]["value"][1])
