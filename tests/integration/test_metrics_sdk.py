# SPDX-License-Identifier: Apache-2.0
"""Metrics from real SDK traffic, read back from real Prometheus servers, and full
fidelity against moto.

- test_known_mix_in_prometheus_both_ways: a Python SDK service "front" calls a Node
  SDK service "back", which calls an uninstrumented "inventory"; sampling pinned to
  100 % by xrayd's rules (the SDKs' pollers take them from xrayd). N requests, one in
  five failing in back with a 500. One Prometheus scrapes xrayd's /metrics, a second
  receives its remote write; PromQL through each one's HTTP API returns exactly N
  requests per edge, N/5 faults, N histogram observations, and the same numbers
  again from samples taken after the mix settled (nothing counted twice).
- test_full_fidelity_counts_every_request: xrayd uploads to moto with --full-fidelity
  and a rule keeping only /order/1* (FixedRate 1, the Default 0): the SDKs are served
  FixedRate 1.0 and send every segment, so xray_segments_total counts every request,
  while moto holds exactly the kept traces (both segments of each), xrayd counts the
  rest as sampled out, and its decision totals at exit (overall and per rule) add up
  to the N requests.
"""

import json
import os
import re
import shutil
import sys
import time
import unittest

import harness
from harness import IntegrationCase, clean_env, wait_for
from metrics_peers import Prometheus, scrape_value
from test_service_graph import Inventory, get

N = 20


def fails(i):
    return i % 5 == 0


