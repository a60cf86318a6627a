# SPDX-License-Identifier: Apache-2.0
"""SIGTERM ends xrayd with exit 0 within --shutdown-timeout even when the upstream
cannot take the last batches: a closed port, or a fake upstream that accepts
connections and never answers (no real peer can be made to hang)."""

import socket

import harness

SHUTDOWN_MS = 2000


class ShutdownDeadlineTest(harness.IntegrationCase):
    def sigterm_with_upstream(self, url):
        x = self.start_xrayd(harness.aws_args(SHUTDOWN_MS),
                             {"AWS_ENDPOINT_URL_XRAY": url, "AWS_ACCESS_KEY_ID": "AKIDTEST",
                              "AWS_SECRET_ACCESS_KEY": "secret"})
        relay = self.start_relay(x.udp_addr)
        harness.run_app(self.tmp, "py", relay.address, ["--traces", "60", "--stream", "0"])
        rc, took = x.terminate(SHUTDOWN_MS / 1000 + 10)
        self.assertEqual(rc, 0, "exit code after SIGTERM (took %.2fs)" % (took,))
        self.assertLess(took, SHUTDOWN_MS / 1000 + 1.0, "exit within --shutdown-timeout")

    def test_closed_port(self):
        self.sigterm_with_upstream("http://127.0.0.1:%d" % harness.free_port())

    def test_upstream_that_never_answers(self):
        # Fake upstream: a listening socket whose connections are accepted by the
        # kernel (backlog) and never read or answered.
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        self.addCleanup(s.close)
        self.sigterm_with_upstream("http://127.0.0.1:%d" % s.getsockname()[1])


if __name__ == "__main__":
    harness.main()
