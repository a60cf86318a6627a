# SPDX-License-Identifier: Apache-2.0
"""Service "back" for the C SDK examples' comparison, traced by the Python X-Ray SDK 2.x.

The Python twin of sdk-c/examples/backend.c: an http.server service whose requests
are segments (the caller's X-Amzn-Trace-Id honoured), each with one DynamoDB GetItem
made by boto3 (patched: an `aws` subsegment) against moto on loopback, and one request
in ten answered 500. Its documents are the reference the C SDK's are compared with.
It takes xrayd's sampling rules first, then listens on a free port of 127.0.0.1 and
prints one JSON line {"port", "rules"}.

  sdk_back.py --moto-url http://127.0.0.1:PORT
"""

import argparse
import http.server
import json
import signal
import sys
import time

import boto3
from aws_xray_sdk.core import patch, xray_recorder
from aws_xray_sdk.core.models import http as xhttp
from aws_xray_sdk.ext.util import (calculate_sampling_decision, construct_xray_header,
                                   prepare_response_header)

TABLE = "items"


def make_handler(ddb):
    served = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            host = self.headers.get("Host")
            path = self.path.split("?", 1)[0]
            header = construct_xray_header(self.headers)
            decision = calculate_sampling_decision(
                header, xray_recorder,
                {"host": host, "method": "GET", "path": path, "service": "back"})
            seg = xray_recorder.begin_segment(name="back", traceid=header.root,
                                              parent_id=header.parent, sampling=decision)
            seg.save_origin_trace_header(header)
            seg.put_http_meta(xhttp.URL, "http://%s%s" % (host, self.path))
            seg.put_http_meta(xhttp.METHOD, "GET")
            seg.put_http_meta(xhttp.USER_AGENT, self.headers.get("User-Agent"))
            seg.put_http_meta(xhttp.CLIENT_IP, self.client_address[0])
            ddb.get_item(TableName=TABLE, Key={"id": {"S": "1"}})
            served[0] += 1
            status = 500 if served[0] % 10 == 0 else 200
            if status == 500:
                seg.add_exception(RuntimeError("one request in ten fails"), [])
            body = json.dumps({"item": "ok" if status == 200 else None}).encode()
            seg.put_http_meta(xhttp.STATUS, status)
            seg.put_http_meta(xhttp.CONTENT_LENGTH, len(body))
            trace_header = prepare_response_header(header, seg)
            xray_recorder.end_segment()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header(xhttp.XRAY_HEADER, trace_header)
            self.end_headers()
            self.wfile.write(body)

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moto-url", required=True)
    args = ap.parse_args()
    ddb = boto3.client("dynamodb", endpoint_url=args.moto_url, region_name="us-east-1",
                       aws_access_key_id="AKIDTEST", aws_secret_access_key="secret")
    # The table is made before boto3 is patched: only the requests' calls are traced.
    ddb.create_table(TableName=TABLE, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName=TABLE, Item={"id": {"S": "1"}})
    patch(("botocore",))
    xray_recorder.configure(service="back", sampling=True, context_missing="LOG_ERROR")
    sampler = xray_recorder.sampler
    sampler.start()
    deadline = time.time() + 10
    while not sampler._cache.rules and time.time() < deadline:
        time.sleep(0.05)
    rules = sorted(r.name for r in sampler._cache.rules)

    server = http.server.HTTPServer(("127.0.0.1", 0), make_handler(ddb))
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    print(json.dumps({"port": server.server_address[1], "rules": rules}), flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
