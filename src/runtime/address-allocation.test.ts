import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { isPalisadeError } from '../errors/index.js';
import { allocateAddresses, assertPortFree } from './address-allocation.js';

test('every replica of every workload gets a distinct, stable loopback address', () => {
  const placed = allocateAddresses([
    { name: 'reviews-v1', replicas: 2 },
    { name: 'details-v1', replicas: 1 },
  ]);
  assert.deepEqual(
    placed.map((p) => [p.instance, p.address]),
    [
      ['details-v1-0', '127.10.1.1'],
      ['reviews-v1-0', '127.10.2.1'],
      ['reviews-v1-1', '127.10.2.2'],
    ],
  );
  assert.equal(new Set(placed.map((p) => p.address)).size, placed.length);
});

test('a mesh beyond the address plan is refused with a reason', () => {
  assert.throws(
    () => allocateAddresses([{ name: 'big', replicas: 255 }]),
    (e: unknown) =>
      isPalisadeError(e) && e.code === 'PAL_ERR_RUNTIME_ADDRESS_SPACE' && e.message.includes('big'),
  );
  assert.throws(
    () =>
      allocateAddresses([
        { name: 'a', replicas: 1 },
        { name: 'a', replicas: 1 },
      ]),
    /listed twice/,
  );
});

test('allocated addresses can be bound on this host (127/8 routes to lo)', async () => {
  const [first] = allocateAddresses([{ name: 'probe', replicas: 1 }]);
  assert.ok(first);
  await assertPortFree(first.address, 0, 'probe-0');
});

test('a taken port is reported with the port, address and process', async (t) => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.10.250.1', port: 0 }, resolve));
  t.after(() => server.close());
  const addr = server.address();
  assert.ok(addr !== null && typeof addr === 'object');
  await assert.rejects(
    assertPortFree('127.10.250.1', addr.port, 'details-v1-0'),
    (e: unknown) =>
      isPalisadeError(e) &&
      e.code === 'PAL_ERR_RUNTIME_PORT_TAKEN' &&
      e.message.includes(String(addr.port)) &&
      e.message.includes('127.10.250.1') &&
      e.message.includes('details-v1-0'),
  );
});
