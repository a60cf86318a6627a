# SPDX-License-Identifier: Apache-2.0
"""A fake STS front for moto: it passes every request through to moto unchanged
(the Host header too, so SigV4 still verifies there) and rewrites the Expiration of a
successful answer to now + lifetime seconds. moto's sessions last as long as the
caller asks, and xrayd asks for the reference daemon's 15 minutes; this makes a
session short enough to watch xrayd refresh it during a test.

    python3 sts_short.py MOTO_PORT SECONDS   # prints its URL, serves until interrupted
"""

import datetime
import http.client
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_base import FakeServer, serve_forever  # noqa: E402


class FakeShortSts(FakeServer):
    name = "fake STS (moto with shortened sessions)"

    def __init__(self, moto_port, lifetime_s):
        self.moto_port, self.lifetime_s = moto_port, lifetime_s
        super().__init__()

    def answer(self, method, path, headers, body):
        fwd = {k: v for k, v in headers.items()
               if k not in ("connection", "keep-alive", "transfer-encoding")}
        conn = http.client.HTTPConnection("127.0.0.1", self.moto_port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=fwd)
            r = conn.getresponse()
            data = r.read()
            status = r.status
        finally:
            conn.close()
        if status == 200:
            exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
                seconds=self.lifetime_s)
            data = re.sub(rb"<Expiration>[^<]*</Expiration>",
                          b"<Expiration>" + exp.strftime("%Y-%m-%dT%H:%M:%SZ").encode() +
                          b"</Expiration>", data)
        return status, {"Content-Type": "text/xml"}, data


if __name__ == "__main__":
    serve_forever(FakeShortSts(int(sys.argv[1]), int(sys.argv[2])))
