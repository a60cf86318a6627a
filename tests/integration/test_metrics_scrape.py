# SPDX-License-Identifier: Apache-2.0
"""GET /metrics: segments sent over UDP become the service-graph and segment series
and the daemon's own counters, in a body promtool accepts, as text or OpenMetrics;
a real Prometheus scraping xrayd reads the same counts.

Three traces: a user calls "web" (root), which calls "api" (a remote, traced call;
api's segment names the call as its parent). The second call faults, on both sides.
"""

import json
import os
import shutil
import subprocess
import unittest
import urllib.parse
import urllib.request

import harness
from harness import IntegrationCase, wait_for
from metrics_peers import TRACES, Prometheus, send_mix

def series(text):
    """{'name{labels}': value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def edge(name, client, server):
    return '%s{client="%s",server="%s",connection_type=""}' % (name, client, server)


class MetricsScrapeTest(IntegrationCase):
    def send_traces(self, x):
        send_mix(self, x)

    def scrape(self, x, accept=None):
        req = urllib.request.Request(x.tcp_url + "/metrics")
        if accept:
            req.add_header("Accept", accept)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode("utf-8")

    def test_scrape_counts_and_formats(self):
        x = self.start_xrayd(["--trace-window", "1"])
        self.send_traces(x)
        want = "%s %d" % (edge("traces_service_graph_request_total", "web", "api"), TRACES)
        wait_for(lambda: want in self.scrape(x)[2], 15, 0.25, "the graph's series")
        status, ctype, text = self.scrape(x)
        self.assertEqual(status, 200)
        self.assertEqual(ctype, "text/plain; version=0.0.4; charset=utf-8")
        s = series(text)
        expect = {
            edge("traces_service_graph_request_total", "user", "web"): 3,
            edge("traces_service_graph_request_total", "web", "api"): 3,
            edge("traces_service_graph_request_failed_total", "user", "web"): 0,
            edge("traces_service_graph_request_failed_total", "web", "api"): 1,
            edge("traces_service_graph_request_client_seconds_count", "web", "api"): 3,
            edge("traces_service_graph_request_server_seconds_count", "web", "api"): 3,
            'xray_segments_total{service="web",type="",status="ok"}': 3,
            'xray_segments_total{service="api",type="",status="ok"}': 2,
            'xray_segments_total{service="api",type="",status="fault"}': 1,
            'xray_segment_duration_seconds_count{service="api",type=""}': 3,
            'xrayd_segments_received_total': 7,
            'xrayd_segments_rejected_total{reason="not_json"}': 1,
            'xrayd_segments_rejected_total{reason="too_big"}': 0,
        }
        for k, v in expect.items():
            self.assertEqual(s.get(k), v, k + "\n" + text)
        # The caller saw 0.3 s, api itself 0.15 s.
        client_b = edge("traces_service_graph_request_client_seconds_bucket", "web", "api")
        server_b = edge("traces_service_graph_request_server_seconds_bucket", "web", "api")
        self.assertEqual(s[client_b[:-1] + ',le="0.2"}'], 0, text)
        self.assertEqual(s[client_b[:-1] + ',le="0.4"}'], 3, text)
        self.assertEqual(s[server_b[:-1] + ',le="0.1"}'], 0, text)
        self.assertEqual(s[server_b[:-1] + ',le="0.2"}'], 3, text)
        self.assertGreater(s['xrayd_memory_limit_bytes{budget="graph"}'], 0)
        self.assertIn('xrayd_memory_used_bytes{budget="metrics"}', s)

        path = os.path.join(self.tmp, "metrics.txt")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=30)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, b"", b""), "promtool")

        status, ctype, om = self.scrape(x, "application/openmetrics-text; version=1.0.0")
        self.assertEqual(ctype, "application/openmetrics-text; version=1.0.0; charset=utf-8")
        self.assertTrue(om.endswith("# EOF\n"), om[-200:])
        self.assertEqual(series(om)[edge("traces_service_graph_request_total", "web", "api")], 3)

        rc, _ = x.terminate(10)
        self.assertEqual(rc, 0)

    @unittest.skipUnless(shutil.which("prometheus"), "prometheus is not installed")
    def test_prometheus_scrapes(self):
        x = self.start_xrayd(["--trace-window", "1"])
        self.send_traces(x)
        prom = Prometheus(self, scrape="127.0.0.1:%d" % x.tcp_port)
        port = prom.port
        q = urllib.parse.urlencode({"query": 'traces_service_graph_request_total'
                                    '{client="web",server="api"}'})
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, q)

        def value():
            status, body = harness.http_get(url)
            if status != 200:
                return None
            res = json.loads(body)["data"]["result"]
            return res and res[0]["value"][1] == str(TRACES) and res[0]

        got = wait_for(value, 40, 0.5, "Prometheus to read the request count")
        self.assertNotIn("connection_type", got["metric"])  # Prometheus drops empty labels
        self.assertEqual(got["metric"]["job"], "xrayd")


if __name__ == "__main__":
    harness.main()
