# SPDX-License-Identifier: Apache-2.0
"""A fake X-Ray endpoint for what no real peer can be made to do: answer 503 or 429
with Retry-After, refuse a batch with 400, be slower than the client's timeout, or
refuse connections for a while. It serves PutTraceSegments and PutTelemetryRecords on
127.0.0.1 and records what it accepted; it does not check signatures (moto does that
in the other tests).

Faults for /TraceSegments are scripted in order (push); with none left a call is
accepted. A batch holding the reject marker is always refused with 400, as X-Ray
refuses a malformed call. Documents of a call answered after the client gave up
(the slow fault) are kept apart in `late`: the client saw a timeout, so it sends them
again, and a test can tell an at-least-once duplicate from a real one.
"""

import collections
import http.server
import json
import socket
import threading
import time


class XrayFaults:
    """The fake on a free port (or port), in a thread of the calling process."""

    def __init__(self, port=0):
        self._lock = threading.Lock()
        self.accepted = []    # documents of calls answered 200 in time
        self.late = []        # documents of calls answered after the client's timeout
        self.calls = []       # (path, status answered, documents, monotonic time)
        self.telemetry = []   # TelemetryRecords entries received
        self.headers = []     # request headers of each /TraceSegments call (lower case)
        self.reject_marker = None
        self._faults = collections.deque()
        self._conns = set()
        self._server = None
        self._thread = None
        self.port = port
        self.come_up()
        self.url = "http://127.0.0.1:%d" % self.port

    # ---- control ----

    def push(self, *faults):
        """Queues faults for the next /TraceSegments calls, one per call:
        ("status", code[, retry_after]) answers code (with a Retry-After header);
        ("slow", seconds) waits that long, then answers 200 to a client that is gone."""
        with self._lock:
            self._faults.extend(faults)

    def faults_left(self):
        with self._lock:
            return len(self._faults)

    def go_down(self):
        """Stops listening and cuts every open connection: new connections are refused
        (ECONNREFUSED) until come_up()."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._server = None
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def come_up(self):
        """Listens again, on the same port."""
        if self._server is not None:
            return
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with fake._lock:
                    fake._conns.add(self.connection)

            def finish(self):
                with fake._lock:
                    fake._conns.discard(self.connection)
                try:
                    super().finish()
                except OSError:
                    pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                if self.path == "/TraceSegments":
                    fake._trace_segments(self, body)
                elif self.path == "/TelemetryRecords":
                    try:
                        recs = json.loads(body).get("TelemetryRecords", [])
                    except ValueError:
                        recs = []
                    with fake._lock:
                        fake.telemetry.extend(recs)
                    fake._answer(self, 200, {})
                else:
                    fake._answer(self, 404, {"__type": "UnknownOperationException"})

        class Server(http.server.ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self):
        self.go_down()

    # ---- views ----

    def trace_calls(self):
        """(status, documents, time) of each /TraceSegments call, in arrival order."""
        with self._lock:
            return [(c[1], c[2], c[3]) for c in self.calls if c[0] == "/TraceSegments"]

    def accepted_docs(self):
        with self._lock:
            return list(self.accepted)

    def late_docs(self):
        with self._lock:
            return list(self.late)

    def telemetry_records(self):
        with self._lock:
            return list(self.telemetry)

    # ---- the handler's side ----

    def _answer(self, h, status, obj, extra_headers=()):
        data = json.dumps(obj).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/x-amz-json-1.1")
            for k, v in extra_headers:
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except OSError:
            pass  # the client gave up (slow fault) or the fake went down

    def _trace_segments(self, h, body):
        try:
            docs = json.loads(body)["TraceSegmentDocuments"]
        except (ValueError, KeyError, TypeError):
            self._record(h, 400, [])
            self._answer(h, 400, {"__type": "SerializationException"})
            return
        with self._lock:
            self.headers.append({k.lower(): v for k, v in h.headers.items()})
            bad = self.reject_marker is not None and any(self.reject_marker in d for d in docs)
            fault = None if bad or not self._faults else self._faults.popleft()
        if bad:
            self._record(h, 400, docs)
            self._answer(h, 400, {"__type": "InvalidRequestException",
                                  "message": "a document is not valid"})
        elif fault is not None and fault[0] == "status":
            code = fault[1]
            self._record(h, code, docs)
            extra = [("Retry-After", str(fault[2]))] if len(fault) > 2 else []
            kind = "ThrottledException" if code == 429 else "ServiceUnavailableException"
            self._answer(h, code, {"__type": kind, "message": "fake fault"}, extra)
        elif fault is not None and fault[0] == "slow":
            self._record(h, 0, docs)
            time.sleep(fault[1])
            with self._lock:
                self.late.extend(docs)
            self._answer(h, 200, {"UnprocessedTraceSegments": []})
        else:
            with self._lock:
                self.accepted.extend(docs)
            self._record(h, 200, docs)
            self._answer(h, 200, {"UnprocessedTraceSegments": []})

    def _record(self, h, status, docs):
        with self._lock:
            self.calls.append((h.path, status, list(docs), time.monotonic()))
