# SPDX-License-Identifier: Apache-2.0
"""Where xrayd's credentials come from, against moto as the real STS and X-Ray:
-r assumes a role with AssumeRole signed by a user who may do nothing else, and the
uploads, signed with the session, pass moto's signature and policy checks; a web
identity token file is traded with AssumeRoleWithWebIdentity; a session shortened by a
fake STS front is refreshed while uploads go on; and the fake instance metadata
service and fake ECS credentials endpoint each lead to uploads signed with the keys
they served. Segments always come back byte-identical from BatchGetTraces."""

import json
import os
import random
import socket
import sys
import time
import unittest
import urllib.request

import harness

sys.path.insert(0, os.path.join(harness.HERE, "fakes"))
from ecs import FakeEcs  # noqa: E402
from imds import FakeImds  # noqa: E402
from sts_short import FakeShortSts  # noqa: E402

ACCOUNT = "123456789012"  # moto's default account
ROLE = "xrayd-writer"
ROLE_ARN = "arn:aws:iam::%s:role/%s" % (ACCOUNT, ROLE)


def segment(trace_id, n):
    now = time.time()
    return json.dumps({"trace_id": trace_id, "id": "%016x" % random.getrandbits(64),
                       "name": "cred-test-%d" % n, "start_time": now - 0.01, "end_time": now,
                       "annotations": {"n": n}}, separators=(",", ":"))


def key_id(authorization):
    """The access key id of a SigV4 Authorization header ("" when absent)."""
    marker = "Credential="
    i = authorization.find(marker)
    return authorization[i + len(marker):].split("/", 1)[0] if i >= 0 else ""


