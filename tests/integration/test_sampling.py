# SPDX-License-Identifier: Apache-2.0
"""xrayd as the sampling authority and sampling before upload, against the real SDKs:

1. several Python SDK processes sharing one rule (ReservoirSize N, FixedRate 0): once
   their first targets exchange is done, at most N sampled segments a second from all
   of them together (counted on the UDP relay);
2. the Node SDK takes xrayd's rules (its segments name the matched rule) and reports
   its statistics to xrayd (SamplingTargets, visible in the summaries);
3. `aws xray get-sampling-rules` reads xrayd's rules; SIGHUP and a file change reload
   them, LastRuleModification moves, and a bad file keeps the rules in force;
4. --sampling-head: every document of a trace (three services' segments, streamed
   subsegments, a late arrival) gets its first document's decision: all stored or none;
5. --full-fidelity: SDKs sample everything, xrayd receives it all, and the store gets
   only what the real rules keep.
"""

import collections
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

import boto3
import botocore.config
from botocore import UNSIGNED

import harness
from harness import IntegrationCase, clean_env, http_post, wait_for


def rule(name, priority, rate, reservoir, service="*", **patterns):
    r = {"RuleName": name, "ResourceARN": "*", "Priority": priority, "FixedRate": rate,
         "ReservoirSize": reservoir, "ServiceName": service, "ServiceType": "*",
         "Host": patterns.get("host", "*"), "HTTPMethod": patterns.get("method", "*"),
         "URLPath": patterns.get("path", "*"), "Version": 1, "Attributes": {}}
    return {"SamplingRule": r}


def write_rules(path, records):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        if isinstance(records, str):
            f.write(records)
        else:
            json.dump({"SamplingRuleRecords": records}, f)
    os.replace(tmp, path)


def daemon_address(x, relay=None):
    udp = relay.address if relay else "127.0.0.1:%d" % x.udp_port
    return "tcp:127.0.0.1:%d udp:%s" % (x.tcp_port, udp)


def read_api(x):
    cfg = botocore.config.Config(signature_version=UNSIGNED, retries={"max_attempts": 1},
                                 proxies={})
    return boto3.client("xray", endpoint_url=x.tcp_url, region_name=harness.REGION, config=cfg)


def stored_ids(x, trace_ids):
    """{trace id: set of stored document ids} from xrayd's read API."""
    xr = read_api(x)
    out = collections.defaultdict(set)
    ids = sorted(set(trace_ids))
    for i in range(0, len(ids), 5):
        for t in xr.batch_get_traces(TraceIds=ids[i:i + 5]).get("Traces", []):
            for s in t.get("Segments", []):
                out[t["Id"]].add(json.loads(s["Document"])["id"])
    return out


def drain(x):
    """Waits until xrayd holds nothing for upload (the batcher's idle second included)."""
    def idle():
        q = x.healthz()[1]["queues"]
        return q["worker"] == 0 and q["upload"] == 0 and q["upload_in_flight"] == 0
    wait_for(idle, 10, what="xrayd to upload what it holds")
    time.sleep(1.2)
    wait_for(idle, 10, what="xrayd to upload what it holds")


def totals(log):
    """The counters of the shutdown totals lines."""
    out = {}
    for line in log.splitlines():
        if "] totals: received" in line:
            out["received"] = int(line.split("received ")[1].split(",")[0])
        if "sampling totals:" in line:
            out["sampled_out"] = int(line.split("sampled out ")[1].split(";")[0])
            out["docs_kept"] = int(line.split("documents kept ")[1].split(",")[0])
        if "sampling authority: answered" in line:
            out["targets_calls"] = int(line.split("SamplingTargets ")[1].split(",")[0])
    return out


def start_py(case, x, relay, service, args=()):
    env = clean_env(case.tmp, {"AWS_XRAY_DAEMON_ADDRESS": daemon_address(x, relay),
                               "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR"})
    argv = [sys.executable, os.path.join(harness.APPS, "py_sampling_app.py"),
            "--service", service] + list(args)
    return subprocess.Popen(argv, env=env, cwd=case.tmp, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


def finish(p, timeout):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=10)
        raise AssertionError("app timed out:\n" + err.decode("utf-8", "replace")[-2000:])
    if p.returncode != 0:
        raise AssertionError("app exit %d:\n%s" % (p.returncode,
                                                   err.decode("utf-8", "replace")[-3000:]))
    return json.loads(out.decode().strip().splitlines()[-1])


