# SPDX-License-Identifier: Apache-2.0
"""The service graph and the read API from real SDK traffic, read with the AWS CLI.

A user calls "front" (Python X-Ray SDK 2.x, http.server, `requests` patched), which
calls "back" (Node SDK aws-xray-sdk-core, middleware utilities, captureHTTPsGlobal),
which calls "inventory", a plain uninstrumented HTTP server of this test. Both SDKs
take their sampling rules from xrayd (100 %: FixedRate 1.0) and send their segments
through a recording UDP relay; one of the N requests makes back answer 500. Then:

- get-service-graph: client -> front -> back -> inventory (inferred, `remote`,
  state unknown) with the exact counts: N requests, one fault;
- batch-get-traces: every document the SDKs sent, byte for byte, two per trace;
- get-trace-summaries: all N, `fault` the one faulted trace, `service("back")` all N,
  an unsupported expression refused with a message saying what is supported, and the
  CLI's pagination (--max-items / --starting-token) still yields all N;
- get-trace-graph of the faulted trace: front -> back with its one fault.
"""

import collections
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import unittest

import boto3
import botocore.config
import botocore.exceptions
from botocore import UNSIGNED

import harness
from harness import IntegrationCase, clean_env, wait_for

N = 10
FAIL_AT = 6            # the request sent with ?fail=1
HEADER_AT = 3          # the request that arrives with its caller's X-Amzn-Trace-Id
ORIGIN = "AWS::ECS::Container"  # both apps load their SDK's ECS plugin (no network)


class Inventory:
    """The uninstrumented dependency: answers every GET 200 and counts them."""

    def __init__(self):
        self.hits = 0
        lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                with lock:
                    outer.hits += 1
                body = b'{"in_stock":true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


def get(url, headers=None, timeout=15):
    """(status, parsed JSON body, headers) of a GET without proxies."""
    import urllib.error
    import urllib.request
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, json.loads(r.read()), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers


def by_key(services):
    """{(Name, Type): service} of a GetServiceGraph/GetTraceGraph answer."""
    return {(s.get("Name"), s.get("Type")): s for s in services}


def edges(services):
    """{(caller (Name, Type), callee (Name, Type)): edge}."""
    ref = {s["ReferenceId"]: (s.get("Name"), s.get("Type")) for s in services}
    out = {}
    for s in services:
        for e in s.get("Edges", []):
            out[((s.get("Name"), s.get("Type")), ref.get(e["ReferenceId"]))] = e
    return out


def outline(services):
    """The graph in short for failure messages: a line per node and per edge."""
    ref = {s["ReferenceId"]: s.get("Name") for s in services}
    lines = []
    for s in services:
        st = s.get("SummaryStatistics") or {}
        lines.append("%s/%s root=%s state=%s total=%s fault=%s" % (
            s.get("Name"), s.get("Type"), s.get("Root"), s.get("State"), st.get("TotalCount"),
            stat(st, "FaultStatistics", "TotalCount")))
        for e in s.get("Edges", []):
            est = e.get("SummaryStatistics") or {}
            lines.append("  -> %s total=%s fault=%s" % (
                ref.get(e["ReferenceId"]), est.get("TotalCount"),
                stat(est, "FaultStatistics", "TotalCount")))
    return "\n" + "\n".join(lines)


def read_api(x):
    """An unsigned boto3 client of xrayd's read API, for the bounded polls."""
    cfg = botocore.config.Config(signature_version=UNSIGNED, retries={"max_attempts": 1},
                                 proxies={}, connect_timeout=3, read_timeout=10)
    return boto3.client("xray", endpoint_url=x.tcp_url, region_name=harness.REGION, config=cfg)


def stat(obj, *path):
    for k in path:
        obj = (obj or {}).get(k)
    return obj


