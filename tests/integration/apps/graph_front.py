# SPDX-License-Identifier: Apache-2.0
"""Service "front" of the service-graph test, traced by the Python X-Ray SDK 2.x.

An http.server service: a segment per incoming request, as the SDK's web middlewares
make it (the caller's X-Amzn-Trace-Id honoured, else a decision of the centralized
sampler), and the `requests` library patched, so its call to service "back"
(http://127.0.0.1:--back-port, path and query passed through) is a `remote`
subsegment carrying the trace header. It answers with back's status and a JSON body
naming the trace id. The sampling pollers ask AWS_XRAY_DAEMON_ADDRESS's TCP side for
rules; once it has them it listens on a free port of 127.0.0.1 and prints one JSON
line {"port", "rules"}.
"""

import argparse
import http.server
import json
import signal
import sys
import time
import traceback

from aws_xray_sdk.core import patch, xray_recorder
from aws_xray_sdk.core.models import http as xhttp
from aws_xray_sdk.ext.util import (calculate_sampling_decision, calculate_segment_name,
                                   construct_xray_header, prepare_response_header)

patch(("requests",))
import requests  # noqa: E402  (patched first)


def make_handler(back_url):
    session = requests.Session()
    session.trust_env = False  # no proxies, no netrc: straight to back

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            host = self.headers.get("Host")
            path = self.path.split("?", 1)[0]
            header = construct_xray_header(self.headers)
            name = calculate_segment_name(host, xray_recorder)
            decision = calculate_sampling_decision(
                header, xray_recorder,
                {"host": host, "method": "GET", "path": path, "service": name})
            seg = xray_recorder.begin_segment(name=name, traceid=header.root,
                                              parent_id=header.parent, sampling=decision)
            seg.save_origin_trace_header(header)
            seg.put_http_meta(xhttp.URL, "http://%s%s" % (host, path))
            seg.put_http_meta(xhttp.METHOD, "GET")
            seg.put_http_meta(xhttp.USER_AGENT, self.headers.get("User-Agent"))
            seg.put_http_meta(xhttp.CLIENT_IP, self.client_address[0])
            try:
                r = session.get(back_url + self.path, timeout=10)
                status, back = r.status_code, r.json()
            except Exception as e:  # recorded on the segment, answered 502
                seg.add_exception(e, traceback.extract_stack())
                status, back = 502, None
            seg.put_http_meta(xhttp.STATUS, status)
            body = json.dumps({"trace_id": seg.trace_id, "sampled": bool(seg.sampled),
                               "status": status, "back": back}).encode()
            seg.put_http_meta(xhttp.CONTENT_LENGTH, len(body))
            trace_header = prepare_response_header(header, seg)
            # The segment is sent before the answer: once the caller has it, so has xrayd.
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
    ap.add_argument("--back-port", type=int, required=True)
    args = ap.parse_args()
    xray_recorder.configure(service="front", sampling=True, context_missing="LOG_ERROR",
                            plugins=("ECSPlugin",))
    sampler = xray_recorder.sampler
    sampler.start()  # rules first, so no decision of this process is the local fallback
    deadline = time.time() + 10
    while not sampler._cache.rules and time.time() < deadline:
        time.sleep(0.05)
    rules = sorted(r.name for r in sampler._cache.rules)

    server = http.server.HTTPServer(("127.0.0.1", 0),
                                    make_handler("http://127.0.0.1:%d" % args.back_port))
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    print(json.dumps({"port": server.server_address[1], "rules": rules}), flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