class SamplingTest(IntegrationCase):

    def rules_file(self, records):
        path = os.path.join(self.tmp, "sampling-rules.json")
        write_rules(path, records)
        return path

    def stop_xrayd(self, x):
        rc, _ = x.terminate(15)
        self.assertEqual(rc, 0, x.log()[-3000:])
        return totals(x.log())

    # 1 ---------------------------------------------------------------------------------
    def test_reservoir_shared_by_python_processes(self):
        n, procs = 2, 4
        path = self.rules_file([rule("limited", 1, 0.0, n, "py-limited"),
                                rule("Default", 10000, 0.0, 0)])
        x = self.start_xrayd(["--upstream", "local", "--sampling-rules", path])
        relay = self.start_relay(x.udp_addr)
        apps = [start_py(self, x, relay, "py-limited",
                         ["--per-second", "40", "--seconds", "1", "--after-targets", "7"])
                for _ in range(procs)]
        results = [finish(p, 60) for p in apps]
        for r in results:
            self.assertIn("limited", r["rules"], r)
            self.assertTrue(r["targets_at"], "no SamplingTargets answer: %r" % r)
        exchanged = max(r["targets_at"][0] for r in results)
        stopped = min(r["stop"] for r in results)
        time.sleep(0.5)
        starts = [json.loads(d)["start_time"] for d in relay.documents()
                  if json.loads(d)["name"] == "py-limited"]
        per_second = collections.Counter(int(t) for t in starts)
        # Whole seconds after every process applied its first targets, before any stopped.
        window = range(int(math.floor(exchanged)) + 1, int(math.floor(stopped)))
        self.assertGreaterEqual(len(window), 5, (exchanged, stopped))
        counts = [per_second.get(s, 0) for s in window]
        before = [per_second.get(s, 0) for s in range(int(min(starts)) + 1, int(exchanged) - 1)]
        print("\n  sampled per second before the first targets: %s; after: %s (N=%d, %d processes)"
              % (before, counts, n, procs), file=sys.stderr)
        # Before their first targets each process borrows one a second: the measurement
        # sees more than N then, so it would see a quota that was not honoured.
        self.assertGreater(max(before), n, before)
        # One segment may fall into the next second (start_time is taken after the
        # decision), hence the +1s; the total is tight.
        self.assertLessEqual(max(counts), n + 1, counts)
        self.assertLessEqual(sum(counts), n * len(counts) + 1, counts)
        self.assertGreaterEqual(sum(counts), len(counts), "the quota was not used: %s" % counts)
        t = self.stop_xrayd(x)
        self.assertGreaterEqual(t.get("targets_calls", 0), procs, t)

    # 2 ---------------------------------------------------------------------------------
    def test_node_sdk_takes_rules_and_reports(self):
        node = harness.node_exe()
        path = os.path.join(self.tmp, "local-rules.json")
        write_rules(path, json.dumps({
            "version": 2, "default": {"fixed_target": 1, "rate": 0.0},
            "rules": [{"description": "orders", "host": "*", "http_method": "GET",
                       "url_path": "/orders/*", "fixed_target": 1, "rate": 1.0}]}))
        x = self.start_xrayd(["--upstream", "local", "--sampling-rules", path])
        relay = self.start_relay(x.udp_addr)
        env = clean_env(self.tmp, {"AWS_XRAY_DAEMON_ADDRESS": daemon_address(x, relay)})
        r = subprocess.run([node, os.path.join(harness.NODE_DIR, "sampling_app.js"), "13"],
                           env=env, cwd=self.tmp, capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode("utf-8", "replace")[-2000:])
        made = json.loads(r.stdout.decode().strip().splitlines()[-1])["made"]
        time.sleep(0.5)
        docs = [json.loads(d) for d in relay.documents()]
        by_rule = collections.Counter(
            (d.get("aws", {}).get("xray", {}).get("rule_name"),
             d["http"]["request"]["url"].split("/")[3]) for d in docs if d["name"] == "node-shop")
        # /orders/* is sampled at FixedRate 1 by rule "orders"; the rest by Default. The
        # first requests may come before the first rules (local fallback: no rule name).
        unnamed = by_rule[(None, "orders")] + by_rule[(None, "other")]
        self.assertLessEqual(unnamed, 3, by_rule)
        self.assertEqual(by_rule[("orders", "orders")] + by_rule[(None, "orders")], made, by_rule)
        self.assertGreater(by_rule[("Default", "other")], 0, by_rule)
        self.assertEqual(by_rule[("Default", "orders")] + by_rule[("orders", "other")], 0, by_rule)
        status, body = http_post(x.tcp_url + "/SamplingStatisticSummaries", b"{}")
        self.assertEqual(status, 200, body)
        sums = {s["RuleName"]: s for s in json.loads(body)["SamplingStatisticSummaries"]}
        self.assertGreater(sums["orders"]["RequestCount"], 0, sums)
        self.assertGreater(sums["orders"]["SampledCount"], 0, sums)
        self.assertGreater(sums["Default"]["RequestCount"], 0, sums)
        t = self.stop_xrayd(x)
        self.assertGreaterEqual(t.get("targets_calls", 0), 1, t)

    # 3 ---------------------------------------------------------------------------------
    def cli_rules(self, x):
        exe = shutil.which("aws")
        if not exe:
            raise unittest.SkipTest("aws CLI not on PATH")
        r = subprocess.run([exe, "xray", "get-sampling-rules", "--endpoint-url", x.tcp_url,
                            "--no-sign-request", "--region", harness.REGION, "--output", "json"],
                           env=clean_env(self.tmp), capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode("utf-8", "replace"))
        recs = json.loads(r.stdout)["SamplingRuleRecords"]
        return {rec["SamplingRule"]["RuleName"]: rec["SamplingRule"] for rec in recs}

    def last_modification(self, x):
        body = json.dumps({"SamplingStatisticsDocuments": [{
            "RuleName": "Default", "ClientID": "0123456789abcdef01234567",
            "Timestamp": int(time.time()), "RequestCount": 1, "SampledCount": 1,
            "BorrowCount": 0}]}).encode()
        status, out = http_post(x.tcp_url + "/SamplingTargets", body)
        self.assertEqual(status, 200, out)
        return json.loads(out)["LastRuleModification"]

    def test_cli_reads_rules_and_reloads(self):
        path = self.rules_file([rule("checkout", 5, 0.25, 3, "shop", path="/checkout*"),
                                rule("Default", 10000, 0.05, 1)])
        x = self.start_xrayd(["--upstream", "local", "--sampling-rules", path])
        rules = self.cli_rules(x)
        self.assertEqual(sorted(rules), ["Default", "checkout"])
        self.assertEqual(rules["checkout"]["ReservoirSize"], 3)
        self.assertEqual(rules["checkout"]["URLPath"], "/checkout*")
        self.assertEqual(rules["checkout"]["FixedRate"], 0.25)
        lrm0 = self.last_modification(x)
        time.sleep(1.1)  # LastRuleModification counts seconds

        # A bad file: the rules in force stay, the log says why.
        write_rules(path, '{"SamplingRuleRecords": [')
        x.signal(signal.SIGHUP)
        wait_for(lambda: "sampling rules not reloaded" in x.log(), 10, what="the reload error")
        self.assertEqual(sorted(self.cli_rules(x)), ["Default", "checkout"])
        self.assertEqual(self.last_modification(x), lrm0)

        # SIGHUP reloads a good one (the watch would too; SIGHUP is first here).
        write_rules(path, [rule("checkout", 5, 0.5, 3, "shop", path="/checkout*"),
                           rule("search", 6, 0.1, 0, "shop"), rule("Default", 10000, 0.05, 1)])
        x.signal(signal.SIGHUP)
        wait_for(lambda: "search" in self.cli_rules(x), 10, 0.3, "the reloaded rules")
        self.assertEqual(self.cli_rules(x)["checkout"]["FixedRate"], 0.5)
        self.assertGreater(self.last_modification(x), lrm0)

        # A change on disk alone is picked up too.
        write_rules(path, [rule("Default", 10000, 0.2, 2)])
        wait_for(lambda: sorted(self.cli_rules(x)) == ["Default"], 10, 0.3, "the changed file")
        self.assertIn("file changed: sampling rules reloaded", x.log())
        self.stop_xrayd(x)

    # 4 ---------------------------------------------------------------------------------
    def test_head_sampling_is_trace_consistent(self):
        path = self.rules_file([rule("keep-a", 1, 1.0, 0, "svc-a"),
                                rule("drop-b", 2, 0.0, 0, "svc-b"),
                                rule("Default", 10000, 0.5, 0)])
        x = self.start_xrayd(["--upstream", "local", "--sampling-rules", path,
                              "--sampling-head"])
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        now = time.time()
        sent = collections.defaultdict(list)

        def send(doc):
            sent[doc["trace_id"]].append(doc["id"])
            sock.sendto(b'{"format":"json","version":1}\n' + json.dumps(doc).encode(),
                        x.udp_addr)
            time.sleep(0.0005)

        def seg(tid, n, name):
            return {"name": name, "id": "%016x" % n, "trace_id": tid, "start_time": now,
                    "end_time": now + 0.1, "origin": "AWS::EC2::Instance",
                    "http": {"request": {"method": "GET", "url": "http://h.example/p"}}}

        services = ["svc-a", "svc-b", "svc-c"]
        traces = ["1-%08x-%024x" % (int(now), 0x5eed0000 + i) for i in range(60)]
        n = 0
        for i, tid in enumerate(traces):
            order = services[i % 3:] + services[:i % 3]  # each service first in turn
            for name in order:
                n += 1
                send(seg(tid, n, name))
            for _ in range(2):  # streamed subsegments
                n += 1
                send({"name": "step", "id": "%016x" % n, "trace_id": tid,
                      "parent_id": "%016x" % (n - 1), "type": "subsegment",
                      "start_time": now, "end_time": now + 0.01})
        time.sleep(1.5)
        for i, tid in enumerate(traces):  # late arrivals
            n += 1
            send(seg(tid, n, services[(i + 1) % 3]))
        drain(x)
        got = stored_ids(x, traces)
        kept = {"svc-a": 0, "svc-c": 0}
        dropped = {"svc-b": 0, "svc-c": 0}
        for i, tid in enumerate(traces):
            first = services[i % 3]
            have = got.get(tid, set())
            self.assertIn(have, (set(), set(sent[tid])),
                          "trace %s (first %s) split: %d of %d documents stored"
                          % (tid, first, len(have), len(sent[tid])))
            if have:
                self.assertNotEqual(first, "svc-b", tid)
                kept[first] += 1
            else:
                self.assertNotEqual(first, "svc-a", tid)
                dropped[first] += 1
        self.assertEqual(kept["svc-a"], 20)
        self.assertEqual(dropped["svc-b"], 20)
        self.assertGreater(kept["svc-c"], 0, kept)  # Default's 50 % went both ways
        self.assertGreater(dropped["svc-c"], 0, dropped)
        t = self.stop_xrayd(x)
        stored = sum(len(v) for v in got.values())
        self.assertEqual(t["received"], n)
        self.assertEqual(t["docs_kept"], stored, t)
        self.assertEqual(t["sampled_out"], n - stored, t)
        self.assertIn("rejected 0", x.log())

    # 5 ---------------------------------------------------------------------------------
    def test_full_fidelity(self):
        path = self.rules_file([rule("ff", 1, 0.0, 1, "py-ff"), rule("Default", 10000, 0.0, 0)])
        x = self.start_xrayd(["--upstream", "local", "--sampling-rules", path,
                              "--full-fidelity"])
        relay = self.start_relay(x.udp_addr)
        r = finish(start_py(self, x, relay, "py-ff", ["--per-second", "30", "--seconds", "5"]),
                   60)
        self.assertEqual(sorted(r["rules"]), ["Default", "ff"])
        self.assertEqual(r["sampled"], r["made"], "the SDK did not send everything: %r" % r)
        self.assertGreater(r["made"], 100)
        time.sleep(0.5)
        docs = [json.loads(d) for d in relay.documents()]
        ff = [d for d in docs if d["name"] == "py-ff"]
        self.assertEqual(len(ff), r["made"])
        drain(x)
        got = stored_ids(x, [d["trace_id"] for d in ff])
        stored = sum(len(v) for v in got.values())
        seconds = len({int(d["start_time"]) for d in ff})
        # The real rule keeps one a second and nothing more (FixedRate 0).
        self.assertGreaterEqual(stored, seconds - 2, (stored, seconds))
        self.assertLessEqual(stored, seconds + 1, (stored, seconds))
        t = self.stop_xrayd(x)
        self.assertEqual(t["received"], len(docs), t)  # xrayd received all the SDK sent
        self.assertEqual(t["docs_kept"], stored, t)  # the warm-up segment (Default) dropped
        self.assertEqual(t["sampled_out"], len(docs) - stored, t)

    def test_full_fidelity_needs_the_authority(self):
        ports = (harness.free_port(socket.SOCK_DGRAM), harness.free_port())
        r = subprocess.run([harness.xrayd_bin(), "-o", "--upstream", "aws", "-n", harness.REGION,
                            "-b", "127.0.0.1:%d" % ports[0], "-t", "127.0.0.1:%d" % ports[1],
                            "--full-fidelity"],
                           env=clean_env(self.tmp), capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"--full-fidelity needs xrayd to answer the SDKs' sampling calls", r.stderr)


if __name__ == "__main__":
    harness.main()
