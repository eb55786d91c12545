// The ADS protocol as an independent client sees it: raw DiscoveryRequests over
// a grpc-js stream to a control plane started in-process on a temp config dir.
// ACK, NACK (recorded; the old config keeps serving), stale nonces ignored, a
// subscribed resource that appears later is pushed, a change reaches only the
// streams it affects, reconnect gets the current state, and an unauthenticated
// or mismatched node gets nothing.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { callDebug, startControlPlane, type SyncStatusReply } from '../../src/control/index.js';
import { initCaDirectory, loadCaDirectory } from '../../src/identity/index.js';
import { silentLogger } from '../../src/logging/index.js';
import { objectToStruct, TYPE_URLS } from '../../src/xds/index.js';
import { adsClientConstructor } from '../../src/xds/protos.js';
import { tempDir, waitFor } from '../helpers/index.js';

interface Response {
  version_info: string;
  type_url: string;
  nonce: string;
  resources?: { name?: string; cluster_name?: string }[];
}

const mesh = (extra = ''): string => `apiVersion: v1
kind: Service
metadata: { name: web, namespace: foo }
spec: { selector: { app: web }, ports: [{ name: http, port: 8080 }] }
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: web, namespace: foo }
spec: { serviceAccount: web, labels: { app: web }, command: node, ports: [{ name: http, port: 8080 }] }
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: api, namespace: bar }
spec: { serviceAccount: api, labels: { app: api }, command: node, ports: [{ name: http, port: 9090 }] }
${extra}`;

