# SPDX-License-Identifier: Apache-2.0
"""Shared helpers for the integration tests: free ports, moto, xrayd, a UDP relay
that records every datagram it forwards, the SDK apps and the read API clients.

Every process a test starts is stopped by its pid in a cleanup, whatever the test's
outcome; every wait is bounded. Nothing here talks to anything but 127.0.0.1.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, "apps")
NODE_DIR = os.path.join(HERE, "node")
DATA = os.path.normpath(os.path.join(HERE, "..", "data"))
REGION = "us-east-1"

# The test process itself must not pick up the caller's AWS settings or proxies
# (boto3 reads both); every child gets an explicit environment instead.
for _k in list(os.environ):
    if _k.startswith("AWS_") or _k.lower() in ("http_proxy", "https_proxy", "all_proxy",
                                               "no_proxy"):
        del os.environ[_k]
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import boto3  # noqa: E402  (after the environment is cleaned)
import botocore.config  # noqa: E402


def xrayd_bin():
    """The xrayd binary: argv[1] (set by ctest) or $XRAYD_BIN."""
    path = os.environ.get("XRAYD_BIN")
    if not path:
        raise AssertionError("XRAYD_BIN is not set (pass the binary as the first argument)")
    return path


def main():
    """unittest.main() that takes the xrayd binary as an optional first argument."""
    if len(sys.argv) > 1 and os.path.isfile(sys.argv[1]):
        os.environ["XRAYD_BIN"] = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_for(pred, timeout, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


def http_get(url, timeout=3.0):
    """(status, body bytes) of a GET, without proxies; status 0 if nothing answered."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, ValueError):
        return 0, b""


def http_post(url, body=b"", timeout=3.0):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, data=body, method="POST")
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, ValueError):
        return 0, b""


