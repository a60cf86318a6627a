# SPDX-License-Identifier: Apache-2.0
"""libxray's example services (sdk-c/examples) against xrayd, and beside the Python SDK.

client -> frontend (C, libcurl through xray_curl) -> backend (C, one DynamoDB `aws`
subsegment per request, a 500 in ten). xrayd (local upstream) is the sampling authority
with a 100 % rule; the examples send their segments through a recording UDP relay.

- test_examples_traced_end_to_end: 50 requests. Every segment arrives whole (one
  complete document per service per trace, nothing in progress); the frontend's
  remote subsegment id is the backend's parent_id in the same trace; 5 of 50 backend
  segments are faults; the store returns what was sent; the service graph has
  client -> frontend -> backend -> DynamoDB with those counts.
- test_examples_fields_match_python_sdk: the same shape of traffic from the Python SDK
  (tests/integration/apps/graph_front.py -> apps/sdk_back.py with boto3 against moto)
  yields documents with the same fields as the C SDK's, SDK-specific blocks aside.
- test_examples_run_without_daemon: with AWS_XRAY_DAEMON_ADDRESS on a closed port,
  the services answer every request as usual.

The example binaries are found beside xrayd's build (<build>/sdk-c/examples), or in
$XRAYD_SDK_EXAMPLES.
"""

import json
import os
import sys
import time
import unittest
import urllib.error
import urllib.request

import botocore.config
import botocore.exceptions
from botocore import UNSIGNED

import boto3
import harness
from harness import IntegrationCase, clean_env, free_port, wait_for

N = 50


def examples_dir():
    d = os.environ.get("XRAYD_SDK_EXAMPLES")
    if not d:
        build = os.path.dirname(os.path.dirname(os.path.abspath(harness.xrayd_bin())))
        d = os.path.join(build, "sdk-c", "examples")
    if not os.path.isfile(os.path.join(d, "frontend")):
        raise unittest.SkipTest("example binaries not built in %s" % d)
    return d


