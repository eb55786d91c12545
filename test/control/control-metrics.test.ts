// The control plane's monitoring endpoint (istiod's :15014 /metrics) as a
// scraper sees it over a real socket: a real ADS stream connects (pilot_xds),
// gets pushes (pilot_xds_pushes), NACKs one (pilot_total_xds_rejects); a
// malformed CSR to the CA counts as received and refused
// (citadel_server_csr_*); the stream's end drops pilot_xds back to 0.
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { startControlPlane } from '../../src/control/index.js';
import { parsePrometheusText } from '../../src/dashboard/prometheus-text.js';
import { initCaDirectory, loadCaDirectory } from '../../src/identity/index.js';
import { silentLogger } from '../../src/logging/index.js';
import { objectToStruct, TYPE_URLS } from '../../src/xds/index.js';
import { adsClientConstructor } from '../../src/xds/protos.js';
import { tempDir, waitFor } from '../helpers/index.js';

const MESH = `apiVersion: v1
kind: Service
metadata: { name: web, namespace: foo }
spec: { selector: { app: web }, ports: [{ name: http, port: 8080 }] }
---
apiVersion: palisade.dev/v1alpha1
kind: Workload
metadata: { name: web, namespace: foo }
spec: { serviceAccount: web, labels: { app: web }, command: node, ports: [{ name: http, port: 8080 }] }
`;

async function scrape(url: string): Promise<{
  text: string;
  value: (name: string, labels?: Record<string, string>) => number | undefined;
}> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const samples = parsePrometheusText(text);
  return {
    text,
    value: (name, labels = {}) =>
      samples.find(
        (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
      )?.value,
  };
}

test(
  'control plane /metrics: pilot_xds, pushes, NACKs, push time, CSRs',
  { timeout: 60_000 },
  async (t) => {
    const dir = tempDir();
    t.after(dir.cleanup);
    const configDir = join(dir.path, 'config');
    mkdirSync(configDir);
    writeFileSync(join(configDir, 'mesh.yaml'), MESH);
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
      monitoringPort: 0,
    });
    t.after(() => plane.close());
    const url = plane.monitoringUrl ?? assert.fail('no monitoring URL');
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);

    const idle = await scrape(url);
    assert.equal(idle.value('pilot_xds'), 0, idle.text);
    assert.equal(idle.value('citadel_server_csr_count'), 0);
    assert.equal((await fetch(url.replace('/metrics', '/debug'))).status, 404);

    // A real ADS stream, authenticated as foo/web.
    const token = await ca.tokens.mint({ namespace: 'foo', serviceAccount: 'web' });
    const Client = adsClientConstructor();
    const client = new Client(
      `127.0.0.1:${String(plane.xdsPort)}`,
      grpc.credentials.createInsecure(),
    );
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${token}`);
    const call = (
      client as unknown as {
        StreamAggregatedResources(
          m: grpc.Metadata,
        ): grpc.ClientDuplexStream<
          object,
          { type_url: string; nonce: string; version_info: string }
        >;
      }
    ).StreamAggregatedResources(md);
    const responses: { type_url: string; nonce: string; version_info: string }[] = [];
    call.on('data', (r: { type_url: string; nonce: string; version_info: string }) =>
      responses.push(r),
    );
    call.on('error', () => undefined);
    t.after(() => {
      call.cancel();
      client.close();
    });
    const node = {
      id: 'sidecar~127.0.0.81~web-0.foo~foo.svc.cluster.local',
      metadata: objectToStruct({
        NAMESPACE: 'foo',
        SERVICE_ACCOUNT: 'web',
        WORKLOAD_NAME: 'web',
        APP_ADDRESS: '127.0.0.80',
      }),
    };
    call.write({ node, type_url: TYPE_URLS.listener, resource_names: [] });
    const lds = await waitFor(
      () => responses.find((r) => r.type_url === TYPE_URLS.listener),
      15_000,
    );

    const connected = await scrape(url);
    assert.equal(connected.value('pilot_xds', { type: 'sidecar' }), 1, connected.text);
    assert.ok((connected.value('pilot_xds_pushes', { type: 'lds' }) ?? 0) >= 1, connected.text);
    assert.equal(connected.value('pilot_total_xds_rejects', { type: 'lds' }), undefined);

    // NACK the listeners: counted under lds.
    call.write({
      node,
      type_url: TYPE_URLS.listener,
      resource_names: [],
      response_nonce: lds?.nonce,
      version_info: '',
      error_detail: { code: 3, message: 'unsupported field x' },
    });
    await waitFor(
      async () =>
        (await scrape(url)).value('pilot_total_xds_rejects', { type: 'lds' }) === 1
          ? true
          : undefined,
      15_000,
    );

    // A config change pushes: the push-time histogram counts it.
    writeFileSync(
      join(configDir, 'mesh.yaml'),
      MESH.replace('port: 8080 }] }\n---', 'port: 8081 }] }\n---'),
    );
    await waitFor(
      async () =>
        ((await scrape(url)).value('pilot_xds_push_time_seconds_count') ?? 0) >= 1
          ? true
          : undefined,
      15_000,
    );
    const pushed = await scrape(url);
    assert.equal(
      pushed.value('pilot_xds_push_time_seconds_bucket', { le: '+Inf' }),
      pushed.value('pilot_xds_push_time_seconds_count'),
    );

    // A malformed CSR to the CA: received and refused.
    const caUrl = new URL(plane.caUrl);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: caUrl.hostname,
          port: caUrl.port,
          path: '/v1/sign',
          method: 'POST',
          ca: ca.trustBundle.toPem(),
          checkServerIdentity: () => undefined, // the CA's SPIFFE identity is ca-server.test's concern
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(
        JSON.stringify({
          csr: '-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----\n',
        }),
      );
    });
    assert.ok(status >= 400, String(status));
    const csr = await scrape(url);
    assert.equal(csr.value('citadel_server_csr_count'), 1, csr.text);
    assert.equal(csr.value('citadel_server_success_cert_issue_count'), 0);
    assert.equal(
      csr.value('citadel_server_csr_sign_error_count', { error: 'PAL_ERR_CSR_MALFORMED' }),
      1,
      csr.text,
    );

    // The stream ends: no connected proxies.
    call.cancel();
    await waitFor(
      async () => ((await scrape(url)).value('pilot_xds') === 0 ? true : undefined),
      15_000,
    );
  },
);
