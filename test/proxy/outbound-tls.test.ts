// Upstream mTLS and secure naming through real `palisade proxy` processes fed by
// the test ADS server: certificates come from `palisade ca init/issue/token`,
// the proxy gets its own SVID from `palisade ca serve` with its token (SDS
// `default`, key generated in the proxy), the trust bundle arrives as the SDS
// secret `ROOTCA`. The upstreams are node:https servers requiring a client
// certificate from the mesh root. An allowed server identity answers 200 and
// sees the proxy's SPIFFE ID; a server with another identity is refused with
// 503 UF (secure naming); a proxy without a certificate refuses too and never
// falls back to plaintext.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { TLSSocket } from 'node:tls';
import { EXTENSION_TYPE_URLS, TYPE_URLS } from '../../src/xds/index.js';
import { runPalisade, spawnPalisade, tempDir, waitFor } from '../helpers/index.js';
import {
  clusterName,
  curl,
  feed,
  outboundResources,
  startProxyProcess,
  startTestAdsServer,
  virtualHost,
} from './ads-server.js';

const CLIENT_ID = 'spiffe://cluster.local/ns/ns/sa/a';
const SERVER_ID = 'spiffe://cluster.local/ns/ns/sa/b';
const IMPOSTOR_ID = 'spiffe://cluster.local/ns/ns/sa/impostor';
const SECURE = clusterName('secure');
const IMPOSTOR = clusterName('impostor');

/** Istio's ISTIO_MUTUAL UpstreamTlsContext: SDS default + ROOTCA, secure naming by SAN. */
function istioMutual(host: string, allowed: string): Record<string, unknown> {
  return {
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': EXTENSION_TYPE_URLS.upstreamTls,
        sni: `outbound_.80_._.${host}.ns.svc.cluster.local`,
        common_tls_context: {
          tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {} } }],
          combined_validation_context: {
            default_validation_context: { match_subject_alt_names: [{ exact: allowed }] },
            validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {} } },
          },
        },
      },
    },
  };
}

async function startTlsServer(
  dir: string,
  name: string,
  rootPem: string,
): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const server = https.createServer(
    {
      cert: readFileSync(join(dir, `${name}-cert.pem`)),
      key: readFileSync(join(dir, `${name}-key.pem`)),
      ca: rootPem,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const socket = req.socket;
      const tls = socket instanceof TLSSocket ? socket : undefined;
      const servername = (tls as { servername?: unknown } | undefined)?.servername;
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          server: name,
          url: req.url,
          peer: tls?.getPeerCertificate().subjectaltname ?? null,
          sni: typeof servername === 'string' ? servername : null,
        }),
      );
    },
  );
  server.on('connection', () => (connections += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => connections,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

test('upstream mTLS with the SVID from the CA, secure naming, no plaintext fallback', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const caDir = join(dir.path, 'ca');
  const init = await runPalisade(['ca', 'init', '--dir', caDir]);
  assert.equal(init.code, 0, init.stderr);
  const rootPem = readFileSync(join(caDir, 'root-cert.pem'), 'utf8');
  for (const [name, id] of [
    ['server', SERVER_ID],
    ['impostor', IMPOSTOR_ID],
  ] as const) {
    const issued = await runPalisade([
      'ca',
      'issue',
      '--dir',
      caDir,
      '--spiffe-id',
      id,
      '--out',
      join(dir.path, name),
    ]);
    assert.equal(issued.code, 0, issued.stderr);
  }
  const token = await runPalisade([
    'ca',
    'token',
    '--dir',
    caDir,
    '--namespace',
    'ns',
    '--service-account',
    'a',
  ]);
  assert.equal(token.code, 0, token.stderr);
  const tokenFile = join(dir.path, 'token');
  writeFileSync(tokenFile, token.stdout.trim());
  const ca = await spawnPalisade(['ca', 'serve', '--dir', caDir, '--listen', '127.0.0.1:0'], {
    ready: /CA listening on (https:\/\/\S+)/,
  });
  t.after(() => ca.stop());

  const server = await startTlsServer(dir.path, 'server', rootPem);
  const impostor = await startTlsServer(dir.path, 'impostor', rootPem);
  t.after(() => server.close());
  t.after(() => impostor.close());

  const ads = await startTestAdsServer(t);
  feed(
    ads,
    outboundResources(
      [
        {
          name: SECURE,
          endpoints: [{ port: server.port }],
          extra: istioMutual('secure', SERVER_ID),
        },
        {
          // Serves with a valid mesh certificate, but not as an identity allowed for the service.
          name: IMPOSTOR,
          endpoints: [{ port: impostor.port }],
          extra: istioMutual('impostor', SERVER_ID),
        },
      ],
      [
        virtualHost('secure', [{ match: { prefix: '/' }, route: { cluster: SECURE } }]),
        virtualHost('impostor', [{ match: { prefix: '/' }, route: { cluster: IMPOSTOR } }]),
      ],
    ),
    'v1',
  );
  ads.set(TYPE_URLS.secret, 'v1', [
    {
      '@type': TYPE_URLS.secret,
      name: 'ROOTCA',
      validation_context: { trusted_ca: { inline_string: rootPem } },
    },
  ]);

  const proxy = await startProxyProcess(ads.port, [
    '--token-file',
    tokenFile,
    '--ca-url',
    ca.match[1] ?? '',
    '--ca-root-cert',
    join(caDir, 'root-cert.pem'),
  ]);
  t.after(() => proxy.stop());

  await t.test('allowed server identity: 200, the server sees the client SPIFFE ID', async () => {
    // The SVID arrives from the CA asynchronously; until then requests are refused (503 UF).
    const r = await waitFor(async () => {
      const res = await curl([...proxy.via, 'http://secure/hello']);
      return res.status === 200 ? res : undefined;
    }, 20_000).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${proxy.output()}`);
    });
    const seen = JSON.parse(r?.body ?? '') as {
      server: string;
      url: string;
      peer: string;
      sni: string;
    };
    assert.equal(seen.server, 'server');
    assert.equal(seen.url, '/hello');
    assert.equal(seen.peer, `URI:${CLIENT_ID}`);
    assert.equal(seen.sni, 'outbound_.80_._.secure.ns.svc.cluster.local');
  });

  await t.test('another SPIFFE ID fails secure naming: 503 UF', async () => {
    const r = await curl([...proxy.via, 'http://impostor/hello']);
    assert.equal(r.status, 503);
    assert.equal(r.headers['x-palisade-response-flags'], 'UF');
    assert.match(r.body, /secure naming/);
    assert.match(r.body, new RegExp(IMPOSTOR_ID));
    await waitFor(() => /secure naming check failed/.test(proxy.output()), 5000);
  });

  await t.test(
    'a proxy without its certificate refuses: 503 UF, no plaintext attempt',
    async () => {
      const bare = await startProxyProcess(ads.port);
      t.after(() => bare.stop());
      await waitFor(async () => {
        const res = await curl([...bare.via, 'http://secure/x']);
        return res.status !== 404 ? true : undefined;
      }, 20_000);
      const before = server.connections();
      const r = await curl([...bare.via, 'http://secure/again']);
      assert.equal(r.status, 503);
      assert.equal(r.headers['x-palisade-response-flags'], 'UF');
      assert.match(r.body, /no certificate for SDS secret "default"/);
      assert.equal(server.connections(), before, 'no connection was made to the upstream');
    },
  );
});
