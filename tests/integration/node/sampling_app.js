// SPDX-License-Identifier: Apache-2.0
// An HTTP service traced by the Node X-Ray SDK's middleware (aws-xray-sdk-core 3.12.0)
// with centralized sampling: its pollers ask AWS_XRAY_DAEMON_ADDRESS's TCP side for the
// rules and report statistics. It calls itself on /orders/N and /other/N every 50 ms
// for argv[2] seconds (default 13: past the first SamplingTargets call at ~10 s),
// then prints one JSON line with the requests made.
'use strict';

const http = require('http');
const AWSXRay = require('aws-xray-sdk-core');

AWSXRay.setContextMissingStrategy('LOG_ERROR');
AWSXRay.setLogger({ error() {}, warn() {}, info() {}, debug() {} });
AWSXRay.middleware.setDefaultName('node-shop');

const seconds = Number(process.argv[2] || 13);

const server = http.createServer((req, res) => {
  AWSXRay.middleware.traceRequestResponseCycle(req, res);
  res.end('ok');
});

function get(port, path) {
  return new Promise((resolve) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', resolve);
    }).on('error', resolve);
  });
}

server.listen(0, '127.0.0.1', async () => {
  const port = server.address().port;
  const start = Date.now();
  let made = 0;
  while (Date.now() - start < seconds * 1000) {
    await get(port, '/orders/' + made);
    await get(port, '/other/' + made);
    made++;
    await new Promise((r) => setTimeout(r, 50));
  }
  server.close();
  // The SDK's socket is unref'd: give pending sends time to leave before exiting.
  setTimeout(() => {
    process.stdout.write(JSON.stringify({ made }) + '\n');
  }, 500);
});
