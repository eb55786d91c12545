/**
 * What the TCP peer exchange (src/proxy/tcp-peer-exchange.ts) adds to a
 * mesh TCP connection: a loopback TLS 1.3 connection, handshake then one
 * small echo round trip, without the exchange (ALPN http/1.1) and with it
 * (ALPN istio-peer-exchange: each end writes its preamble with a real node
 * metadata payload and reads the other's before the app bytes). Both run in
 * the same process and loop, interleaved per round; the ratio is what counts.
 *
 * Run: node dist/bench/tcp-exchange.bench.js
 */
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { createTlsCa, issueServerCertificate } from '../src/identity/index.js';
import {
  encodePreamble,
  TCP_PEER_EXCHANGE_ALPN,
  readPreamble,
} from '../src/proxy/tcp-peer-exchange.js';
import { createPeerMetadataExchange, PEER_METADATA_HEADER } from '../src/telemetry/index.js';

const CONNECTIONS = 200;
const ROUNDS = 5;

const exchange = createPeerMetadataExchange(
  'sidecar~127.0.0.1~reviews-v2-0.default~default.svc.cluster.local',
  {
    NAME: 'reviews-v2-0',
    NAMESPACE: 'default',
    WORKLOAD_NAME: 'reviews-v2',
    SERVICE_ACCOUNT: 'bookinfo-reviews',
    CLUSTER_ID: 'Kubernetes',
    LABELS: { app: 'reviews', version: 'v2', 'service.istio.io/canonical-name': 'reviews' },
  },
);
const payload = exchange.headers[PEER_METADATA_HEADER] ?? '';

const ca = await createTlsCa('bench CA');
const leaf = await issueServerCertificate(ca, { dnsNames: ['localhost'], ips: ['127.0.0.1'] });
const server = tls.createServer({
  cert: leaf.certPem,
  key: leaf.keyPem,
  ALPNProtocols: [TCP_PEER_EXCHANGE_ALPN, 'http/1.1'],
});
server.on('secureConnection', (s: tls.TLSSocket) => {
  s.on('error', () => s.destroy());
  if (s.alpnProtocol !== TCP_PEER_EXCHANGE_ALPN) {
    s.pipe(s);
    return;
  }
  s.write(encodePreamble(payload));
  void readPreamble(s).then((got) => {
    if (got instanceof Error) s.destroy();
    else s.pipe(s);
  });
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as AddressInfo).port;

/** One connection: handshake, the exchange when `withExchange`, one echoed byte. */
function once(withExchange: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      ca: ca.certPem,
      ALPNProtocols: withExchange ? [TCP_PEER_EXCHANGE_ALPN, 'http/1.1'] : ['http/1.1'],
    });
    s.on('error', reject);
    s.once('secureConnect', () => {
      const echo = (): void => {
        s.once('data', () => {
          s.destroy();
          resolve();
        });
        s.resume();
        s.write('x');
      };
      if (!withExchange) {
        echo();
        return;
      }
      s.write(encodePreamble(payload));
      void readPreamble(s).then((got) => {
        if (got instanceof Error) reject(got);
        else echo();
      });
    });
  });
}

async function run(withExchange: boolean): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < CONNECTIONS; i++) await once(withExchange);
  return ((performance.now() - start) * 1000) / CONNECTIONS;
}

await run(false);
await run(true);
const plain: number[] = [];
const exchanged: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  plain.push(await run(false));
  exchanged.push(await run(true));
}
const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const p = median(plain);
const e = median(exchanged);
console.log(`preamble: ${String(encodePreamble(payload).length)} bytes each way`);
console.log(`TLS connect + 1-byte echo, no exchange:   ${p.toFixed(0)} µs/connection`);
console.log(`TLS connect + exchange + 1-byte echo:     ${e.toFixed(0)} µs/connection`);
console.log(`exchange cost: +${(e - p).toFixed(0)} µs/connection (${(e / p).toFixed(2)}x)`);
server.close();
