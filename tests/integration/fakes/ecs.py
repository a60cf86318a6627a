# SPDX-License-Identifier: Apache-2.0
"""A fake ECS container credentials endpoint (the agent at 169.254.170.2, or an
EKS pod identity agent), for tests that point xrayd at it with
AWS_CONTAINER_CREDENTIALS_FULL_URI: GET <path> with the expected Authorization header
gives a credentials document; anything else gets 401 or 404.

    python3 ecs.py TOKEN   # prints its URL, serves until interrupted
"""

import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_base import FakeServer, serve_forever  # noqa: E402


class FakeEcs(FakeServer):
    name = "fake ECS credentials endpoint"
    path = "/v2/credentials/fake-task"

    def __init__(self, auth_token, key_id="ASIAFAKEECS00000001", secret="fake/ecs/secret",
                 session_token="FAKEECSSESSIONTOKEN", lifetime_s=6 * 3600):
        self.auth_token = auth_token
        self.key_id, self.secret, self.session_token = key_id, secret, session_token
        self.lifetime_s = lifetime_s
        super().__init__()
        self.creds_url = self.url + self.path

    def answer(self, method, path, headers, body):
        if method != "GET" or path != self.path:
            return 404, {}, ""
        if headers.get("authorization") != self.auth_token:
            return 401, {}, json.dumps({"code": "AccessDenied"})
        exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
            seconds=self.lifetime_s)
        return 200, {"Content-Type": "application/json"}, json.dumps({
            "RoleArn": "arn:aws:iam::123456789012:role/fake-task-role",
            "AccessKeyId": self.key_id, "SecretAccessKey": self.secret,
            "Token": self.session_token, "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ")})


if __name__ == "__main__":
    serve_forever(FakeEcs(sys.argv[1] if len(sys.argv) > 1 else "fake-token"))
