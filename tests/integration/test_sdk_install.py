# SPDX-License-Identifier: Apache-2.0
"""docs/sdk.md, followed by a C developer: `cmake --install` into a fresh prefix, the
five-line example compiled against the installed headers through pkg-config (shared
libxray.so, and static libxray.a as the page shows), and each binary run: one
datagram reaches the daemon address, with the header line and a segment document
holding the subsegment.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import unittest

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(harness.DATA, "sdk", "five_lines.c")


def build_dir():
    # xrayd is <build>/daemon/xrayd.
    return os.path.dirname(os.path.dirname(os.path.abspath(harness.xrayd_bin())))


def run(cmd, env=None, timeout=60):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s%s" % (cmd, p.returncode, p.stdout, p.stderr))
    return p.stdout


class SdkInstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xrayd-sdk-install-")
        cls.prefix = os.path.join(cls.tmp, "prefix")
        run(["cmake", "--install", build_dir(), "--prefix", cls.prefix])
        cls.env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(cls.prefix, "lib", "pkgconfig"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def pkg(self, *args):
        return run(["pkg-config", *args, "xray"], env=self.env).split()

    def receive_from(self, binary):
        """Runs binary with the daemon address on a test socket; the datagrams it sent."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        env = harness.clean_env(self.tmp)
        env["AWS_XRAY_DAEMON_ADDRESS"] = "127.0.0.1:%d" % sock.getsockname()[1]
        env["AWS_XRAY_TRACING_NAME"] = "five-lines"
        try:
            run([binary], env=env, timeout=30)
            data, _ = sock.recvfrom(65536)
        finally:
            sock.close()
        return data

    def check_datagram(self, data):
        header, _, body = data.partition(b"\n")
        self.assertEqual(json.loads(header), {"format": "json", "version": 1})
        doc = json.loads(body)
        self.assertEqual(doc["name"], "five-lines")
        self.assertRegex(doc["trace_id"], r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
        self.assertRegex(doc["id"], r"^[0-9a-f]{16}$")
        self.assertGreaterEqual(doc["end_time"], doc["start_time"])
        self.assertEqual([s["name"] for s in doc["subsegments"]], ["orders-db"])
        self.assertNotIn("in_progress", doc)

    def test_installed_files(self):
        for f in ("include/xray/xray.h", "include/xray/xray_curl.h", "lib/libxray.a",
                  "lib/libxray_sampling.a", "lib/pkgconfig/xray.pc", "bin/xrayd"):
            self.assertTrue(os.path.exists(os.path.join(self.prefix, f)), f)
        self.assertTrue(any(re.match(r"libxray\.so", n)
                            for n in os.listdir(os.path.join(self.prefix, "lib"))))
        first = self.pkg("--cflags")[0]
        self.assertEqual(os.path.normpath(first[2:]), os.path.join(self.prefix, "include"))

    def test_five_lines_shared(self):
        out = os.path.join(self.tmp, "five-shared")
        lib = os.path.join(self.prefix, "lib")
        run(["cc", EXAMPLE, "-o", out, *self.pkg("--cflags", "--libs"), "-Wl,-rpath," + lib])
        needed = run(["readelf", "-d", out])
        self.assertIn("libxray.so", needed)
        self.check_datagram(self.receive_from(out))

    def test_five_lines_static(self):
        out = os.path.join(self.tmp, "five-static")
        deps = run(["pkg-config", "--libs", "libcurl", "jansson"]).split()
        run(["cc", EXAMPLE, "-o", out, *self.pkg("--cflags"),
             "-L" + os.path.join(self.prefix, "lib"), "-Wl,-Bstatic", "-lxray",
             "-lxray_sampling", "-Wl,-Bdynamic", *deps, "-lpthread", "-lm"])
        self.assertNotIn("libxray", run(["readelf", "-d", out]))
        self.check_datagram(self.receive_from(out))


if __name__ == "__main__":
    harness.main()