class ServiceGraphTest(IntegrationCase):

    def cli(self, x, *args, check=True):
        """`aws xray ARGS` unsigned against xrayd's read API: (exit code, JSON, stderr)."""
        exe = shutil.which("aws")
        if not exe:
            raise unittest.SkipTest("aws CLI not on PATH")
        argv = [exe, "--endpoint-url", x.tcp_url, "--region", harness.REGION,
                "--no-sign-request", "--output", "json", "xray"] + list(args)
        r = subprocess.run(argv, env=clean_env(self.tmp), capture_output=True, timeout=60)
        err = r.stderr.decode("utf-8", "replace")
        if check and r.returncode != 0:
            self.fail("aws xray %s: exit %d: %s" % (" ".join(args), r.returncode, err[-2000:]))
        out = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None
        return r.returncode, out, err

    def test_graph_from_sdk_traffic(self):
        t_begin = time.time()
        node = harness.node_exe()
        rules = os.path.join(self.tmp, "rules.json")
        with open(rules, "w") as f:
            json.dump({"version": 2, "rules": [],
                       "default": {"fixed_target": 1000, "rate": 1.0}}, f)
        # A short window keeps the test short, but each half waits only that long for
        # its partner: on a loaded machine the SDKs' two segments have been seen more
        # than 2 s apart, so 5 s.
        x = self.start_xrayd(["--upstream", "local", "--sampling-rules", rules,
                              "--trace-window", "5"])
        relay = self.start_relay(x.udp_addr)
        inventory = Inventory()
        self.addCleanup(inventory.close)
        env = clean_env(self.tmp, {
            "AWS_XRAY_DAEMON_ADDRESS": "tcp:127.0.0.1:%d udp:%s" % (x.tcp_port, relay.address)})

        back = self.start_app("back", [node, os.path.join(harness.NODE_DIR, "graph_back.js"),
                                       str(inventory.port)], env)
        front = self.start_app("front", [sys.executable,
                                         os.path.join(harness.APPS, "graph_front.py"),
                                         "--back-port", str(back["port"])], env)
        # Both SDKs took xrayd's rules before their first decision.
        self.assertEqual(back["rules"], ["Default"], back)
        self.assertEqual(front["rules"], ["Default"], front)

        # N requests, one of them failing in back, one carrying its caller's trace id.
        given = "1-%08x-%024x" % (int(time.time()), 0x6a7a9e5)
        answers = []
        for i in range(N):
            url = "http://127.0.0.1:%d/order/%d%s" % (front["port"], i,
                                                       "?fail=1" if i == FAIL_AT else "")
            hdr = {"X-Amzn-Trace-Id": "Root=%s;Sampled=1" % given} if i == HEADER_AT else {}
            answers.append(get(url, hdr))
        self.assertEqual([a[0] for a in answers],
                         [500 if i == FAIL_AT else 200 for i in range(N)])
        self.assertTrue(all(a[1]["sampled"] for a in answers), answers)
        ids = [a[1]["trace_id"] for a in answers]
        self.assertEqual(len(set(ids)), N, ids)
        self.assertEqual(ids[HEADER_AT], given)
        self.assertEqual(inventory.hits, N)
        faulted = ids[FAIL_AT]

        # What the SDKs sent: a segment per service per request, nothing streamed.
        def sent_all():
            return len(relay.documents()) >= 2 * N
        wait_for(sent_all, 10, 0.05, "the SDKs' %d segments at the relay" % (2 * N))
        time.sleep(0.3)
        sent = relay.documents()
        docs = [json.loads(d) for d in sent]
        self.assertEqual(sorted(collections.Counter((d["name"], d["trace_id"]) for d in docs)
                                .items()),
                         sorted([(("front", t), 1) for t in ids] + [(("back", t), 1)
                                                                   for t in ids]))

        start_s, end_s = int(t_begin) - 60, int(time.time()) + 60
        api = read_api(x)
        with self.subTest("batch-get-traces"):
            self.wait_stored(api, ids, len(sent))
            self.check_batch_get(x, ids, sent)
        with self.subTest("get-service-graph"):
            self.wait_graph(api, start_s, end_s)
            self.check_service_graph(x, start_s, end_s, docs)
        with self.subTest("get-trace-summaries"):
            self.check_summaries(x, start_s, end_s, ids, faulted)
        with self.subTest("get-trace-graph"):
            self.check_trace_graph(x, faulted)

        rc, _ = x.terminate(10)
        self.assertEqual(rc, 0, x.log()[-3000:])
        took = time.time() - t_begin
        print("\n  service graph test: %.1f s" % took, file=sys.stderr)

    def wait_stored(self, api, ids, n):
        """Polls BatchGetTraces until the store holds n documents of these traces."""
        last = {}

        def stored():
            try:
                count = 0
                for i in range(0, len(ids), 5):
                    for t in api.batch_get_traces(TraceIds=ids[i:i + 5]).get("Traces", []):
                        count += len(t.get("Segments", []))
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
                count = repr(e)
            last["count"] = count
            return count == n
        try:
            wait_for(stored, 15, 0.3, "the store to hold the %d documents" % n)
        except AssertionError:
            self.fail("after 15 s the store holds %s of %d documents" % (last.get("count"), n))

    def wait_graph(self, api, start_s, end_s):
        """Polls GetServiceGraph until front, back and back's calls to inventory count
        all N requests (traces complete --trace-window after their last document)."""
        last = {}

        def done():
            try:
                g = api.get_service_graph(StartTime=start_s, EndTime=end_s)
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
                last["graph"] = repr(e)
                return False
            last["graph"] = g
            nodes = by_key(g.get("Services", []))
            call = edges(g.get("Services", [])).get((("back", ORIGIN), ("inventory", "remote")))
            return (stat(nodes.get(("front", ORIGIN)), "SummaryStatistics", "TotalCount") == N
                    and stat(nodes.get(("back", ORIGIN)), "SummaryStatistics", "TotalCount") == N
                    and stat(call, "SummaryStatistics", "TotalCount") == N)
        try:
            wait_for(done, 25, 0.5, "the service graph")
        except AssertionError:
            g = last.get("graph")
            self.fail("service graph incomplete after 25 s: %s" %
                      (outline(g["Services"]) if isinstance(g, dict) else g))

    def check_service_graph(self, x, start_s, end_s, docs):
        _, g, _ = self.cli(x, "get-service-graph", "--start-time", str(start_s),
                           "--end-time", str(end_s))
        svcs = g["Services"]
        dump = outline(svcs)
        nodes = by_key(svcs)
        client, front = ("front", "client"), ("front", ORIGIN)
        back, inv = ("back", ORIGIN), ("inventory", "remote")
        self.assertEqual(sorted(nodes, key=str), sorted([client, front, back, inv], key=str),
                         dump)
        self.assertEqual(len(svcs), 4, dump)
        self.assertIs(nodes[front].get("Root"), True, dump)
        self.assertNotEqual(nodes[back].get("Root"), True, dump)
        self.assertEqual(nodes[front].get("State"), "active", dump)
        self.assertEqual(nodes[back].get("State"), "active", dump)
        self.assertEqual(nodes[inv].get("State"), "unknown", dump)
        self.assertEqual(sorted(edges(svcs), key=str),
                         sorted([(client, front), (front, back), (back, inv)], key=str), dump)
        e = edges(svcs)

        # Server view of front and back: every request, one fault in each (front passes
        # back's 500 on).
        for key in (front, back):
            s = nodes[key]["SummaryStatistics"]
            self.assertEqual(s["TotalCount"], N, (key, dump))
            self.assertEqual(stat(s, "FaultStatistics", "TotalCount"), 1, (key, dump))
            self.assertEqual(stat(s, "ErrorStatistics", "TotalCount"), 0, (key, dump))
            self.assertEqual(s["OkCount"], N - 1, (key, dump))
            self.assertEqual(sum(h["Count"] for h in nodes[key]["ResponseTimeHistogram"]), N,
                             (key, dump))
        # Client view of the calls: the caller's subsegments.
        for pair, faults in (((client, front), 1), ((front, back), 1), ((back, inv), 0)):
            s = e[pair]["SummaryStatistics"]
            self.assertEqual(s["TotalCount"], N, (pair, dump))
            self.assertEqual(stat(s, "FaultStatistics", "TotalCount"), faults, (pair, dump))
            self.assertEqual(sum(h["Count"] for h in e[pair]["ResponseTimeHistogram"]), N,
                             (pair, dump))
        # Response times: edges from the caller's subsegment, nodes from the callee's
        # own segment, as the SDKs timed them.
        def total(docs, pick):
            return sum(d["end_time"] - d["start_time"] for d in map(pick, docs) if d)

        def remote(d):
            return next((s for s in d.get("subsegments", []) if s.get("namespace") == "remote"),
                        None)
        fronts = [d for d in docs if d["name"] == "front"]
        backs = [d for d in docs if d["name"] == "back"]
        want = {("node", front): total(fronts, lambda d: d),
                ("node", back): total(backs, lambda d: d),
                ("edge", (client, front)): total(fronts, lambda d: d),
                ("edge", (front, back)): total(fronts, remote),
                ("edge", (back, inv)): total(backs, remote)}
        for (kind, key), seconds in want.items():
            got = (nodes[key] if kind == "node" else e[key])["SummaryStatistics"]
            self.assertAlmostEqual(got["TotalResponseTime"], seconds, delta=0.001 * N,
                                   msg="%s %s: %s" % (kind, key, dump))

    def check_batch_get(self, x, ids, sent):
        got, traces = [], {}
        for i in range(0, len(ids), 5):
            _, out, _ = self.cli(x, "batch-get-traces", "--trace-ids", *ids[i:i + 5])
            self.assertEqual(out.get("UnprocessedTraceIds", []), [], out)
            for t in out["Traces"]:
                traces[t["Id"]] = [json.loads(s["Document"]) for s in t["Segments"]]
                got.extend(s["Document"] for s in t["Segments"])
        self.assertEqual(sorted(traces), sorted(ids))
        self.assertDocsEqual(sent, got, "the SDKs' documents via aws xray batch-get-traces")
        for tid, docs in traces.items():
            names = sorted(d["name"] for d in docs)
            self.assertEqual(names, ["back", "front"], tid)
            f = next(d for d in docs if d["name"] == "front")
            b = next(d for d in docs if d["name"] == "back")
            calls = [s for s in f.get("subsegments", []) if s.get("namespace") == "remote"]
            self.assertEqual([c["id"] for c in calls], [b.get("parent_id")],
                             "back's parent is front's remote subsegment: %s" % tid)

    def check_summaries(self, x, start_s, end_s, ids, faulted):
        rng = ["--start-time", str(start_s), "--end-time", str(end_s)]
        _, out, _ = self.cli(x, "get-trace-summaries", *rng)
        summaries = {s["Id"]: s for s in out["TraceSummaries"]}
        self.assertEqual(sorted(summaries), sorted(ids))
        self.assertEqual(sorted(t for t, s in summaries.items() if s.get("HasFault")), [faulted])
        for t, s in summaries.items():
            names = sorted(v["Name"] for v in s.get("ServiceIds", []))
            self.assertIn("front", names, s)
            self.assertIn("back", names, s)
            self.assertEqual(stat(s, "Http", "HttpStatus"), 500 if t == faulted else 200, s)

        _, out, _ = self.cli(x, "get-trace-summaries", *rng, "--filter-expression", "fault")
        self.assertEqual([s["Id"] for s in out["TraceSummaries"]], [faulted])

        _, out, _ = self.cli(x, "get-trace-summaries", *rng,
                             "--filter-expression", 'service("back")')
        self.assertEqual(sorted(s["Id"] for s in out["TraceSummaries"]), sorted(ids))

        rc, out, err = self.cli(x, "get-trace-summaries", *rng, "--filter-expression",
                                'rootcause.fault.service { name = "back" }', check=False)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("supported", err)

        # Pages of 3 through the CLI's tokens: every trace exactly once.
        seen, token, pages = [], None, 0
        while True:
            args = ["get-trace-summaries", *rng, "--max-items", "3"]
            if token:
                args += ["--starting-token", token]
            _, out, _ = self.cli(x, *args)
            pages += 1
            self.assertLessEqual(len(out["TraceSummaries"]), 3, out)
            seen.extend(s["Id"] for s in out["TraceSummaries"])
            token = out.get("NextToken")
            if not token or pages > N:
                break
        self.assertEqual(sorted(seen), sorted(ids))
        self.assertEqual(pages, 4)

    def check_trace_graph(self, x, faulted):
        _, g, _ = self.cli(x, "get-trace-graph", "--trace-ids", faulted)
        svcs = g["Services"]
        dump = outline(svcs)
        nodes = by_key(svcs)
        front, back = ("front", ORIGIN), ("back", ORIGIN)
        self.assertIn(front, nodes, dump)
        self.assertIn(back, nodes, dump)
        e = edges(svcs)
        self.assertIn((front, back), e, dump)
        s = e[(front, back)]["SummaryStatistics"]
        self.assertEqual(s["TotalCount"], 1, dump)
        self.assertEqual(stat(s, "FaultStatistics", "TotalCount"), 1, dump)
        self.assertEqual(stat(nodes[back], "SummaryStatistics", "FaultStatistics", "TotalCount"),
                         1, dump)


if __name__ == "__main__":
    harness.main()
