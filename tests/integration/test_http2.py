# SPDX-License-Identifier: Apache-2.0
"""Uploads speak HTTP/2 when the server offers it, over TLS that NoVerifySSL lets
through with a self-signed certificate. The peer is nghttpd (Debian nghttp2-server), a
real HTTP/2-only server: it serves files, so it answers the upload with 404, which is
fine here — what matters is that the request arrived as HTTP/2 frames, which its
verbose log shows, and that without NoVerifySSL no request arrives at all."""

import os
import shutil
import subprocess
import time
import unittest

import harness


def make_certificate(tmp):
    key, cert = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return key, cert


@unittest.skipUnless(shutil.which("nghttpd"), "nghttpd (nghttp2-server) not installed")
class Http2UploadTest(harness.IntegrationCase):
    def start_nghttpd(self):
        key, cert = make_certificate(self.tmp)
        port = harness.free_port()
        docroot = os.path.join(self.tmp, "www")
        os.makedirs(docroot)
        server = harness.Proc("nghttpd", ["nghttpd", "-v", "-d", docroot, "-a", "127.0.0.1",
                                          str(port), key, cert],
                              dict(os.environ), self.tmp)
        self.addCleanup(server.stop)
        harness.wait_for(lambda: "listen" in server.output().lower() or self._connects(port),
                         10, 0.1, "nghttpd to listen")
        return server, port

    @staticmethod
    def _connects(port):
        import socket
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            return False

    def upload_to(self, port, no_verify):
        cfg = os.path.join(self.tmp, "cfg-%d.yaml" % no_verify)
        with open(cfg, "w") as f:
            f.write("Version: 2\nEndpoint: \"https://127.0.0.1:%d\"\nNoVerifySSL: %s\n"
                    % (port, "true" if no_verify else "false"))
        x = self.start_xrayd(["-c", cfg, "-n", harness.REGION, "--retry-attempts", "1"],
                             {"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret"})
        relay = self.start_relay(x.udp_addr)
        harness.run_app(self.tmp, "py", relay.address, ["--traces", "3", "--stream", "0"])
        return x

    def test_http2_with_no_verify_ssl(self):
        server, port = self.start_nghttpd()
        x = self.upload_to(port, True)
        harness.wait_for(lambda: ":path: /TraceSegments" in server.output(), 15, 0.2,
                         "an HTTP/2 HEADERS frame for /TraceSegments at nghttpd")
        out = server.output()
        self.assertIn(":method: POST", out)
        self.assertIn("x-amz-date:", out.lower())
        self.assertIn("authorization: AWS4-HMAC-SHA256", out.replace("Authorization", "authorization"))
        rc, _ = x.terminate()
        self.assertEqual(rc, 0)

    def test_certificate_checked_without_no_verify_ssl(self):
        server, port = self.start_nghttpd()
        x = self.upload_to(port, False)
        time.sleep(3)  # a batch goes out within 1 s; give it time to (not) arrive
        self.assertNotIn(":path: /TraceSegments", server.output())
        status, health = x.healthz()
        self.assertEqual(status, 200)
        self.assertIsNotNone(health["last_upstream_error"])
        rc, _ = x.terminate()
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    harness.main()
