# SPDX-License-Identifier: Apache-2.0
"""Remote write into a real Prometheus (--web.enable-remote-write-receiver), read back
through its query API with exact values.

- The traffic of test_metrics_scrape.py (three traces: a user calls "web", which calls
  "api"; the second call faults on both sides) arrives as service-graph and segment
  series, with basic auth checked by Prometheus itself; a series that goes idle gets a
  stale marker and leaves PromQL, while what it said before stays queryable; a wrong
  password is refused and counted as dropped.
- With an hour-long interval, what came since the last push is sent when xrayd stops.
- A receiver that is down: the bodies wait in a small queue (the oldest dropped and
  counted), and once Prometheus starts on that port the samples made while it was
  down arrive.
"""

import os
import shutil
import time
import unittest

import harness
from harness import IntegrationCase, wait_for
from metrics_peers import (FAULT_AT, PASSWORD, TRACES, USER, Prometheus, scrape_value,
                           send_mix)

EDGE = '{client="web",server="api"}'
ROOT = '{client="user",server="web"}'


def sink_requests(x, outcome):
    return scrape_value(x, 'xrayd_metrics_sink_requests_total{sink="remote_write",outcome="%s"}'
                        % outcome) or 0


@unittest.skipUnless(shutil.which("prometheus"), "prometheus is not installed")
class MetricsRemoteWriteTest(IntegrationCase):
    def send_traces(self, x):
        send_mix(self, x)

    def secret_file(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text + "\n")
        os.chmod(path, 0o600)
        return path

    def test_samples_reach_prometheus(self):
        prom = Prometheus(self, basic_auth=True)
        x = self.start_xrayd([
            "--trace-window", "1", "--metrics-idle-expiry", "4",
            "--remote-write-url", prom.url, "--remote-write-interval", "1",
            "--remote-write-username", USER,
            "--remote-write-password-file", self.secret_file("pw", PASSWORD)])
        self.send_traces(x)

        req = "traces_service_graph_request_total"
        wait_for(lambda: prom.value(req + EDGE) == TRACES, 30, 0.25,
                 "the edge's request count in Prometheus")
        # Every later question is asked at this instant, so the idle expiry below
        # cannot race the reads.
        at = time.time()
        got = prom.query(req + EDGE, at)
        # Remote write adds no job or instance; the empty connection_type is not sent.
        self.assertEqual(got[0]["metric"], {"__name__": req, "client": "web", "server": "api"})
        expect = {
            req + ROOT: 3,
            "traces_service_graph_request_failed_total" + EDGE: 1,
            "traces_service_graph_request_failed_total" + ROOT: 0,
            'xray_segments_total{service="web",status="ok"}': 3,
            'xray_segments_total{service="api",status="ok"}': 2,
            'xray_segments_total{service="api",status="fault"}': 1,
            'xray_segment_duration_seconds_count{service="api"}': 3,
            'xray_segment_duration_seconds_bucket{service="api",le="+Inf"}': 3,
            # The caller saw 0.3 s, api itself 0.15 s.
            'traces_service_graph_request_client_seconds_bucket'
            '{client="web",server="api",le="0.2"}': 0,
            'traces_service_graph_request_client_seconds_bucket'
            '{client="web",server="api",le="0.4"}': 3,
            'traces_service_graph_request_server_seconds_bucket'
            '{client="web",server="api",le="0.1"}': 0,
            'traces_service_graph_request_server_seconds_bucket'
            '{client="web",server="api",le="0.2"}': 3,
            'traces_service_graph_request_server_seconds_count' + EDGE: 3,
            'xrayd_segments_received_total': 7,
            'xrayd_segments_rejected_total{reason="not_json"}': 1,
        }
        for expr, want in expect.items():
            self.assertEqual(prom.value(expr, at), want, expr)
        server_sum = prom.value("traces_service_graph_request_server_seconds_sum" + EDGE, at)
        self.assertAlmostEqual(server_sum, 3 * 0.15, places=6)
        self.assertGreater(sink_requests(x, "sent"), 0)

        # The traffic stopped: past the idle expiry the series expire, their stale
        # markers arrive and PromQL stops returning them (without the markers it would
        # return the last value for five minutes). What they said before stays.
        wait_for(lambda: prom.query(req + EDGE) == [], 30, 0.5, "the edge's stale marker")
        wait_for(lambda: prom.query('xray_segment_duration_seconds_bucket{service="api"}') == [],
                 10, 0.5, "the histogram's stale markers")
        self.assertEqual(prom.value(req + EDGE, at), TRACES)
        self.assertEqual(prom.value('xray_segments_total{service="api",status="fault"}', at), 1)
        # The daemon's own counters are refreshed, so they stay.
        self.assertEqual(prom.value("xrayd_segments_received_total"), 7)
        self.assertEqual(sink_requests(x, "dropped"), 0)

        # A wrong password: Prometheus answers 401, which is never retried.
        bad = self.start_xrayd([
            "--remote-write-url", prom.url, "--remote-write-interval", "1",
            "--remote-write-username", USER,
            "--remote-write-password-file", self.secret_file("bad", "not-it")], name="xrayd-bad")
        wait_for(lambda: sink_requests(bad, "dropped") >= 2, 20, 0.25,
                 "the refused requests to be counted")
        self.assertEqual(sink_requests(bad, "sent"), 0)
        self.assertEqual(sink_requests(bad, "retried"), 0)
        self.assertIn("HTTP 401", bad.log())
        self.assertNotIn("not-it", bad.log())

        for proc in (x, bad):
            rc, _ = proc.terminate(10)
            self.assertEqual(rc, 0)

    def test_last_interval_sent_at_shutdown(self):
        """An interval far longer than the test: what came since the last push is
        exported and sent when xrayd stops, before it exits."""
        prom = Prometheus(self)
        x = self.start_xrayd(["--trace-window", "1", "--remote-write-url", prom.url,
                              "--remote-write-interval", "3600"])
        self.send_traces(x)
        req = "traces_service_graph_request_total"
        wait_for(lambda: scrape_value(x, req + '{client="web",server="api",connection_type=""}')
                 == TRACES, 15, 0.1, "the mix in xrayd's registry")
        self.assertIsNone(prom.value(req + EDGE))  # nothing pushed yet
        rc, _ = x.terminate(10)
        self.assertEqual(rc, 0, x.log()[-3000:])
        self.assertIn("metrics sinks sent their last interval", x.log())
        wait_for(lambda: prom.value(req + EDGE) == TRACES, 15, 0.25,
                 "the shutdown push in Prometheus")
        self.assertEqual(prom.value("traces_service_graph_request_failed_total" + EDGE), 1)

    def test_receiver_down_then_up(self):
        port = harness.free_port()
        url = "http://127.0.0.1:%d/api/v1/write" % port
        # A queue of a few bodies: a second of this daemon's series is ~2 KB compressed.
        x = self.start_xrayd(["--trace-window", "1", "--remote-write-url", url,
                              "--remote-write-interval", "1", "--remote-write-queue", "12"])
        wait_for(lambda: sink_requests(x, "dropped") > 0, 40, 0.25,
                 "the full queue to drop its oldest body")
        self.assertGreater(sink_requests(x, "retried"), 0)
        self.assertEqual(sink_requests(x, "sent"), 0)

        # Traffic while the receiver is down, in bodies that wait in the queue.
        self.send_traces(x)
        wait_for(lambda: scrape_value(x, 'traces_service_graph_request_total{client="web",'
                                      'server="api",connection_type=""}') == TRACES,
                 15, 0.25, "the graph's series in xrayd")
        time.sleep(2.5)
        down_until = time.time()

        prom = Prometheus(self, port=port)
        req = "traces_service_graph_request_total" + EDGE
        # Read as of before Prometheus ran: only the queued bodies can answer.
        wait_for(lambda: prom.value(req, down_until) == TRACES, 60, 0.5,
                 "the samples made while the receiver was down")
        self.assertEqual(prom.value('xray_segments_total{service="api",status="fault"}',
                                    down_until), 1)
        # More than one queued body got through, each with its own timestamp.
        self.assertGreaterEqual(
            prom.value("count_over_time(%s[60s])" % req, down_until), 2)
        wait_for(lambda: sink_requests(x, "sent") >= 2, 20, 0.25, "the sent counter")
        self.assertGreater(sink_requests(x, "dropped"), 0)
        rc, _ = x.terminate(10)
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    harness.main()
