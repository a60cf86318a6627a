// SPDX-License-Identifier: Apache-2.0
// A small service instrumented with the Node X-Ray SDK (aws-xray-sdk-core 3.12.0).
// Sends to AWS_XRAY_DAEMON_ADDRESS: manual segments with nested subsegments, an error
// and a remote fault; then one segment with more open subsegments than the SDK's
// streaming threshold (100), so closed subsegments are streamed on their own.
'use strict';

const AWSXRay = require('aws-xray-sdk-core');

AWSXRay.setContextMissingStrategy('LOG_ERROR');
AWSXRay.setLogger({ error() {}, warn() {}, info() {}, debug() {} });

const traces = Number(process.argv[2] || 20);
const streamN = Number(process.argv[3] || 130);

function oneTrace(i) {
  const seg = new AWSXRay.Segment('node-orders');
  seg.addAnnotation('order', 'o-' + i);
  seg.addAnnotation('amount', i * 3);
  seg.addMetadata('request', { path: '/orders/' + i, tags: ['a', 'b'] }, 'app');
  const api = seg.addNewSubsegment('orders-api');
  const db = api.addNewSubsegment('orders-db');
  db.addSqlData({ url: 'mysql://db.example/orders', database_type: 'MySQL' });
  db.close();
  const remote = api.addNewSubsegment('pricing');
  remote.namespace = 'remote';
  remote.addAttribute('http', { request: { method: 'GET', url: 'http://pricing.example/p' },
    response: { status: 503 } });
  remote.addFaultFlag();
  remote.close(i % 4 === 0 ? new Error('pricing unavailable') : undefined, true);
  api.close();
  seg.close();
}

function streamingTrace(n) {
  const seg = new AWSXRay.Segment('node-fanout');
  const open = [];
  for (let k = 0; k < n; k++) {
    const sub = seg.addNewSubsegment('shard-' + k);
    sub.addAnnotation('shard', k);
    open.push(sub);
  }
  for (const sub of open) {
    sub.close();
  }
  seg.close();
}

for (let i = 0; i < traces; i++) {
  oneTrace(i);
}
if (streamN > 0) {
  streamingTrace(streamN);
}
// The SDK's socket is unref'd: give pending sends time to leave before exiting.
setTimeout(() => process.stderr.write('node app done\n'), 500);
