# SPDX-License-Identifier: Apache-2.0
"""A fake EC2 instance metadata service (IMDSv2), for tests that point xrayd at it
with AWS_EC2_METADATA_SERVICE_ENDPOINT: PUT /latest/api/token with a TTL header gives
a token; every GET without that token gets 401, as the real IMDSv2 answers. It serves
one role's credentials plus region, hostname and instance-id.

    python3 imds.py   # prints its URL, serves until interrupted
"""

import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_base import FakeServer, serve_forever  # noqa: E402

TOKEN = "AQAEAFAKEIMDSTOKEN=="


class FakeImds(FakeServer):
    name = "fake IMDS"

    def __init__(self, key_id="ASIAFAKEIMDS0000001", secret="fake/imds/secret",
                 session_token="FAKEIMDSSESSIONTOKEN", role="xrayd-instance-role",
                 region="us-east-1", lifetime_s=6 * 3600):
        self.key_id, self.secret, self.session_token = key_id, secret, session_token
        self.role, self.region, self.lifetime_s = role, region, lifetime_s
        self.unauthorized = 0
        super().__init__()

    def answer(self, method, path, headers, body):
        if path == "/latest/api/token":
            if method != "PUT" or not headers.get("x-aws-ec2-metadata-token-ttl-seconds"):
                return 400, {}, "token requests are PUTs with a TTL"
            return 200, {"X-aws-ec2-metadata-token-ttl-seconds": "21600"}, TOKEN
        if headers.get("x-aws-ec2-metadata-token") != TOKEN:
            self.unauthorized += 1
            return 401, {}, ""
        base = "/latest/meta-data/"
        if path == base + "iam/security-credentials/":
            return 200, {}, self.role + "\n"
        if path == base + "iam/security-credentials/" + self.role:
            exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
                seconds=self.lifetime_s)
            return 200, {"Content-Type": "text/plain"}, json.dumps({
                "Code": "Success", "Type": "AWS-HMAC",
                "LastUpdated": datetime.datetime.now(datetime.timezone.utc)
                .strftime("%Y-%m-%dT%H:%M:%SZ"),
                "AccessKeyId": self.key_id, "SecretAccessKey": self.secret,
                "Token": self.session_token, "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ")})
        if path == base + "placement/region":
            return 200, {}, self.region
        if path == base + "hostname":
            return 200, {}, "ip-10-0-0-1.ec2.internal"
        if path == base + "instance-id":
            return 200, {}, "i-0123456789abcdef0"
        return 404, {}, ""


if __name__ == "__main__":
    serve_forever(FakeImds())
