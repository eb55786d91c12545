// The node id contract: what the runtime builds, the control plane, proxy and
// CLI parse back (Istio's `type~ip~pod.ns~ns.svc.domain`).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatNodeId, nodeWorkloadName, parseNodeId } from './node-id.js';

test('a built node id parses back into its parts', () => {
  const id = formatNodeId({ ip: '127.0.0.2', name: 'productpage-1', namespace: 'default' });
  assert.equal(id, 'sidecar~127.0.0.2~productpage-1.default~default.svc.cluster.local');
  const parsed = parseNodeId(id);
  assert.deepEqual(parsed, {
    type: 'sidecar',
    ip: '127.0.0.2',
    id: 'productpage-1.default',
    domain: 'default.svc.cluster.local',
  });
  assert.equal(nodeWorkloadName(parsed), 'productpage-1');
  assert.equal(
    parseNodeId(formatNodeId({ type: 'router', ip: '::1', name: 'gw', namespace: 'x' })).type,
    'router',
  );
});

test('a name that is not a node id is its own id part', () => {
  assert.deepEqual(parseNodeId('reviews-v1'), { type: '', ip: '', id: 'reviews-v1', domain: '' });
});
