# SPDX-License-Identifier: Apache-2.0
"""A fake HTTP proxy (no real proxy is among the test peers): forwards absolute-form
requests (`POST http://host:port/path`) and tunnels CONNECT, and records what passed
through. It only ever connects to loopback addresses; anything else gets 403, so a
test that goes wrong cannot send traffic off the machine."""

import http.client
import http.server
import select
import socket
import threading

LOOPBACK = ("127.0.0.1", "::1", "localhost")
HOP_BY_HOP = ("connection", "keep-alive", "proxy-connection", "proxy-authorization",
              "transfer-encoding", "te", "trailer", "upgrade")


def _split_authority(authority, default_port):
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = authority.partition(":")
    return host, int(port) if port else default_port


class HttpProxy:
    """The fake proxy on a free loopback port, in a thread of the calling process."""

    def __init__(self):
        self._lock = threading.Lock()
        self.forwarded = []  # (method, absolute URL, body) of forwarded requests
        self.tunnels = []    # "host:port" of CONNECT requests
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _refuse(self, code, why):
                data = why.encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_CONNECT(self):
                host, port = _split_authority(self.path, 443)
                with fake._lock:
                    fake.tunnels.append(self.path)
                if host not in LOOPBACK:
                    self._refuse(403, "this fake proxy only reaches loopback")
                    return
                try:
                    upstream = socket.create_connection((host, port), timeout=10)
                except OSError:
                    self._refuse(502, "upstream refused")
                    return
                self.send_response(200, "Connection established")
                self.end_headers()
                self.wfile.flush()
                fake._pipe(self.connection, upstream)
                self.close_connection = True

            def _forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                if not self.path.startswith("http://"):
                    self._refuse(400, "not an absolute-form request")
                    return
                authority, _, rest = self.path[7:].partition("/")
                host, port = _split_authority(authority, 80)
                with fake._lock:
                    fake.forwarded.append((self.command, self.path, body))
                if host not in LOOPBACK:
                    self._refuse(403, "this fake proxy only reaches loopback")
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                conn = http.client.HTTPConnection(host, port, timeout=30)
                try:
                    conn.request(self.command, "/" + rest, body=body, headers=headers)
                    r = conn.getresponse()
                    data = r.read()
                except OSError:
                    self._refuse(502, "upstream failed")
                    return
                finally:
                    conn.close()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = _forward
            do_GET = _forward
            do_PUT = _forward

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @staticmethod
    def _pipe(a, b):
        socks = [a, b]
        try:
            while True:
                ready, _, _ = select.select(socks, [], [], 30)
                if not ready:
                    return
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except OSError:
            return
        finally:
            b.close()

    def forwarded_paths(self, path):
        """Forwarded requests whose URL path is path."""
        with self._lock:
            return [f for f in self.forwarded if f[1].split("/", 3)[-1] == path.lstrip("/")]

    def tunnel_targets(self):
        with self._lock:
            return list(self.tunnels)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
