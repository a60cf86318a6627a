# SPDX-License-Identifier: Apache-2.0
"""The command line, as a user of the AWS X-Ray daemon meets it: -v, -h, unknown
flags, and a -c file with an unknown key."""

import os
import re
import subprocess

import harness


class CliTest(harness.IntegrationCase):
    def xrayd(self, *args, timeout=15):
        return subprocess.run([harness.xrayd_bin()] + list(args),
                              env=harness.clean_env(self.tmp), cwd=self.tmp,
                              capture_output=True, timeout=timeout)

    def test_version(self):
        for flag in ("-v", "--version"):
            r = self.xrayd(flag)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout.decode() + r.stderr.decode(), r"\d+\.\d+\.\d+")

    def test_unknown_flag(self):
        r = self.xrayd("--bogus")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertRegex(r.stderr.decode(), re.compile("usage", re.I))

    def test_help(self):
        for flag in ("-h", "--help"):
            r = self.xrayd(flag)
            self.assertEqual(r.returncode, 0, r.stderr)
            out = r.stdout.decode() + r.stderr.decode()
            self.assertRegex(out, re.compile("usage", re.I))
            for f in ("--bind", "--bind-tcp", "--region", "--local-mode", "--log-file"):
                self.assertIn(f, out)

    def test_config_unknown_key(self):
        cfg = os.path.join(self.tmp, "cfg.yaml")
        with open(cfg, "w") as f:
            f.write("Version: 2\nRegion: us-east-1\nSocket:\n  UDPAddress: \"127.0.0.1:0\"\n"
                    "Bogus_Key: 7\n")
        port = harness.free_port()
        r = self.xrayd("-o", "-c", cfg, "-b", "127.0.0.1:%d" % port, "-t", "127.0.0.1:%d" % port,
                       timeout=15)
        self.assertEqual(r.returncode, 1, (r.stdout, r.stderr))
        msg = r.stdout.decode() + r.stderr.decode()
        self.assertIn("Bogus_Key", msg)
        self.assertRegex(msg, r"\b5\b", "the message names line 5")


if __name__ == "__main__":
    harness.main()
