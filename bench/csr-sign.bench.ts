/**
 * CSR signatures per second on one core: the whole CA path for one request
 * (parse the PEM CSR, verify its signature, check its single URI SAN against
 * the entitled identity, build and sign the X509-SVID) beside a reference in
 * the same run: raw WebCrypto ECDSA P-256 sign() of a certificate-sized
 * message, the one operation issuance cannot avoid. The ratio says how much
 * Palisade's X.509 work costs on top of the signature itself.
 *
 * Run: node --expose-gc dist/bench/csr-sign.bench.js
 */
import { createPublicKey, generateKeyPairSync, sign, verify, webcrypto } from 'node:crypto';
import { createCsr, createRootCa, signCsr } from '../src/identity/index.js';

const DURATION_MS = Number(process.env['BENCH_DURATION_MS'] ?? 5000);
const ID = 'spiffe://cluster.local/ns/default/sa/reviews';

async function rate(label: string, fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 50; i++) await fn(); // warm-up
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < DURATION_MS) {
    await fn();
    n += 1;
  }
  const perSec = (n * 1000) / (performance.now() - start);
  console.log(`${label.padEnd(44)} ${perSec.toFixed(0).padStart(8)} /s`);
  return perSec;
}

const ca = await createRootCa({ trustDomain: 'cluster.local' });
// A pool of distinct CSRs, as distinct proxies would send.
const csrs = await Promise.all(Array.from({ length: 64 }, () => createCsr(ID)));
let i = 0;
const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
  'sign',
]);
const message = new Uint8Array(400).fill(7);

const reference = await rate('reference: WebCrypto ECDSA P-256 sign()', () =>
  webcrypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, keys.privateKey, message),
);
// The two public-key operations issuance cannot avoid, synchronously on this
// thread: verify the CSR's signature (parsing its SPKI) and sign the SVID.
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const spki = ec.publicKey.export({ type: 'spki', format: 'der' });
const sig = sign('sha256', message, ec.privateKey);
const floor = await rate('reference: node:crypto verify + sign, 1 thread', () => {
  const ok = verify(
    'sha256',
    message,
    createPublicKey({ key: spki, format: 'der', type: 'spki' }),
    sig,
  );
  return Promise.resolve(ok && sign('sha256', message, ec.privateKey));
});
const palisade = await rate('palisade: parse + verify CSR + issue SVID', () => {
  const csr = csrs[i++ % csrs.length];
  if (csr === undefined) throw new Error('no CSR');
  return signCsr(ca, csr.csrPem, { entitledSpiffeId: ID });
});
console.log(`ratio palisade / WebCrypto sign: ${(palisade / reference).toFixed(3)}`);
console.log(
  `ratio palisade / crypto floor:  ${(palisade / floor).toFixed(3)} (goal: >= 2,000 CSRs/s on one core)`,
);