class CredentialsTest(harness.IntegrationCase):
    def send(self, x, count, sent):
        """count segments of fresh traces to xrayd over UDP; appended to sent."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for i in range(count):
                tid = "1-%08x-%024x" % (int(time.time()), random.getrandbits(96))
                doc = segment(tid, len(sent))
                s.sendto(b'{"format":"json","version":1}\n' + doc.encode(), x.udp_addr)
                sent.append(doc)
        finally:
            s.close()

    def wait_all(self, moto, sent, key, secret, timeout=30):
        ids = harness.trace_ids(sent)
        got = []

        def all_there():
            got[:] = moto.batch_get_documents(ids, key, secret)
            return len(got) >= len(sent)

        try:
            harness.wait_for(all_there, timeout, 1.0, "moto to hold every document")
        except AssertionError:
            pass
        self.assertDocsEqual(sent, got, "moto BatchGetTraces")

    def iam_world(self, moto):
        """With signature checks on (moto started with INITIAL_NO_AUTH_ACTION_COUNT=3):
        an admin, a role allowed xray:* and trusting user xrayd, and user xrayd allowed
        only sts:AssumeRole on it. Returns (admin key, secret, user key, secret)."""
        iam = moto.client("iam")
        iam.create_user(UserName="admin")
        admin = iam.create_access_key(UserName="admin")["AccessKey"]
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        # From here on every call is checked: sign with the admin's key.
        iam = moto.client("iam", admin["AccessKeyId"], admin["SecretAccessKey"])
        iam.create_user(UserName="xrayd")
        user = iam.create_access_key(UserName="xrayd")["AccessKey"]
        iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                            "Principal": {"AWS": "arn:aws:iam::%s:user/xrayd" % ACCOUNT}}]}))
        iam.put_role_policy(RoleName=ROLE, PolicyName="xray", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "xray:*", "Resource": "*"}]}))
        iam.put_user_policy(UserName="xrayd", PolicyName="assume", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                            "Resource": ROLE_ARN}]}))
        return (admin["AccessKeyId"], admin["SecretAccessKey"],
                user["AccessKeyId"], user["SecretAccessKey"])

    def xray_key_ids(self, proxy):
        return [key_id(h.get("authorization", "")) for _, _, h, _ in
                proxy.requests("/TraceSegments")]

    def test_role_arn_assume_role(self):
        moto = self.start_moto(verify_signatures=True)
        admin, admin_secret, user, user_secret = self.iam_world(moto)
        # The user alone may not upload: only the role can.
        with self.assertRaises(Exception):
            moto.client("xray", user, user_secret).put_trace_segments(
                TraceSegmentDocuments=[segment("1-5f84c7a1-000000000000000000000001", 0)])
        xray_proxy = self.start_proxy(moto.port)
        sts_proxy = self.start_proxy(moto.port)
        env = {"AWS_ACCESS_KEY_ID": user, "AWS_SECRET_ACCESS_KEY": user_secret,
               "AWS_ENDPOINT_URL_XRAY": xray_proxy.url, "AWS_ENDPOINT_URL_STS": sts_proxy.url}
        x = self.start_xrayd(harness.aws_args() + ["-r", ROLE_ARN], env)
        sent = []
        self.send(x, 12, sent)
        self.wait_all(moto, sent, admin, admin_secret)

        # One AssumeRole, signed with the user's key for service sts, session "xrayd".
        calls = sts_proxy.requests("/")
        self.assertEqual(len(calls), 1, calls)
        _, _, headers, body = calls[0]
        self.assertIn("Action=AssumeRole&", body.decode())
        self.assertIn("RoleSessionName=xrayd", body.decode())
        self.assertIn("/us-east-1/sts/aws4_request", headers["authorization"])
        self.assertEqual(key_id(headers["authorization"]), user)
        # Every upload signed with the session (its key and token), none with the user's.
        ids = set(self.xray_key_ids(xray_proxy))
        self.assertTrue(ids, "uploads were made")
        self.assertNotIn(user, ids)
        self.assertTrue(all(i.startswith("ASIA") for i in ids), ids)
        for _, _, h, _ in xray_proxy.requests("/TraceSegments"):
            self.assertTrue(h.get("x-amz-security-token"), "the session token is sent")
        status, health = x.healthz()
        self.assertEqual(health["status"], "ok", health)
        self.assertIn("assume-role", x.log())
        rc, _ = x.terminate()
        self.assertEqual(rc, 0)

    def test_role_arn_denied(self):
        moto = self.start_moto(verify_signatures=True)
        _, _, user, user_secret = self.iam_world(moto)
        env = {"AWS_ACCESS_KEY_ID": user, "AWS_SECRET_ACCESS_KEY": user_secret,
               "AWS_ENDPOINT_URL": moto.url}
        other = "arn:aws:iam::%s:role/not-allowed" % ACCOUNT
        x = self.start_xrayd(harness.aws_args() + ["-r", other], env)
        self.send(x, 2, [])

        def reported():
            err = x.healthz()[1].get("last_upstream_error") or ""
            return err if "assume-role" in err else None

        err = harness.wait_for(reported, 15, 0.2, "/healthz to report the refused AssumeRole")
        self.assertIn("STS AssumeRole: HTTP 403", err)
        self.assertNotIn(user_secret, err)
        self.assertNotIn(user_secret, x.log())
        self.assertTrue(x.alive(), "xrayd stays up")

    def test_web_identity(self):
        # moto answers unsigned AssumeRoleWithWebIdentity only with checking off
        # (peers.md): the first upload gets the session, then checking goes on.
        moto = self.start_moto()
        iam = moto.client("iam")
        iam.create_user(UserName="admin")
        admin = iam.create_access_key(UserName="admin")["AccessKey"]
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
                            "Principal": {"Federated": "arn:aws:iam::%s:oidc-provider/"
                                                       "oidc.eks.example" % ACCOUNT}}]}))
        iam.put_role_policy(RoleName=ROLE, PolicyName="xray", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "xray:*", "Resource": "*"}]}))
        token_file = os.path.join(self.tmp, "token")
        with open(token_file, "w") as f:
            f.write("eyJhbGciOiJSUzI1NiIsImtpZCI6ImZha2UifQ.eyJzdWIiOiJ4cmF5ZCJ9.c2ln\n")
        xray_proxy = self.start_proxy(moto.port)
        sts_proxy = self.start_proxy(moto.port)
        env = {"AWS_WEB_IDENTITY_TOKEN_FILE": token_file, "AWS_ROLE_ARN": ROLE_ARN,
               "AWS_ENDPOINT_URL_XRAY": xray_proxy.url, "AWS_ENDPOINT_URL_STS": sts_proxy.url}
        x = self.start_xrayd(harness.aws_args(), env)
        sent = []
        self.send(x, 3, sent)
        key, secret = admin["AccessKeyId"], admin["SecretAccessKey"]
        self.wait_all(moto, sent, key, secret)
        calls = sts_proxy.requests("/")
        self.assertEqual(len(calls), 1)
        _, _, headers, body = calls[0]
        self.assertNotIn("authorization", headers, "AssumeRoleWithWebIdentity is unsigned")
        self.assertIn("Action=AssumeRoleWithWebIdentity&", body.decode())
        self.assertIn("WebIdentityToken=eyJhbGci", body.decode())

        # Checking on: uploads signed with the cached session must pass it.
        # text/plain: a form content type would leave moto an empty body.
        req = urllib.request.Request(moto.url + "/moto-api/reset-auth", data=b"0",
                                     method="POST", headers={"Content-Type": "text/plain"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=10) as r:
            self.assertEqual(r.status, 200)
        with self.assertRaises(Exception):
            moto.client("xray", "AKIDUNKNOWN", "nope").put_trace_segments(
                TraceSegmentDocuments=[sent[0]])
        before = len(xray_proxy.requests("/TraceSegments"))
        self.send(x, 10, sent)
        self.wait_all(moto, sent, key, secret)
        later = xray_proxy.requests("/TraceSegments")[before:]
        self.assertTrue(later)
        self.assertTrue(all(key_id(h["authorization"]).startswith("ASIA") for _, _, h, _ in later))
        self.assertIsNone(x.healthz()[1]["last_upstream_error"])
        self.assertNotIn("eyJhbGci", x.log())

    def test_session_refreshed_before_expiry(self):
        moto = self.start_moto(verify_signatures=True)
        admin, admin_secret, user, user_secret = self.iam_world(moto)
        lifetime = 12
        sts = FakeShortSts(moto.port, lifetime)
        self.addCleanup(sts.close)
        xray_proxy = self.start_proxy(moto.port)
        env = {"AWS_ACCESS_KEY_ID": user, "AWS_SECRET_ACCESS_KEY": user_secret,
               "AWS_ENDPOINT_URL_XRAY": xray_proxy.url, "AWS_ENDPOINT_URL_STS": sts.url}
        x = self.start_xrayd(harness.aws_args() + ["-r", ROLE_ARN], env)
        sent = []
        # Segments every half second for more than two session lifetimes.
        deadline = time.monotonic() + 2.5 * lifetime
        while time.monotonic() < deadline:
            self.send(x, 1, sent)
            time.sleep(0.5)
        self.wait_all(moto, sent, admin, admin_secret)
        # Refreshed at about half of each session's life, in the background.
        assume = sts.requests("POST", "/")
        self.assertGreaterEqual(len(assume), 4, "AssumeRole calls: %d" % len(assume))
        self.assertLessEqual(len(assume), 8, "AssumeRole calls: %d" % len(assume))
        ids = self.xray_key_ids(xray_proxy)
        self.assertGreaterEqual(len(set(ids)), 3, "uploads moved to each new session")
        health = x.healthz()[1]
        self.assertIsNone(health["last_upstream_error"], health)
        self.assertNotIn("no credentials", x.log())

    def test_instance_metadata_credentials(self):
        moto = self.start_moto()
        imds = FakeImds()
        self.addCleanup(imds.close)
        xray_proxy = self.start_proxy(moto.port)
        env = {"AWS_ENDPOINT_URL_XRAY": xray_proxy.url,
               "AWS_EC2_METADATA_DISABLED": "false",
               "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url}
        x = self.start_xrayd(harness.aws_args(), env)
        sent = []
        self.send(x, 5, sent)
        self.wait_all(moto, sent, "AKIDTEST", "secret")
        self.assertEqual(set(self.xray_key_ids(xray_proxy)), {imds.key_id})
        for _, _, h, _ in xray_proxy.requests("/TraceSegments"):
            self.assertEqual(h.get("x-amz-security-token"), imds.session_token)
        self.assertEqual(imds.unauthorized, 0, "every metadata GET carried the token")
        self.assertEqual(len(imds.requests("PUT", "/latest/api/token")), 1)
        # -o: the region and the identity were not asked for.
        self.assertEqual(imds.requests("GET", "/latest/meta-data/placement/region"), [])
        self.assertEqual(imds.requests("GET", "/latest/meta-data/instance-id"), [])

    def test_ecs_container_credentials(self):
        moto = self.start_moto()
        token_file = os.path.join(self.tmp, "ecs-token")
        with open(token_file, "w") as f:
            f.write("fake-ecs-auth-token\n")
        ecs = FakeEcs("fake-ecs-auth-token")
        self.addCleanup(ecs.close)
        xray_proxy = self.start_proxy(moto.port)
        env = {"AWS_ENDPOINT_URL_XRAY": xray_proxy.url,
               "AWS_CONTAINER_CREDENTIALS_FULL_URI": ecs.creds_url,
               "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": token_file}
        x = self.start_xrayd(harness.aws_args(), env)
        sent = []
        self.send(x, 5, sent)
        self.wait_all(moto, sent, "AKIDTEST", "secret")
        self.assertEqual(set(self.xray_key_ids(xray_proxy)), {ecs.key_id})
        for _, _, h, _ in xray_proxy.requests("/TraceSegments"):
            self.assertEqual(h.get("x-amz-security-token"), ecs.session_token)
        self.assertEqual(len(ecs.requests("GET")), 1, "fetched once, then cached")
        self.assertIsNone(x.healthz()[1]["last_upstream_error"])


if __name__ == "__main__":
    harness.main()