/** A raw ADS stream: send requests, await responses by type. */
function openStream(
  address: string,
  token: string | undefined,
  node: { id: string; metadata: Record<string, unknown> },
) {
  const Client = adsClientConstructor();
  const client = new Client(address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
  const call = (
    client as unknown as {
      StreamAggregatedResources(m: grpc.Metadata): grpc.ClientDuplexStream<object, Response>;
    }
  ).StreamAggregatedResources(metadata);
  const responses: Response[] = [];
  let status: grpc.StatusObject | undefined;
  call.on('data', (r: Response) => responses.push(r));
  call.on('status', (s: grpc.StatusObject) => {
    status = s;
  });
  call.on('error', () => undefined);
  const send = (
    typeUrl: string,
    names: string[] = [],
    nonce = '',
    version = '',
    error?: string,
  ): void => {
    call.write({
      node: { id: node.id, metadata: objectToStruct(node.metadata) },
      type_url: typeUrl,
      resource_names: names,
      response_nonce: nonce,
      version_info: version,
      ...(error === undefined ? {} : { error_detail: { code: 3, message: error } }),
    });
  };
  return {
    responses,
    status: () => status,
    send,
    of: (typeUrl: string) => responses.filter((r) => r.type_url === typeUrl),
    close: () => {
      call.cancel();
      client.close();
    },
  };
}

test(
  'ADS: ACK, NACK, stale nonce, late resources, targeted pushes, reconnect, authentication',
  { timeout: 60_000 },
  async (t) => {
    const dir = tempDir();
    t.after(dir.cleanup);
    const configDir = join(dir.path, 'config');
    mkdirSync(configDir);
    writeFileSync(join(configDir, 'mesh.yaml'), mesh());
    await initCaDirectory(join(dir.path, 'ca'));
    const ca = await loadCaDirectory(join(dir.path, 'ca'));
    const plane = await startControlPlane({
      configDir,
      ca,
      logger: silentLogger(),
      host: '127.0.0.1',
      port: 0,
      caPort: 0,
      debounceMs: 50,
      xdsPlaintext: true,
    });
    t.after(() => plane.close());
    const address = `127.0.0.1:${String(plane.xdsPort)}`;
    const operator = { transport: 'plaintext' as const, token: plane.debugToken };
    const webToken = await ca.tokens.mint({ namespace: 'foo', serviceAccount: 'web' });
    const apiToken = await ca.tokens.mint({ namespace: 'bar', serviceAccount: 'api' });
    // Same namespace as web, another service account.
    const otherToken = await ca.tokens.mint({ namespace: 'foo', serviceAccount: 'other' });
    const webNode = {
      id: 'sidecar~127.0.0.81~web-0.foo~foo.svc.cluster.local',
      metadata: {
        NAMESPACE: 'foo',
        SERVICE_ACCOUNT: 'web',
        WORKLOAD_NAME: 'web',
        APP_ADDRESS: '127.0.0.80',
      },
    };
    const apiNode = {
      id: 'sidecar~127.0.0.83~api-0.bar~bar.svc.cluster.local',
      metadata: {
        NAMESPACE: 'bar',
        SERVICE_ACCOUNT: 'api',
        WORKLOAD_NAME: 'api',
        APP_ADDRESS: '127.0.0.82',
      },
    };

    // Unauthenticated, forged, and other-identity streams get nothing.
    for (const [token, node, why] of [
      [undefined, webNode, /missing bearer/],
      ['not.a.jwt', webNode, /token rejected/],
      [apiToken, webNode, /claims foo\/web but the token is for bar\/api/],
      // A token of another service account in the node's namespace is not the node's.
      [otherToken, webNode, /claims foo\/web but the token is for foo\/other/],
      [
        otherToken,
        { ...webNode, metadata: { ...webNode.metadata, SERVICE_ACCOUNT: 'other' } },
        /Workload foo\/web runs as web, not other/,
      ],
      [
        webToken,
        { ...webNode, metadata: { ...webNode.metadata, WORKLOAD_NAME: 'ghost' } },
        /no Workload foo\/ghost/,
      ],
    ] as const) {
      const s = openStream(address, token, node);
      s.send(TYPE_URLS.cluster);
      s.send(TYPE_URLS.listener);
      await waitFor(() => s.status(), 5000);
      assert.equal(s.status()?.code, grpc.status.UNAUTHENTICATED);
      assert.match(s.status()?.details ?? '', why);
      assert.equal(s.responses.length, 0, 'no resources before authentication');
      s.close();
    }

    const web = openStream(address, webToken, webNode);
    t.after(web.close);
    web.send(TYPE_URLS.cluster);
    web.send(TYPE_URLS.listener);
    await waitFor(() =>
      web.of(TYPE_URLS.cluster).length > 0 && web.of(TYPE_URLS.listener).length > 0
        ? true
        : undefined,
    );
    const cds = web.of(TYPE_URLS.cluster)[0];
    assert.ok(cds);
    assert.ok(cds.resources?.some((r) => r.name === 'outbound|8080||web.foo.svc.cluster.local'));
    assert.ok(web.of(TYPE_URLS.listener)[0]?.resources?.some((r) => r.name === 'inbound|8080'));

    // ACK: nothing is resent.
    web.send(TYPE_URLS.cluster, [], cds.nonce, cds.version_info);
    // Subscribe by name to an endpoint that exists and to a route config that does not exist yet.
    web.send(TYPE_URLS.endpoint, ['outbound|8080||web.foo.svc.cluster.local']);
    web.send(TYPE_URLS.route, ['9090']);
    await waitFor(() => (web.of(TYPE_URLS.endpoint).length > 0 ? true : undefined));
    const rdsBefore = web.of(TYPE_URLS.route);
    assert.deepEqual(
      rdsBefore.at(-1)?.resources ?? [],
      [],
      'a missing route config is answered empty and remembered',
    );

    // NACK: recorded with the reason; the stream stays up.
    const lds = web.of(TYPE_URLS.listener)[0];
    assert.ok(lds);
    web.send(TYPE_URLS.listener, [], lds.nonce, '', 'unsupported field x');
    const status = await waitFor(async () => {
      const s = await callDebug<SyncStatusReply>(address, 'SyncStatus', {}, operator);
      const p = s.proxies.find((x) => x.id === webNode.id);
      return p?.types['listener']?.nack === 'unsupported field x' ? p : undefined;
    });
    assert.ok(status);
    assert.equal(status.types['cluster']?.acked, cds.version_info);

    // A stale nonce is ignored: no response, no state change.
    const count = web.responses.length;
    web.send(TYPE_URLS.cluster, [], 'stale-nonce', 'bogus');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(web.responses.length, count);

    // A second proxy; then a change that only affects routes on port 9090 (the api service).
    const api = openStream(address, apiToken, apiNode);
    t.after(api.close);
    api.send(TYPE_URLS.cluster);
    api.send(TYPE_URLS.listener);
    await waitFor(() => (api.of(TYPE_URLS.listener).length > 0 ? true : undefined));
    const webListenersBefore = web.of(TYPE_URLS.listener).length;
    const apiListenersBefore = api.of(TYPE_URLS.listener).length;
    writeFileSync(
      join(configDir, 'mesh.yaml'),
      mesh(`---
apiVersion: v1
kind: Service
metadata: { name: api, namespace: bar }
spec: { selector: { app: api }, ports: [{ name: http, port: 9090 }] }
`),
    );
    // The route config web subscribed to before it existed is pushed when it appears.
    const pushed = await waitFor(
      () =>
        web.of(TYPE_URLS.route).find((r) => r.resources?.some((x) => x.name === '9090') === true),
      10_000,
    );
    assert.ok(pushed);
    // web's outbound listener gains a chain for 9090 (pushed); api's own resources also change.
    await waitFor(() =>
      web.of(TYPE_URLS.listener).length > webListenersBefore ? true : undefined,
    );
    // api's outbound listener gains a chain for the new port 9090 too.
    await waitFor(() =>
      api.of(TYPE_URLS.listener).length > apiListenersBefore ? true : undefined,
    );

    // A change affecting nobody's resources pushes nothing.
    const before = web.responses.length + api.responses.length;
    writeFileSync(
      join(configDir, 'unrelated.yaml'),
      'apiVersion: v1\nkind: ServiceAccount\nmetadata: { name: unused, namespace: other }\n',
    );
    await waitFor(async () =>
      (await callDebug<SyncStatusReply>(address, 'SyncStatus', {}, operator)).configVersion >= 3
        ? true
        : undefined,
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(
      web.responses.length + api.responses.length,
      before,
      'no push when no stream changed',
    );

    // Reconnect: a new stream gets the current state at once.
    web.close();
    const again = openStream(address, webToken, webNode);
    t.after(again.close);
    again.send(TYPE_URLS.cluster);
    await waitFor(() => (again.of(TYPE_URLS.cluster).length > 0 ? true : undefined));
    assert.ok(
      again
        .of(TYPE_URLS.cluster)[0]
        ?.resources?.some((r) => r.name === 'outbound|9090||api.bar.svc.cluster.local'),
    );
  },
);
