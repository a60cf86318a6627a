// SPDX-License-Identifier: Apache-2.0
// Service "back" of the service-graph test, traced by the Node X-Ray SDK
// (aws-xray-sdk-core 3.12.0): a segment per incoming request from the SDK's middleware
// utilities (honouring the caller's X-Amzn-Trace-Id), and outgoing calls captured by
// captureHTTPsGlobal. Each request calls the uninstrumented "inventory" server at
// 127.0.0.1:argv[2]; the call is addressed to the host name "inventory" (resolved to
// 127.0.0.1 here), so its remote subsegment, and the inferred node, carry that name.
// A request with ?fail=1 is answered 500. Its centralized sampling pollers ask
// AWS_XRAY_DAEMON_ADDRESS's TCP side for rules; once it has them it listens on a free
// port of 127.0.0.1 and prints one JSON line {"port", "rules"}.
'use strict';

const http = require('http');
const AWSXRay = require('aws-xray-sdk-core');

AWSXRay.setContextMissingStrategy('LOG_ERROR');
AWSXRay.setLogger({ error() {}, warn() {}, info() {}, debug() {} });
AWSXRay.config([AWSXRay.plugins.ECSPlugin]);
AWSXRay.captureHTTPsGlobal(http);
AWSXRay.middleware.setDefaultName('back');

const inventoryPort = Number(process.argv[2]);
const ruleCache = AWSXRay.middleware.sampler.ruleCache;

// Node 20 asks for every address (all: true) when it may try both families.
function lookupInventory(host, opts, cb) {
  if (opts && opts.all) {
    cb(null, [{ address: '127.0.0.1', family: 4 }]);
  } else {
    cb(null, '127.0.0.1', 4);
  }
}

function callInventory(done) {
  const req = http.get({ hostname: 'inventory', port: inventoryPort, path: '/stock',
    lookup: lookupInventory, agent: false }, (res) => {
    res.resume();
    res.on('end', () => done(res.statusCode));
  });
  req.on('error', () => done(0));
}

function handle(req, res) {
  const fail = new URL(req.url, 'http://back').searchParams.get('fail') === '1';
  callInventory((status) => {
    const code = fail ? 500 : (status === 200 ? 200 : 502);
    const body = JSON.stringify({ service: 'back', inventory: status, fail });
    res.writeHead(code, { 'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
}

const server = http.createServer((req, res) => {
  const segment = AWSXRay.middleware.traceRequestResponseCycle(req, res);
  const ns = AWSXRay.getNamespace();
  ns.bindEmitter(req);
  ns.bindEmitter(res);
  ns.run(() => {
    AWSXRay.setSegment(segment);
    handle(req, res);
  });
});

function listen() {
  server.listen(0, '127.0.0.1', () => {
    const rules = ruleCache.getRules().map((r) => r.getName()).sort();
    process.stdout.write(JSON.stringify({ port: server.address().port, rules }) + '\n');
  });
}

// Rules first, so no decision of this process is the SDK's local fallback.
AWSXRay.middleware.sampler.start();
const deadline = Date.now() + 10000;
(function waitRules() {
  if (ruleCache.getRules().length > 0 || Date.now() > deadline) {
    listen();
  } else {
    setTimeout(waitRules, 50);
  }
})();

process.on('SIGTERM', () => {
  server.close();
  // The SDK's socket is unref'd: give pending sends time to leave before exiting.
  setTimeout(() => process.exit(0), 200);
});