def clean_env(tmp, extra=None):
    """A child environment with no AWS settings from the caller, HOME in tmp, no IMDS."""
    home = os.path.join(tmp, "home")
    os.makedirs(home, exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LANG": "C.UTF-8"}
    for k in ("PYENV_ROOT", "PYENV_VERSION", "TMPDIR", "ASAN_OPTIONS", "UBSAN_OPTIONS",
              "LSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    if extra:
        env.update(extra)
    return env


class Proc:
    """A child process with its output in a file; stop() ends it by its pid."""

    def __init__(self, name, argv, env, tmp, cwd=None):
        self.name = name
        self.out_path = os.path.join(tmp, name + ".out")
        self._out = open(self.out_path, "wb")
        self.popen = subprocess.Popen(argv, env=env, cwd=cwd or tmp, stdin=subprocess.DEVNULL,
                                      stdout=self._out, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def wait(self, timeout):
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL after timeout. Returns the exit code."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            if self.wait(timeout) is None:
                os.kill(self.pid, signal.SIGKILL)
                self.wait(5)
        if not self._out.closed:
            self._out.close()
        return self.popen.returncode

    def output(self):
        if not self._out.closed:
            self._out.flush()
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class Moto(Proc):
    """moto_server on a free loopback port."""

    def __init__(self, tmp, verify_signatures=False, port=None):
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        extra = {"INITIAL_NO_AUTH_ACTION_COUNT": "3"} if verify_signatures else {}
        exe = shutil.which("moto_server")
        argv = [exe] if exe else [sys.executable, "-m", "moto.server"]
        super().__init__("moto", argv + ["-H", "127.0.0.1", "-p", str(self.port)],
                         clean_env(tmp, extra), tmp)
        try:
            wait_for(lambda: not self.alive() or http_get(self.url + "/moto-api/")[0] == 200,
                     30, 0.2, "moto to answer")
            if not self.alive():
                raise AssertionError("moto_server exited:\n" + self.output())
        except BaseException:
            self.stop()
            raise

    def client(self, service, key="AKIDTEST", secret="secret"):
        cfg = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"},
                                     connect_timeout=3, read_timeout=10,
                                     proxies={})
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=key, aws_secret_access_key=secret,
                            config=cfg)

    def setup_iam(self):
        """The three IAM calls that turn on signature checks; returns (key id, secret)."""
        iam = self.client("iam")
        iam.create_user(UserName="xrayd")
        k = iam.create_access_key(UserName="xrayd")["AccessKey"]
        policy = {"Version": "2012-10-17",
                  "Statement": [{"Effect": "Allow", "Action": "xray:*", "Resource": "*"}]}
        iam.put_user_policy(UserName="xrayd", PolicyName="xray-all",
                            PolicyDocument=json.dumps(policy))
        return k["AccessKeyId"], k["SecretAccessKey"]

    def batch_get_documents(self, trace_ids, key="AKIDTEST", secret="secret"):
        """Every document moto holds for these traces, as a list of strings."""
        xr = self.client("xray", key, secret)
        docs = []
        ids = sorted(set(trace_ids))
        for i in range(0, len(ids), 5):
            resp = xr.batch_get_traces(TraceIds=ids[i:i + 5])
            for t in resp.get("Traces", []):
                docs.extend(s["Document"] for s in t.get("Segments", []))
        return docs

    def data(self):
        status, body = http_get(self.url + "/moto-api/data.json", timeout=10)
        if status != 200:
            raise AssertionError("moto data.json: %d" % status)
        return json.loads(body)

    def telemetry_records(self):
        recs = []
        for call in self.data().get("xray", {}).get("TelemetryRecords", []):
            recs.extend(call.get("records", []))
        return recs


class Xrayd(Proc):
    """xrayd with -o, a log file, free UDP/TCP ports and a clean environment."""

    def __init__(self, tmp, extra_args=(), extra_env=None, name="xrayd"):
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self.tcp_port = free_port()
        self.udp_addr = ("127.0.0.1", self.udp_port)
        self.tcp_url = "http://127.0.0.1:%d" % self.tcp_port
        self.log_path = os.path.join(tmp, name + ".log")
        argv = [xrayd_bin(), "-o", "-b", "127.0.0.1:%d" % self.udp_port,
                "-t", "127.0.0.1:%d" % self.tcp_port, "-l", "debug",
                "-f", self.log_path] + list(extra_args)
        self.argv = argv
        super().__init__(name, argv, clean_env(tmp, extra_env), tmp)
        try:
            wait_for(lambda: not self.alive() or self.healthz()[0] == 200, 15, 0.1,
                     "xrayd /healthz to answer 200")
            if not self.alive():
                raise AssertionError("xrayd exited with %s at start:\n%s" %
                                     (self.popen.returncode, self.output()[-3000:]))
        except BaseException:
            self.stop()
            raise

    def healthz(self):
        status, body = http_get(self.tcp_url + "/healthz")
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            return status, body

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def terminate(self, deadline=10.0):
        """SIGTERM; returns (exit code or None if still running, seconds taken)."""
        t0 = time.monotonic()
        self.signal(signal.SIGTERM)
        rc = self.wait(deadline)
        return rc, time.monotonic() - t0


class Relay:
    """UDP relay SDK -> relay -> xrayd that records the exact bytes it forwards."""

    def __init__(self, target):
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.address = "127.0.0.1:%d" % self.port
        self.forwarded = []      # datagrams from SDKs, in order
        self.injected = []       # datagrams the test sent itself
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.forwarded.append(data)
                self.sock.sendto(data, self.target)
            time.sleep(0.0005)  # keep a burst from overrunning the receiver's buffer

    def inject(self, data):
        with self._lock:
            self.injected.append(data)
            self.sock.sendto(data, self.target)
        time.sleep(0.001)

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def documents(self):
        """Bodies of the forwarded datagrams (the text after the first newline)."""
        with self._lock:
            return [d.split(b"\n", 1)[1].decode("utf-8") for d in self.forwarded]


class RecordingProxy:
    """HTTP pass-through in front of moto that records every request it forwards
    (method, path, headers, body). The Host header is forwarded unchanged, so
    SigV4 signatures still verify at moto."""

    def __init__(self, upstream_port, port=0):
        import http.client
        import http.server

        calls = self.calls = []
        lock = self._lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive", "transfer-encoding")}
                with lock:
                    lower = {k.lower(): v for k, v in headers.items()}
                    calls.append((self.command, self.path, lower, body))
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    r = conn.getresponse()
                    data = r.read()
                    self.send_response(r.status)
                    for k, v in r.getheaders():
                        if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    conn.close()

            do_POST = _forward
            do_GET = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def requests(self, path):
        with self._lock:
            return [c for c in self.calls if c[1] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


def trace_ids(docs):
    return sorted({json.loads(d)["trace_id"] for d in docs})


def aws_cli_batch_get(tmp, api_url, ids):
    """BatchGetTraces with the AWS CLI against xrayd's read API, unsigned."""
    exe = shutil.which("aws")
    if not exe:
        raise unittest.SkipTest("aws CLI not on PATH")
    docs = []
    ids = sorted(set(ids))
    for i in range(0, len(ids), 5):
        argv = [exe, "--endpoint-url", api_url, "--region", REGION, "--no-sign-request",
                "--output", "json", "xray", "batch-get-traces", "--trace-ids"] + ids[i:i + 5]
        r = subprocess.run(argv, env=clean_env(tmp), capture_output=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("aws xray batch-get-traces exit %d: %s" %
                                 (r.returncode, r.stderr.decode("utf-8", "replace")[-2000:]))
        out = json.loads(r.stdout)
        for t in out.get("Traces", []):
            docs.extend(s["Document"] for s in t.get("Segments", []))
    return docs


def run_app(tmp, kind, daemon_address, args=(), timeout=120):
    """Run one SDK app (py, node, py095) against daemon_address; returns its output."""
    env_extra = {"AWS_XRAY_DAEMON_ADDRESS": daemon_address,
                 "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR"}
    if kind == "py":
        argv = [sys.executable, os.path.join(APPS, "py_app.py")]
    elif kind == "py095":
        # SDK 0.95 predates the "tcp:h:p udp:h:p" form: give it the UDP address only.
        for part in daemon_address.split():
            if part.startswith("udp:"):
                env_extra["AWS_XRAY_DAEMON_ADDRESS"] = part[4:]
        argv = [debian_python(), os.path.join(APPS, "py095_app.py")]
    elif kind == "node":
        argv = [node_exe(), os.path.join(NODE_DIR, "app.js")]
    else:
        raise ValueError(kind)
    r = subprocess.run(argv + list(args), env=clean_env(tmp, env_extra), cwd=tmp,
                       capture_output=True, timeout=timeout)
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    if r.returncode != 0:
        raise AssertionError("%s app exit %d:\n%s" % (kind, r.returncode, out[-3000:]))
    return out


def node_exe():
    exe = os.environ.get("XRAYD_NODE") or shutil.which("node")
    if not exe or exe.endswith("NOTFOUND"):
        raise unittest.SkipTest("node not on PATH")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "aws-xray-sdk-core")):
        raise unittest.SkipTest("run `npm ci` in tests/integration/node first")
    return exe


def debian_python():
    """Debian's python3 with its python3-aws-xray-sdk 0.95 (override: XRAYD_DEBIAN_PYTHON)."""
    exe = os.environ.get("XRAYD_DEBIAN_PYTHON", "/usr/bin/python3")
    try:
        r = subprocess.run([exe, "-c", "import aws_xray_sdk"], capture_output=True, timeout=30,
                           env=clean_env(tempfile.gettempdir()))
    except OSError:
        r = None
    if r is None or r.returncode != 0:
        raise unittest.SkipTest("Debian python3-aws-xray-sdk not installed")
    return exe


def multiset_diff(expected, got):
    """(missing, unexpected) between two lists of strings, counting duplicates."""
    from collections import Counter
    e, g = Counter(expected), Counter(got)
    return list((e - g).elements()), list((g - e).elements())


class IntegrationCase(unittest.TestCase):
    """Gives each test a temp dir and prints the logs of its processes if it fails."""

    def run(self, result=None):
        self.tmp = tempfile.mkdtemp(prefix="xrayd-it-")
        self._procs = []
        try:
            if result is None:
                result = self.defaultTestResult()
            before = len(result.failures) + len(result.errors)
            super().run(result)
            if len(result.failures) + len(result.errors) > before:
                self._dump()
            return result
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def setUp(self):
        # Registered first, so it runs after every process has been stopped.
        self.addCleanup(self._check_sanitizers)

    def _check_sanitizers(self):
        for p in self._procs:
            out = p.output()
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                if marker in out:
                    i = out.index(marker)
                    self.fail("%s: sanitizer report:\n%s" % (p.name, out[max(0, i - 200):i + 4000]))

    def _dump(self):
        for p in self._procs:
            text = p.log() if isinstance(p, Xrayd) else ""
            if text:
                sys.stderr.write("\n----- %s log (last 150 lines) -----\n" % p.name)
                sys.stderr.write("\n".join(text.splitlines()[-150:]) + "\n")
            out = p.output()
            if out:
                sys.stderr.write("\n----- %s output (last 60 lines) -----\n" % p.name)
                sys.stderr.write("\n".join(out.splitlines()[-60:]) + "\n")

    def start_moto(self, verify_signatures=False, port=None):
        m = Moto(self.tmp, verify_signatures, port)
        self._procs.append(m)
        self.addCleanup(m.stop)
        return m

    def start_xrayd(self, extra_args=(), extra_env=None, name="xrayd"):
        try:
            x = Xrayd(self.tmp, extra_args, extra_env, name)
        except AssertionError:
            log = os.path.join(self.tmp, name + ".log")
            if os.path.exists(log):
                with open(log, "rb") as f:
                    sys.stderr.write(f.read().decode("utf-8", "replace")[-6000:])
            raise
        self._procs.append(x)
        self.addCleanup(x.stop)
        return x

    def start_proxy(self, upstream_port, port=0):
        p = RecordingProxy(upstream_port, port)
        self.addCleanup(p.close)
        return p

    def start_app(self, name, argv, env):
        """Starts a service that prints one JSON line once it listens ({"port": ...});
        returns that line, parsed. Stopped in the cleanup."""
        p = Proc(name, argv, env, self.tmp)
        self._procs.append(p)
        self.addCleanup(p.stop)

        def ready():
            if not p.alive():
                raise AssertionError("%s exited %s:\n%s" % (name, p.popen.returncode,
                                                            p.output()[-3000:]))
            for line in p.output().splitlines():
                if line.startswith("{"):
                    return json.loads(line)
            return None
        return wait_for(ready, 20, 0.05, "%s to listen" % name)

    def start_relay(self, target):
        r = Relay(target)
        self.addCleanup(r.close)
        return r

    def assertDocsEqual(self, expected, got, what):
        missing, unexpected = multiset_diff(expected, got)
        if missing or unexpected:
            self.fail("%s: %d sent, %d returned; %d missing, %d unexpected\n"
                      "first missing: %s\nfirst unexpected: %s" %
                      (what, len(expected), len(got), len(missing), len(unexpected),
                       missing[:1], unexpected[:1]))


def aws_env(moto, key, secret):
    """Environment that points xrayd's X-Ray calls at moto with a static key."""
    return {"AWS_ENDPOINT_URL_XRAY": moto.url, "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret}


def aws_args(shutdown_ms=5000):
    return ["--upstream", "aws", "-n", REGION, "--shutdown-timeout", str(shutdown_ms)]


def telemetry_sums(records):
    keys = ("SegmentsReceivedCount", "SegmentsSentCount", "SegmentsRejectedCount",
            "SegmentsSpilloverCount")
    return {k: sum(int(r.get(k, 0)) for r in records) for k in keys}
