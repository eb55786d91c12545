/**
 * Peer metadata exchange: a claim is accepted only for the identity mTLS
 * proved (inbound) or secure naming allows (outbound); anything malformed,
 * oversized or forged is ignored, never thrown (property-tested: the
 * header comes from the network).
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  createPeerMetadataExchange,
  decodePeerMetadata,
  encodePeerMetadata,
  MAX_PEER_METADATA_BYTES,
  PEER_METADATA_HEADER,
  PEER_METADATA_ID_HEADER,
} from './peer-metadata.js';

const PRODUCTPAGE = {
  NAME: 'productpage-v1-0',
  NAMESPACE: 'default',
  WORKLOAD_NAME: 'productpage-v1',
  SERVICE_ACCOUNT: 'bookinfo-productpage',
  CLUSTER_ID: 'Kubernetes',
  LABELS: { app: 'productpage', version: 'v1' },
};
const ID = 'sidecar~127.10.2.1~productpage-v1-0.default~default.svc.cluster.local';

test('a client claim is accepted only from the SPIFFE id it names', () => {
  const me = createPeerMetadataExchange(ID, PRODUCTPAGE);
  assert.equal(me.headers[PEER_METADATA_ID_HEADER], ID);
  const headers = { ...me.headers };
  const proved = 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage';
  assert.deepEqual(me.fromClient(headers, proved), {
    workload: 'productpage-v1',
    namespace: 'default',
    principal: proved,
    app: 'productpage',
    version: 'v1',
    cluster: 'Kubernetes',
    canonicalService: undefined,
    canonicalRevision: undefined,
  });
  // A trust-domain alias proves the same namespace and service account.
  assert.equal(
    me.fromClient(headers, 'spiffe://old.td/ns/default/sa/bookinfo-productpage')?.workload,
    'productpage-v1',
  );
  assert.equal(me.fromClient(headers, null), undefined, 'plaintext: never');
  assert.equal(
    me.fromClient(headers, 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews'),
    undefined,
    'reviews claiming to be productpage',
  );
  assert.equal(
    me.fromClient(headers, 'spiffe://cluster.local/ns/other/sa/bookinfo-productpage'),
    undefined,
  );
  // The same value again (as a new string, as each request parses it), after another
  // value: the same verified peer object, and still only for the identity it names.
  const first = me.fromClient(headers, proved);
  const other = createPeerMetadataExchange(ID, { ...PRODUCTPAGE, SERVICE_ACCOUNT: 'x' }).headers;
  assert.equal(me.fromClient({ ...other }, proved), undefined, 'a claim for sa/x');
  const again = { [PEER_METADATA_HEADER]: `${String(headers[PEER_METADATA_HEADER])} `.trim() };
  assert.equal(me.fromClient(again, proved), first);
  assert.equal(
    me.fromClient(again, 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews'),
    undefined,
  );
});

test('a server claim is accepted only for an identity secure naming allows', () => {
  const me = createPeerMetadataExchange(ID, PRODUCTPAGE);
  const headers = { ...me.headers };
  const exact = [{ exact: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage' }];
  assert.equal(me.fromServer(headers, exact)?.principal, exact[0]?.exact);
  assert.equal(
    me.fromServer(headers, [{ prefix: 'spiffe://cluster.local/ns/default/' }])?.principal,
    'spiffe://cluster.local/ns/default/sa/bookinfo-productpage',
  );
  assert.equal(
    me.fromServer(headers, [{ exact: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews' }]),
    undefined,
  );
  assert.equal(me.fromServer(headers, []), undefined, 'no SANs to check against: ignored');
  // Asked again with the same lists (a cluster's SANs): the same answers.
  const reviews = [{ exact: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews' }];
  const fresh = () => ({
    [PEER_METADATA_HEADER]: `${String(headers[PEER_METADATA_HEADER])} `.trim(),
  });
  for (let i = 0; i < 3; i += 1) {
    assert.equal(me.fromServer(fresh(), reviews), undefined);
    assert.equal(me.fromServer(fresh(), exact)?.principal, exact[0]?.exact);
  }
  assert.equal(me.fromServer(fresh(), exact), me.fromServer(fresh(), exact));
});

test('strip removes both headers; put sets them', () => {
  const me = createPeerMetadataExchange(ID, PRODUCTPAGE);
  const h: Record<string, unknown> = { ...me.headers, host: 'x' };
  me.strip(h);
  assert.deepEqual(h, { host: 'x' });
  // put sets exactly the two headers strip removes, over any value already there.
  const put: Record<string, unknown> = { host: 'y', [PEER_METADATA_HEADER]: 'forged' };
  me.put(put);
  assert.deepEqual(put, { host: 'y', ...me.headers });
  me.strip(put);
  me.strip(put);
  assert.deepEqual(put, { host: 'y' });
});

test('decode rejects what is not a bounded base64 JSON object', () => {
  assert.deepEqual(decodePeerMetadata(encodePeerMetadata(PRODUCTPAGE)), PRODUCTPAGE);
  for (const bad of [
    undefined,
    '',
    'not base64!',
    Buffer.from('[1,2]').toString('base64'),
    Buffer.from('"x"').toString('base64'),
    Buffer.from('{').toString('base64'),
    'A'.repeat(MAX_PEER_METADATA_BYTES + 4),
    ['a', 'b'],
  ])
    assert.equal(decodePeerMetadata(bad), undefined, String(bad));
  const odd = decodePeerMetadata(
    Buffer.from(JSON.stringify({ NAMESPACE: 7, LABELS: { app: 1, version: 'v2' } })).toString(
      'base64',
    ),
  );
  assert.equal(odd?.NAMESPACE, undefined);
  assert.deepEqual(odd?.LABELS, { version: 'v2' });
});

test('property: any header value decodes or is ignored, never throws', () => {
  const me = createPeerMetadataExchange(ID, PRODUCTPAGE);
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string(),
        fc.base64String(),
        fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v)).toString('base64')),
      ),
      (value) => {
        const h = { [PEER_METADATA_HEADER]: value };
        me.fromClient(h, 'spiffe://cluster.local/ns/default/sa/x');
        me.fromServer(h, [{ prefix: 'spiffe://cluster.local/' }]);
      },
    ),
  );
});
