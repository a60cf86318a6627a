# SPDX-License-Identifier: Apache-2.0
"""The shared shape of the fakes: a ThreadingHTTPServer on 127.0.0.1 port 0 that
records every request (method, path, lower-cased headers, body) and answers from a
handler method of the subclass. Used in-process by the tests, or run as a script."""

import http.server
import sys
import threading


class _QuietServer(http.server.ThreadingHTTPServer):
    """Says nothing when a client hangs up mid-request (xrayd stopping, a timeout)."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class FakeServer:
    """Subclasses define answer(method, path, headers, body) -> (status, headers, body)."""

    name = "fake"

    def __init__(self):
        self.calls = []
        self._lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake._lock:
                    fake.calls.append((self.command, self.path, headers, body))
                status, extra, out = fake.answer(self.command, self.path, headers, body)
                if isinstance(out, str):
                    out = out.encode("utf-8")
                self.send_response(status)
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_PUT = do_POST = _serve

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, method, path, headers, body):
        raise NotImplementedError

    def requests(self, method=None, path=None):
        with self._lock:
            return [c for c in self.calls
                    if (method is None or c[0] == method) and (path is None or c[1] == path)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


def serve_forever(fake):
    """Script mode: print the URL and serve until interrupted."""
    print(fake.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.close()