class MetricsSdkTest(IntegrationCase):
    def start_services(self, x):
        """front (Python SDK) -> back (Node SDK) -> inventory; returns front's port."""
        inventory = Inventory()
        self.addCleanup(inventory.close)
        env = clean_env(self.tmp, {
            "AWS_XRAY_DAEMON_ADDRESS": "tcp:127.0.0.1:%d udp:%s" % (x.tcp_port,
                                                                   "%s:%d" % x.udp_addr)})
        back = self.start_app("back", [harness.node_exe(),
                                       os.path.join(harness.NODE_DIR, "graph_back.js"),
                                       str(inventory.port)], env)
        front = self.start_app("front", [sys.executable,
                                         os.path.join(harness.APPS, "graph_front.py"),
                                         "--back-port", str(back["port"])], env)
        return front["port"]

    def rules_file(self, doc):
        path = os.path.join(self.tmp, "rules.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        return path

    @unittest.skipUnless(shutil.which("prometheus"), "prometheus is not installed")
    def test_known_mix_in_prometheus_both_ways(self):
        pushed = Prometheus(self, name="receiver")
        rules = self.rules_file({"version": 2, "rules": [],
                                 "default": {"fixed_target": 1000, "rate": 1.0}})
        x = self.start_xrayd(["--upstream", "local", "--sampling-rules", rules,
                              "--trace-window", "2", "--remote-write-url", pushed.url,
                              "--remote-write-interval", "1"])
        scraper = Prometheus(self, scrape="127.0.0.1:%d" % x.tcp_port, name="scraper")
        port = self.start_services(x)
        for i in range(N):
            status, body, _ = get("http://127.0.0.1:%d/order/%d%s" %
                                  (port, i, "?fail=1" if fails(i) else ""))
            self.assertEqual(status, 500 if fails(i) else 200)
            self.assertTrue(body["sampled"], body)
        faults = sum(1 for i in range(N) if fails(i))

        expect = {
            'sum(traces_service_graph_request_total{client="user",server="front"})': N,
            'sum(traces_service_graph_request_total{client="front",server="back"})': N,
            'sum(traces_service_graph_request_failed_total{client="front",server="back"})':
                faults,
            'sum(traces_service_graph_request_total{client="back",server="inventory"})': N,
            'sum(traces_service_graph_request_failed_total{client="back",server="inventory"})':
                0,
            'sum(traces_service_graph_request_server_seconds_count'
            '{client="front",server="back"})': N,
            'sum(traces_service_graph_request_client_seconds_count'
            '{client="front",server="back"})': N,
            'sum(xray_segments_total{service="back",status="fault"})': faults,
            'sum(xray_segments_total{service="back"})': N,
            'sum(xray_segments_total{service="front",status="fault"})': faults,
            'sum(xray_segment_duration_seconds_count{service="front"})': N,
        }
        for prom, what in ((scraper, "the scraping Prometheus"),
                           (pushed, "the remote-write receiver")):
            def all_there():
                got = {q: prom.value(q) for q in expect}
                return got if got == {q: float(v) for q, v in expect.items()} else None
            try:
                wait_for(all_there, 45, 0.5, "%s to hold the mix" % what)
            except AssertionError:
                got = {q: prom.value(q) for q in expect}
                self.fail("%s: %s" % (what, {q: (got[q], v) for q, v in expect.items()
                                             if got[q] != v}))
        # Later scrapes and pushes (newer samples) keep the same numbers: nothing is
        # counted twice, no series restarts.
        settled = time.time()
        newest = ('min(timestamp(traces_service_graph_request_total'
                  '{client="front",server="back"}))')
        for prom, what in ((scraper, "the scraping Prometheus"),
                           (pushed, "the remote-write receiver")):
            wait_for(lambda: (prom.value(newest) or 0) > settled + 1, 15, 0.25,
                     "%s to take samples newer than the settled mix" % what)
            got = {q: prom.value(q) for q in expect}
            self.assertEqual(got, {q: float(v) for q, v in expect.items()}, what)
        # The push went through the sink, counted.
        self.assertGreater(scrape_value(
            x, 'xrayd_metrics_sink_requests_total{sink="remote_write",outcome="sent"}'), 0)
        rc, _ = x.terminate(10)
        self.assertEqual(rc, 0, x.log()[-3000:])

    def test_full_fidelity_counts_every_request(self):
        moto = self.start_moto()
        keep = {"SamplingRule": {
            "RuleName": "keep-1", "ResourceARN": "*", "Priority": 1, "FixedRate": 1.0,
            "ReservoirSize": 0, "ServiceName": "*", "ServiceType": "*", "Host": "*",
            "HTTPMethod": "*", "URLPath": "/order/1*", "Version": 1, "Attributes": {}}}
        default = {"SamplingRule": {
            "RuleName": "Default", "ResourceARN": "*", "Priority": 10000, "FixedRate": 0.0,
            "ReservoirSize": 0, "ServiceName": "*", "ServiceType": "*", "Host": "*",
            "HTTPMethod": "*", "URLPath": "*", "Version": 1, "Attributes": {}}}
        rules = self.rules_file({"SamplingRuleRecords": [keep, default]})
        x = self.start_xrayd(harness.aws_args() + ["--sampling-rules", rules, "--full-fidelity",
                                                    "--trace-window", "2"],
                             harness.aws_env(moto, "AKIDTEST", "secret"))
        port = self.start_services(x)
        ids, kept = [], set()
        for i in range(N):
            status, body, _ = get("http://127.0.0.1:%d/order/%d" % (port, i))
            self.assertEqual(status, 200)
            self.assertTrue(body["sampled"], "the SDK was not served FixedRate 1.0: %r" % body)
            ids.append(body["trace_id"])
            if str(i).startswith("1"):
                kept.add(body["trace_id"])

        def counted():  # every origin type and status of front's segments
            status, body = harness.http_get(x.tcp_url + "/metrics")
            return status == 200 and sum(
                float(line.rpartition(" ")[2]) for line in body.decode().splitlines()
                if line.startswith('xray_segments_total{service="front",'))
        wait_for(lambda: counted() == N, 30, 0.25, "xray_segments_total to count every request")
        # The graph sees every request too, before the decision.
        self.assertEqual(scrape_value(x, 'traces_service_graph_request_total'
                                         '{client="user",server="front",connection_type=""}'), N)
        dropped = 2 * (N - len(kept))  # front's and back's segment of each dropped trace
        wait_for(lambda: scrape_value(x, "xrayd_segments_sampled_out_total") == dropped, 15,
                 0.25, "the dropped traces' documents counted as sampled out")
        wait_for(lambda: scrape_value(x, "xrayd_segments_sent_total") == 2 * len(kept), 15,
                 0.25, "the kept traces' documents uploaded")
        rc, _ = x.terminate(15)
        self.assertEqual(rc, 0, x.log()[-3000:])
        self.assertEqual(decision_totals(x.log()),
                         {"traces kept": len(kept), "by quota": 0, "by rate": len(kept),
                          "with no rules": 0, "dropped": N - len(kept),
                          "documents kept": 2 * len(kept), "sampled out": dropped})
        self.assertEqual(rule_totals(x.log()),
                         {"keep-1": (len(kept), 0), "Default": (0, N - len(kept))})

        docs = [json.loads(d) for d in moto.batch_get_documents(ids)]
        in_moto = {d["trace_id"] for d in docs}
        self.assertEqual(in_moto, kept)  # /order/1 and /order/10..19: 11 of 20
        self.assertLess(len(in_moto), N)
        for tid in kept:
            self.assertEqual(sorted(d["name"] for d in docs if d["trace_id"] == tid),
                             ["back", "front"], tid)


def decision_totals(log):
    """The numbers of xrayd's "sampling totals" line (logged at exit)."""
    m = re.search(r"sampling totals: traces kept (\d+) \(quota (\d+), rate (\d+), no rules "
                  r"(\d+)\), dropped (\d+); documents kept (\d+), sampled out (\d+);", log)
    if not m:
        raise AssertionError("no sampling totals in the log:\n" + log[-3000:])
    return dict(zip(("traces kept", "by quota", "by rate", "with no rules", "dropped",
                     "documents kept", "sampled out"), map(int, m.groups())))


def rule_totals(log):
    """{rule: (traces kept, traces dropped)} of xrayd's per-rule lines (logged at exit)."""
    return {m.group(1): (int(m.group(2)), int(m.group(3))) for m in re.finditer(
        r'sampling rule "([^"]+)": traces kept (\d+), dropped (\d+);', log)}


if __name__ == "__main__":
    harness.main()
