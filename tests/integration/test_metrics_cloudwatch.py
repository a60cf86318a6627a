# SPDX-License-Identifier: Apache-2.0
"""The CloudWatch sink against moto: segments sent over UDP become EMF log events in
CloudWatch Logs (the log group and stream created by xrayd), read back with boto3 and
checked member by member, or PutMetricData data read back with the AWS CLI's
get-metric-statistics.

The traffic is test_metrics_scrape's: three traces where a user calls "web" (root,
0.3 s), which calls "api" (a traced remote call the caller sees take 0.3 s, api itself
0.15 s); the second call faults on both sides. With a 1 s interval the traffic may
land in more than one interval, so the checks add up every event or datum.
"""

import json
import socket
import subprocess
import time

import harness
from harness import IntegrationCase, wait_for
from metrics_peers import HEADER, TRACES, trace_docs

NAMESPACE = "XrayTest"
GROUP = "/xrayd/test-metrics"
STREAM = "it-stream"


class MetricsCloudWatchTest(IntegrationCase):
    def start(self, output, extra=()):
        moto = self.start_moto()
        env = harness.aws_env(moto, "AKIDTEST", "secret")
        env["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"] = moto.url
        env["AWS_ENDPOINT_URL_CLOUDWATCH"] = moto.url
        args = harness.aws_args() + ["--trace-window", "1", "--cloudwatch-output", output,
                                     "--cloudwatch-interval", "1",
                                     "--cloudwatch-namespace", NAMESPACE] + list(extra)
        x = self.start_xrayd(args, env)
        return moto, x

    def send_traces(self, x):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        now = time.time()
        for i in range(TRACES):
            for d in trace_docs(i, now):
                sock.sendto(HEADER + json.dumps(d).encode(), x.udp_addr)

    # ---- EMF ----

    def log_events(self, moto):
        logs = moto.client("logs")
        try:
            resp = logs.get_log_events(logGroupName=GROUP, logStreamName=STREAM,
                                       startFromHead=True)
        except logs.exceptions.ResourceNotFoundException:
            return []
        return [(e["timestamp"], json.loads(e["message"])) for e in resp["events"]]

    @staticmethod
    def totals(events, dims):
        """Per dimension values (a tuple): metric -> summed count or list of values."""
        out = {}
        for _, ev in events:
            key = tuple(ev.get(d) for d in dims)
            if None in key:
                continue
            acc = out.setdefault(key, {})
            for k, v in ev.items():
                if isinstance(v, list):
                    acc.setdefault(k, []).extend(v)
                elif isinstance(v, (int, float)):
                    acc[k] = acc.get(k, 0) + v
        return out

    def test_emf_log_events(self):
        moto, x = self.start("emf", ["--cloudwatch-log-group", GROUP,
                                     "--cloudwatch-log-stream", STREAM,
                                     "--cloudwatch-storage-resolution", "1"])
        self.send_traces(x)

        def done():
            ev = self.log_events(moto)
            t = self.totals(ev, ("Client", "Server"))
            n = self.totals(ev, ("Service",))
            return (t.get(("web", "api"), {}).get("Requests") == TRACES and
                    n.get(("api",), {}).get("Requests") == TRACES and
                    n.get(("web",), {}).get("Requests") == TRACES and ev)

        events = wait_for(done, 30, 0.5, "the EMF events in moto's log stream")
        start_ms = int(time.time() * 1000) - 120000
        for ts, ev in events:
            aws = ev["_aws"]
            self.assertEqual(aws["Timestamp"], ts)
            self.assertGreater(ts, start_ms)
            self.assertEqual(len(aws["CloudWatchMetrics"]), 1)
            d = aws["CloudWatchMetrics"][0]
            self.assertEqual(d["Namespace"], NAMESPACE)
            # Node and edge metrics never share an event: each dimension set would make
            # its own metric from the same values.
            self.assertIn(d["Dimensions"], ([["Service"]], [["Client", "Server"]]), ev)
            names = [m["Name"] for m in d["Metrics"]]
            for m in d["Metrics"]:
                self.assertEqual(m["StorageResolution"], 1)
                self.assertEqual(m["Unit"], "Milliseconds" if "Latency" in m["Name"] else "Count")
                self.assertIn(m["Name"], ev)
            if d["Dimensions"] == [["Service"]]:
                self.assertNotIn("Client", ev)
                self.assertTrue(set(names) <= {"Requests", "Errors", "Throttles", "Faults",
                                               "Latency"}, names)
            else:
                self.assertNotIn("Service", ev)
                self.assertTrue(set(names) <= {"Requests", "Failed", "ClientLatency",
                                               "ServerLatency"}, names)
            for k in ("Service", "Client", "Server"):
                if k in ev:
                    self.assertIsInstance(ev[k], str)

        nodes = self.totals(events, ("Service",))
        api, web = nodes[("api",)], nodes[("web",)]
        self.assertEqual(api["Requests"], 3)
        self.assertEqual(api.get("Faults"), 1)
        self.assertEqual(api.get("Errors", 0), 0)
        self.assertEqual(web["Requests"], 3)
        self.assertEqual(web.get("Faults", 0), 0)
        # One value per observation, each its bucket's midpoint: api took 0.15 s (the
        # 0.1-0.2 s bucket), web 0.3 s (0.2-0.4 s).
        self.assertEqual(len(api["Latency"]), 3)
        self.assertTrue(all(100 <= v <= 200 for v in api["Latency"]), api["Latency"])
        self.assertEqual(len(web["Latency"]), 3)
        self.assertTrue(all(200 <= v <= 400 for v in web["Latency"]), web["Latency"])

        edges = self.totals(events, ("Client", "Server"))
        e = edges[("web", "api")]
        self.assertEqual(e["Requests"], 3)
        self.assertEqual(e["Failed"], 1)
        self.assertEqual(len(e["ClientLatency"]), 3)
        self.assertTrue(all(200 <= v <= 400 for v in e["ClientLatency"]), e)
        self.assertTrue(all(100 <= v <= 200 for v in e["ServerLatency"]), e)
        u = edges[("user", "web")]
        self.assertEqual(u["Requests"], 3)
        self.assertEqual(u.get("Failed", 0), 0)

        # Quiet intervals add nothing.
        n = len(self.log_events(moto))
        time.sleep(2.5)
        later = self.log_events(moto)
        self.assertEqual(self.totals(later, ("Service",))[("api",)]["Requests"], 3)
        self.assertEqual(len(later), n)
        rc, _ = x.terminate(10)
        self.assertEqual(rc, 0)

    # ---- PutMetricData ----

    def stats(self, moto, metric, dims, statistics):
        env = harness.clean_env(self.tmp, {"AWS_ACCESS_KEY_ID": "AKIDTEST",
                                           "AWS_SECRET_ACCESS_KEY": "secret",
                                           "AWS_DEFAULT_REGION": harness.REGION})
        now = time.time()
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        argv = ["aws", "--endpoint-url", moto.url, "--region", harness.REGION, "--output",
                "json", "cloudwatch", "get-metric-statistics", "--namespace", NAMESPACE,
                "--metric-name", metric, "--period", "60",
                "--start-time", time.strftime(fmt, time.gmtime(now - 600)),
                "--end-time", time.strftime(fmt, time.gmtime(now + 600)),
                "--statistics"] + list(statistics) + ["--dimensions"] + [
                    "Name=%s,Value=%s" % kv for kv in dims]
        r = subprocess.run(argv, env=env, capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)["Datapoints"]

    def total(self, moto, metric, dims, stat="Sum"):
        return sum(p[stat] for p in self.stats(moto, metric, dims, [stat]))

    def test_put_metric_data(self):
        moto, x = self.start("put-metric-data")
        self.send_traces(x)
        api = [("Service", "api")]
        edge = [("Client", "web"), ("Server", "api")]
        wait_for(lambda: self.total(moto, "Requests", edge) == TRACES, 40, 1.0,
                 "PutMetricData's edge requests in moto")
        wait_for(lambda: self.total(moto, "Requests", api) == TRACES, 20, 1.0,
                 "PutMetricData's api requests in moto")
        self.assertEqual(self.total(moto, "Faults", api), 1)
        self.assertEqual(self.total(moto, "Requests", [("Service", "web")]), 3)
        self.assertEqual(self.total(moto, "Failed", edge), 1)
        self.assertEqual(self.total(moto, "Requests", [("Client", "user"), ("Server", "web")]), 3)
        # Latency as Values and Counts: three observations of about 150 ms.
        lat = self.stats(moto, "Latency", api, ["SampleCount", "Maximum", "Minimum"])
        self.assertEqual(sum(p["SampleCount"] for p in lat), 3)
        self.assertTrue(all(100 <= p["Maximum"] <= 200 and 100 <= p["Minimum"] <= 200
                            for p in lat), lat)
        self.assertEqual(lat[0]["Unit"], "Milliseconds")
        cl = self.stats(moto, "ClientLatency", edge, ["SampleCount", "Maximum"])
        self.assertEqual(sum(p["SampleCount"] for p in cl), 3)
        self.assertTrue(all(200 <= p["Maximum"] <= 400 for p in cl), cl)
        rc, _ = x.terminate(10)
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    harness.main()