def get(url, headers=None, timeout=15):
    """(status, parsed JSON body or None, headers) of a GET without proxies."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(req, timeout=timeout) as r:
            body = r.read()
            return r.status, json.loads(body), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), e.headers


def read_api(x):
    cfg = botocore.config.Config(signature_version=UNSIGNED, retries={"max_attempts": 1},
                                 proxies={}, connect_timeout=3, read_timeout=10)
    return boto3.client("xray", endpoint_url=x.tcp_url, region_name=harness.REGION, config=cfg)


def key_paths(doc, prefix=""):
    """The set of dotted key paths of a JSON object, subsegments and list items left out
    (subsegments are compared on their own)."""
    out = set()
    for k, v in doc.items():
        if k == "subsegments":
            out.add(prefix + k)
            continue
        path = prefix + k
        out.add(path)
        if isinstance(v, dict):
            out |= key_paths(v, path + ".")
    return out


def subsegment(doc, namespace):
    return next((s for s in doc.get("subsegments", []) if s.get("namespace") == namespace), None)


class SdkExamplesTest(IntegrationCase):

    def start_xrayd_all(self):
        """xrayd as the sampling authority with a 100 % rule, and a recording relay."""
        rules = os.path.join(self.tmp, "rules.json")
        with open(rules, "w") as f:
            json.dump({"version": 2, "rules": [],
                       "default": {"fixed_target": 1000, "rate": 1.0}}, f)
        x = self.start_xrayd(["--upstream", "local", "--sampling-rules", rules,
                              "--trace-window", "5"])
        relay = self.start_relay(x.udp_addr)
        return x, relay

    def start_examples(self, daemon_address):
        d = examples_dir()
        env = clean_env(self.tmp, {"AWS_XRAY_DAEMON_ADDRESS": daemon_address})
        back = self.start_app("backend", [os.path.join(d, "backend")], env)
        front = self.start_app("frontend", [os.path.join(d, "frontend"), "--backend",
                                            "http://127.0.0.1:%d" % back["port"]], env)
        return "http://127.0.0.1:%d" % front["port"]

    def drive(self, url, n, path="/item"):
        """n requests; returns [(status, body)]."""
        out = []
        for i in range(n):
            status, body, _ = get("%s%s?id=%d" % (url, path, i))
            out.append((status, body))
        return out

    def warm_up(self, url):
        """One request starts the SDK's poller, which takes xrayd's rules (loopback:
        milliseconds); the measured requests come after it. Its request is left out."""
        status, body, _ = get(url + "/warmup")
        self.assertEqual(status, 200, body)
        time.sleep(1.0)
        return body["trace_id"]

    def c_documents(self, relay, trace_ids, per_trace=2):
        want = per_trace * len(trace_ids)
        ids = set(trace_ids)

        def mine():
            docs = [json.loads(d) for d in relay.documents()]
            docs = [d for d in docs if d.get("trace_id") in ids]
            return docs if len(docs) >= want else None
        docs = wait_for(mine, 15, 0.05, "%d documents at the relay" % want)
        time.sleep(0.3)
        return [json.loads(d) for d in relay.documents() if json.loads(d).get("trace_id") in ids]

    def test_examples_traced_end_to_end(self):
        t_begin = time.time()
        x, relay = self.start_xrayd_all()
        url = self.start_examples("tcp:127.0.0.1:%d udp:%s" % (x.tcp_port, relay.address))
        self.warm_up(url)
        answers = self.drive(url, N)
        statuses = [a[0] for a in answers]
        self.assertEqual(statuses.count(500), N // 10, statuses)
        self.assertEqual(statuses.count(200), N - N // 10, statuses)
        ids = [a[1]["trace_id"] for a in answers]
        self.assertEqual(len(set(ids)), N)

        # Whole segments: one complete document per service per trace.
        docs = self.c_documents(relay, ids)
        sent = relay.documents()
        self.assertEqual(len(docs), 2 * N)
        for d in docs:
            self.assertNotIn("in_progress", d)
            self.assertIn("end_time", d)
            self.assertNotEqual(d.get("type"), "subsegment")
        by_trace = {}
        for d in docs:
            by_trace.setdefault(d["trace_id"], {})[d["name"]] = d
        faults = 0
        for tid in ids:
            pair = by_trace[tid]
            self.assertEqual(sorted(pair), ["backend", "frontend"], pair)
            front, back = pair["frontend"], pair["backend"]
            call = subsegment(front, "remote")
            self.assertIsNotNone(call, front)
            # The header propagated: the callee's parent is the caller's subsegment.
            self.assertEqual(back.get("parent_id"), call["id"])
            self.assertNotIn("parent_id", front)
            self.assertTrue(call["http"]["request"].get("traced"), call)
            ddb = subsegment(back, "aws")
            self.assertEqual(ddb["name"], "DynamoDB")
            self.assertEqual(ddb["aws"]["operation"], "GetItem")
            self.assertEqual(ddb["aws"]["table_name"], "items")
            status = back["http"]["response"]["status"]
            self.assertEqual(call["http"]["response"]["status"], status)
            self.assertEqual(front["http"]["response"]["status"], status)
            if back.get("fault"):
                faults += 1
                self.assertEqual(status, 500)
                self.assertTrue(front.get("fault") and call.get("fault"))
        self.assertEqual(faults, N // 10)

        # The store gives back exactly what was sent.
        api = read_api(x)
        mine = [d for d in sent if json.loads(d).get("trace_id") in set(ids)]

        def stored():
            got = []
            for i in range(0, len(ids), 5):
                for t in api.batch_get_traces(TraceIds=ids[i:i + 5]).get("Traces", []):
                    got += [s["Document"] for s in t.get("Segments", [])]
            return got if len(got) == len(mine) else None
        got = wait_for(stored, 15, 0.3, "the store to hold the documents")
        self.assertDocsEqual(mine, got, "BatchGetTraces")

        # The service graph: client -> frontend -> backend -> DynamoDB.
        start_s, end_s = int(t_begin) - 60, int(time.time()) + 60
        last = {}

        def graph():
            try:
                g = api.get_service_graph(StartTime=start_s, EndTime=end_s)
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
                last["g"] = repr(e)
                return None
            last["g"] = g
            svcs = g.get("Services", [])
            names = {s["ReferenceId"]: s for s in svcs}
            back = next((s for s in svcs if s.get("Name") == "backend"), None)
            if back is None or back["SummaryStatistics"]["TotalCount"] < N:
                return None
            # The DynamoDB node is inferred once backend's calls outlive the window.
            if not any(names[e["ReferenceId"]].get("Type", "").startswith("AWS::DynamoDB")
                       for e in back.get("Edges", [])):
                return None
            return svcs, names
        svcs, refs = wait_for(graph, 30, 0.5, "the service graph")
        dump = json.dumps(last.get("g", {}).get("Services"), default=str)[:4000]
        edges = set()
        for s in svcs:
            for e in s.get("Edges", []):
                callee = refs[e["ReferenceId"]]
                edges.add((s["Name"], s.get("Type"), callee["Name"], callee.get("Type")))
        names = {(a, c) for a, _, c, _ in edges}
        self.assertIn(("frontend", "backend"), names, dump)
        client = [e for e in edges if e[2] == "frontend" and e[1] == "client"]
        self.assertEqual(len(client), 1, dump)
        ddb = [e for e in edges if e[0] == "backend" and e[3] == "AWS::DynamoDB::Table"]
        self.assertEqual(len(ddb), 1, dump)
        self.assertEqual(ddb[0][2], "items", dump)  # the table the aws subsegment names
        node = {s["Name"]: s for s in svcs if s.get("Type") != "client"}
        self.assertEqual(node["backend"]["SummaryStatistics"]["TotalCount"], N + 1, dump)
        fs = node["backend"]["SummaryStatistics"].get("FaultStatistics", {})
        self.assertEqual(fs.get("TotalCount"), N // 10, dump)

    def test_examples_fields_match_python_sdk(self):
        x, relay = self.start_xrayd_all()
        addr = "tcp:127.0.0.1:%d udp:%s" % (x.tcp_port, relay.address)
        url = self.start_examples(addr)
        self.warm_up(url)
        answers = self.drive(url, 10)
        c_ids = [a[1]["trace_id"] for a in answers]
        c_docs = self.c_documents(relay, c_ids)

        moto = self.start_moto()
        env = clean_env(self.tmp, {"AWS_XRAY_DAEMON_ADDRESS": addr})
        back = self.start_app("py-back", [sys.executable,
                                          os.path.join(harness.APPS, "sdk_back.py"),
                                          "--moto-url", moto.url], env)
        front = self.start_app("py-front", [sys.executable,
                                            os.path.join(harness.APPS, "graph_front.py"),
                                            "--back-port", str(back["port"])], env)
        py_answers = self.drive("http://127.0.0.1:%d" % front["port"], 10)
        self.assertEqual(sorted(a[0] for a in py_answers), sorted(a[0] for a in answers))
        py_ids = [a[1]["trace_id"] for a in py_answers]
        py_docs = self.c_documents(relay, py_ids)

        def shapes(docs, front_name, back_name):
            """Key paths of the four kinds of document, over every request."""
            kinds = {"front": set(), "call": set(), "back": set(), "ddb": set()}
            for d in docs:
                if d["name"] == front_name:
                    kinds["front"] |= key_paths(d)
                    kinds["call"] |= key_paths(subsegment(d, "remote"))
                elif d["name"] == back_name:
                    kinds["back"] |= key_paths(d)
                    kinds["ddb"] |= key_paths(subsegment(d, "aws"))
            return kinds

        c = shapes(c_docs, "frontend", "backend")
        py = shapes(py_docs, "front", "back")
        # What only one SDK writes and X-Ray does not need from both: the Python SDK's
        # runtime block, its in_progress flag, its ECS plugin (graph_front.py loads
        # it), the SDK names, and fields of boto3's own (resource_names, retries).
        sdk_specific = {
            "service", "service.runtime", "service.runtime_version", "in_progress", "origin",
            "aws.ecs", "aws.ecs.container", "aws.xray", "aws.xray.sdk", "aws.xray.sdk_version",
            "aws.xray.sampling_rule_name", "aws.xray.rule_name", "aws.xray.auto_instrumentation",
            "aws.resource_names", "cause.working_directory", "cause.paths",
        }
        # Nested subsegments: the Python SDK repeats type, trace_id and parent_id in
        # each; the C SDK writes them only on subsegments sent on their own. Fields the
        # C SDK adds that X-Ray defines: http.request.traced (the callee is
        # instrumented) and the callee's content_length on a remote call.
        sub_specific = {"type", "trace_id", "parent_id", "http.request.traced",
                        "http.response.content_length"}
        diffs = []
        for kind in ("front", "call", "back", "ddb"):
            allowed = sdk_specific | (sub_specific if kind in ("call", "ddb") else set())
            only_c = sorted(c[kind] - py[kind] - allowed)
            only_py = sorted(py[kind] - c[kind] - allowed)
            if only_c or only_py:
                diffs.append("%s: only C %s, only Python %s\n  C %s\n  Python %s" % (
                    kind, only_c, only_py, sorted(c[kind]), sorted(py[kind])))
        self.assertEqual(diffs, [], "\n".join(diffs))

    def test_examples_run_without_daemon(self):
        closed = free_port()
        url = self.start_examples("127.0.0.1:%d" % closed)
        t0 = time.monotonic()
        answers = self.drive(url, 20)
        took = time.monotonic() - t0
        self.assertEqual([a[0] for a in answers].count(200), 18, answers)
        self.assertEqual([a[0] for a in answers].count(500), 2, answers)
        self.assertTrue(all(a[1]["trace_id"].startswith("1-") for a in answers))
        self.assertLess(took, 10.0)


if __name__ == "__main__":
    harness.main()
