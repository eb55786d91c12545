// The seed-004 walkthrough against a running local mesh: `palisade up -f
// examples/bookinfo` (control plane, six Bookinfo workloads with sidecars,
// ingress gateway), then each step with curl/openssl as the client and
// `palisade apply`/`delete` to change the mesh. Steps share one mesh and run
// in order, like the walkthrough. It runs in loopback mode and, as root, again
// with every workload in its own network namespace (`--isolation netns`).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { issueCert, makeCa } from '../helpers/openssl-pki.js';
import {
  freePort,
  freePortRun,
  REPO_ROOT,
  runPalisade,
  runProcess,
  spawnPalisade,
  tempDir,
} from '../helpers/index.js';
import { bookinfoLock } from '../helpers/tools.js';

const PRODUCTPAGE_SIDECAR = 'http://127.10.2.1:15001';
const ISSUER = 'testing@secure.istio.io';

/**
 * Isolation modes the walkthrough runs in: loopback everywhere; netns as well when root (CI runs
 * as root: issue 19's "passes in netns mode as well as loopback mode"), with this test's own pod
 * and service CIDRs. In netns mode the apps and sidecars are in pods: the test reaches the
 * ingress and pods at their pod IPs and calls from "inside a pod" with `palisade exec`.
 */
type Mode = 'loopback' | 'netns';
const MODES: Mode[] = process.getuid?.() === 0 ? ['loopback', 'netns'] : ['loopback'];
if (!MODES.includes('netns')) console.log('# netns run skipped: needs root (network namespaces)');

interface MeshJson {
  control: string;
  ingress: { ip: string; urls: string[] };
  pods: { name: string; podIP: string }[];
}

// The mesh binds fixed loopback addresses: one Bookinfo test at a time.
const lock = await bookinfoLock();
after(() => lock.release());

for (const mode of MODES)
  test(
    `seed-004 walkthrough on the local Bookinfo mesh (${mode})`,
    { timeout: 420_000 },
    async (t) => {
      const dir = tempDir('palisade-e2e-');
      t.after(dir.cleanup);
      const state = join(dir.path, 'state');
      const [controlPort, caPort, adminBase] = [
        await freePort(),
        await freePort(),
        // Admin ports below the ephemeral range (freePortRun says why).
        await freePortRun(32),
      ];
      const mesh = await spawnPalisade(
        [
          'up',
          '-f',
          'examples/bookinfo',
          '--isolation',
          mode,
          ...(mode === 'netns'
            ? [
                '--pod-cidr',
                '10.233.30.0/24',
                '--service-cidr',
                '10.233.98.0/24',
                '--no-prometheus',
              ]
            : []),
          '--state-dir',
          state,
          '--control-port',
          String(controlPort),
          '--ca-port',
          String(caPort),
          '--admin-base-port',
          String(adminBase),
        ],
        { ready: /Ctrl-C stops the mesh/, timeoutMs: 180_000, cwd: REPO_ROOT },
      );
      t.after(async () => {
        assert.equal(await mesh.stop(20_000), 0, 'palisade up exits 0 on SIGTERM');
      });
      const caFile = join(state, 'ingress-ca.pem');
      const output = mesh.output();
      const info = JSON.parse(readFileSync(join(state, 'mesh.json'), 'utf8')) as MeshJson;
      const podIp = (name: string): string =>
        info.pods.find((p) => p.name === name)?.podIP ?? assert.fail(`no pod ${name}`);
      // The ingress: 127.12.0.1 on loopback, the ingress gateway's pod IP in netns mode.
      const ingressIp = mode === 'loopback' ? '127.12.0.1' : podIp('istio-ingressgateway');
      const INGRESS = `https://${ingressIp}:8443`;
      const DETAILS_INBOUND = `http://${mode === 'loopback' ? '127.10.1.1' : podIp('details-v1-0')}:9080/details/0`;
      assert.match(output, new RegExp(`Ingress: ${INGRESS.replaceAll('.', '\\.')}/productpage`));
      if (mode === 'loopback')
        assert.match(output, /Metrics: http:\/\/127\.0\.0\.1:\d+\/stats\/prometheus/);
      else assert.match(output, /^Isolation: network namespaces/m);

      const curl = (
        args: string[],
        timeoutS = 10,
      ): Promise<{ code: number | null; stdout: string; stderr: string }> =>
        runProcess('curl', ['-sS', '--max-time', String(timeoutS), ...args], {
          timeoutMs: (timeoutS + 5) * 1000,
        });
      const page = async (cookie?: string, timeoutS = 10): Promise<string> => {
        const r = await curl(
          [
            '--cacert',
            caFile,
            ...(cookie === undefined ? [] : ['-b', cookie]),
            `${INGRESS}/productpage`,
          ],
          timeoutS,
        );
        assert.equal(r.code, 0, r.stderr);
        return r.stdout;
      };
      const servedBy = (html: string): string => /reviews-v[123]/.exec(html)?.[0] ?? 'none';
      const apply = async (file: string, verb: 'apply' | 'delete' = 'apply'): Promise<void> => {
        const r = await runPalisade([verb, '-f', file, '--state-dir', state], { cwd: REPO_ROOT });
        assert.equal(r.code, 0, `${verb} ${file}: ${r.stdout}${r.stderr}`);
      };
      const yaml = (name: string, text: string): string => {
        const file = join(dir.path, name);
        writeFileSync(file, text);
        return file;
      };

      await t.test(
        '1. Bookinfo through the ingress: all three reviews versions, details, stars',
        async () => {
          const seen = new Set<string>();
          for (let i = 0; i < 30 && seen.size < 3; i += 1) {
            const html = await page();
            assert.match(
              html,
              /<dt>ISBN-10:<\/dt><dd>1234567890<\/dd>/,
              'details rendered through productpage → details (mTLS)',
            );
            const version = servedBy(html);
            seen.add(version);
            if (version === 'reviews-v2') assert.match(html, /stars-black/);
            if (version === 'reviews-v3') assert.match(html, /stars-red/);
            if (version === 'reviews-v1') assert.doesNotMatch(html, /class="stars/);
          }
          assert.deepEqual([...seen].sort(), ['reviews-v1', 'reviews-v2', 'reviews-v3']);
        },
      );

      await t.test(
        '2. ingress TLS: the generated certificate verifies; a MUTUAL gateway refuses clients without a certificate',
        async () => {
          const verified = await curl([
            '--cacert',
            caFile,
            '-o',
            '/dev/null',
            '-w',
            '%{http_code} %{ssl_verify_result}',
            `${INGRESS}/productpage`,
          ]);
          assert.equal(verified.stdout, '200 0');
          const untrusted = await curl(['-o', '/dev/null', `${INGRESS}/productpage`]);
          assert.equal(untrusted.code, 60, 'curl without --cacert fails verification (exit 60)');
          // A MUTUAL server with the user's own CA (openssl), as in Istio's mutual TLS ingress task.
          await makeCa(dir.path, 'ca', 'example CA');
          await issueCert(
            dir.path,
            'ca',
            'server',
            'server.example.com',
            `subjectAltName=DNS:bookinfo.example.com,IP:${ingressIp}`,
          );
          await issueCert(
            dir.path,
            'ca',
            'client',
            'client.example.com',
            'extendedKeyUsage=clientAuth',
          );
          const pem = (f: string): string =>
            readFileSync(join(dir.path, f), 'utf8').replace(/\n/g, '\n      ');
          await apply(
            yaml(
              'mutual.yaml',
              `apiVersion: v1
kind: Secret
metadata: { name: mutual-credential, namespace: istio-system }
type: kubernetes.io/tls
stringData:
  tls.crt: |
      ${pem('server.crt')}
  tls.key: |
      ${pem('server.key')}
  ca.crt: |
      ${pem('ca.crt')}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: mutual-gateway, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 9443, name: https-mutual, protocol: HTTPS }
      tls: { mode: MUTUAL, credentialName: mutual-credential }
      hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: bookinfo-mutual, namespace: default }
spec:
  hosts: ["*"]
  gateways: [mutual-gateway]
  http:
    - match: [{ uri: { exact: /productpage } }]
      route: [{ destination: { host: productpage, port: { number: 9080 } } }]
`,
            ),
          );
          const url = `https://${ingressIp}:9443/productpage`;
          const without = await curl([
            '--cacert',
            join(dir.path, 'ca.crt'),
            '-o',
            '/dev/null',
            '-w',
            '%{http_code}',
            url,
          ]);
          assert.notEqual(without.code, 0, 'no client certificate: the handshake fails');
          const withCert = await curl([
            '--cacert',
            join(dir.path, 'ca.crt'),
            '--cert',
            join(dir.path, 'client.crt'),
            '--key',
            join(dir.path, 'client.key'),
            '-o',
            '/dev/null',
            '-w',
            '%{http_code}',
            url,
          ]);
          assert.equal(withCert.stdout, '200', withCert.stderr);
        },
      );

      await t.test(
        '3. STRICT mTLS: plaintext to a workload is refused; PERMISSIVE lets it through',
        async () => {
          const plain = await curl(['-o', '/dev/null', '-w', '%{http_code}', DETAILS_INBOUND]);
          assert.notEqual(plain.code, 0);
          assert.equal(plain.stdout, '000');
          const permissive = yaml(
            'permissive.yaml',
            'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: default, namespace: default }\nspec: { mtls: { mode: PERMISSIVE } }\n',
          );
          await apply(permissive);
          const through = await curl(['-w', '\n%{http_code}', DETAILS_INBOUND]);
          assert.match(through.stdout, /"ISBN-10":"1234567890"[\s\S]*\n200$/);
          await apply(permissive, 'delete');
          const again = await curl(['-o', '/dev/null', '-w', '%{http_code}', DETAILS_INBOUND]);
          assert.equal(again.stdout, '000', 'STRICT again after the namespace policy is deleted');
        },
      );

      const { publicKey, privateKey } = await generateKeyPair('RS256');
      const jwk = { ...(await exportJWK(publicKey)), kid: 'e2e', alg: 'RS256', use: 'sig' };
      const token = (claims: Record<string, unknown>): Promise<string> =>
        new SignJWT(claims)
          .setProtectedHeader({ alg: 'RS256', kid: 'e2e' })
          .setIssuer(ISSUER)
          .setSubject('testing@secure.istio.io')
          .setIssuedAt()
          .setExpirationTime('10m')
          .sign(privateKey);
      const withToken = async (jwt: string | undefined, extra: string[] = []): Promise<string> => {
        const r = await curl([
          '--cacert',
          caFile,
          ...extra,
          ...(jwt === undefined ? [] : ['-H', `Authorization: Bearer ${jwt}`]),
          '-w',
          '\n%{http_code}',
          `${INGRESS}/productpage`,
        ]);
        return r.stdout;
      };

      await t.test(
        '4. end-user authentication at the ingress: valid JWT 200, invalid 401, none + requestPrincipals policy 403',
        async () => {
          await apply(
            yaml(
              'ra.yaml',
              `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt-example, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  jwtRules:
    - issuer: "${ISSUER}"
      jwks: '${JSON.stringify({ keys: [jwk] })}'
`,
            ),
          );
          assert.match(await withToken(await token({})), /\n200$/);
          const forged = `${(await token({})).slice(0, -6)}AAAAAA`;
          assert.match(await withToken(forged), /Jwt verification fails\n401$/);
          assert.match(
            await withToken(undefined),
            /\n200$/,
            'no token and no policy: allowed (Istio)',
          );
          await apply(
            yaml(
              'require-jwt.yaml',
              `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: frontend-ingress, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  action: DENY
  rules:
    - from: [{ source: { notRequestPrincipals: ["*"] } }]
`,
            ),
          );
          assert.match(await withToken(undefined), /RBAC: access denied\n403$/);
          assert.match(await withToken(await token({})), /\n200$/);
          // A WebSocket upgrade through the gateway is policed like a request, before routing;
          // allowed, it reaches productpage (which answers it as a plain request: 200, relayed).
          const upgrade = [
            ...['-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket'],
            ...[
              '-H',
              'Sec-WebSocket-Version: 13',
              '-H',
              'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
            ],
          ];
          assert.match(await withToken(undefined, upgrade), /RBAC: access denied\n403$/);
          assert.match(await withToken(forged, upgrade), /Jwt verification fails\n401$/);
          assert.match(
            await withToken(await token({}), upgrade),
            /Simple Bookstore App[\s\S]*\n200$/,
          );
        },
      );

      await t.test(
        '5. authorization on a claim: only the right groups claim is allowed',
        async () => {
          await apply(
            yaml(
              'groups.yaml',
              `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: require-group, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  action: ALLOW
  rules:
    - from: [{ source: { requestPrincipals: ["${ISSUER}/${ISSUER}"] } }]
      when: [{ key: "request.auth.claims[groups]", values: ["group1"] }]
`,
            ),
          );
          assert.match(await withToken(await token({ groups: ['group1', 'group2'] })), /\n200$/);
          assert.match(
            await withToken(await token({ groups: ['group2'] })),
            /RBAC: access denied\n403$/,
          );
          for (const f of ['groups.yaml', 'require-jwt.yaml', 'ra.yaml'])
            await apply(join(dir.path, f), 'delete');
          assert.match(await withToken(undefined), /\n200$/);
        },
      );

      await t.test(
        '6. egress: a ServiceEntry host is reachable; REGISTRY_ONLY blocks unknown hosts; traffic leaves through the egress gateway',
        // The external servers listen on the host's loopback and the client is the sidecar's explicit
        // proxy: netns mode has neither (its egress — Passthrough, REGISTRY_ONLY, egress
        // NetworkPolicy — is exercised from pods in test/proxy/capture-netns.test.ts).
        {
          skip:
            mode === 'netns'
              ? 'loopback addresses and the explicit proxy (see capture-netns)'
              : false,
        },
        async () => {
          const callers: string[] = [];
          const traceparents: string[] = [];
          const external = http.createServer((req, res) => {
            callers.push(req.socket.remoteAddress ?? '');
            traceparents.push(String(req.headers.traceparent ?? ''));
            res.end('external says hi');
          });
          await new Promise<void>((resolve) => external.listen(0, '127.0.0.90', resolve));
          const other = http.createServer((_req, res) => res.end('not in the registry'));
          await new Promise<void>((resolve) => other.listen(0, '127.0.0.91', resolve));
          t.after(() => {
            external.close();
            other.close();
          });
          const port = (external.address() as AddressInfo).port;
          const otherPort = (other.address() as AddressInfo).port;
          await apply(
            yaml(
              'egress.yaml',
              `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: external-svc, namespace: default }
spec:
  hosts: [external.example]
  location: MESH_EXTERNAL
  ports: [{ number: ${String(port)}, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.90 }]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: istio-system }
spec:
  outboundTrafficPolicy: { mode: REGISTRY_ONLY }
`,
            ),
          );
          // From inside the mesh: productpage's sidecar as the HTTP proxy (what the app's HTTP_PROXY does).
          const allowed = await curl([
            '-x',
            PRODUCTPAGE_SIDECAR,
            '-w',
            '\n%{http_code}',
            `http://external.example:${String(port)}/`,
          ]);
          assert.equal(allowed.stdout, 'external says hi\n200');
          // The sidecar started a trace for a request that had none (W3C traceparent, sampled).
          assert.match(traceparents.at(-1) ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
          const blocked = await curl([
            '-x',
            PRODUCTPAGE_SIDECAR,
            '-o',
            '/dev/null',
            '-w',
            '%{http_code}',
            `http://127.0.0.91:${String(otherPort)}/`,
          ]);
          assert.equal(blocked.stdout, '502');
          assert.equal(
            callers.at(-1),
            '127.10.2.1',
            'without an egress gateway the sidecar itself calls out',
          );
          // Istio's "Egress gateways" task: route the ServiceEntry host through istio-egressgateway.
          await apply(
            yaml(
              'egress-gateway.yaml',
              `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: istio-egressgateway, namespace: default }
spec:
  selector: { istio: egressgateway }
  servers:
    - port: { number: 80, name: http, protocol: HTTP }
      hosts: [external.example]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: direct-external-through-egress-gateway, namespace: default }
spec:
  hosts: [external.example]
  gateways: [istio-egressgateway, mesh]
  http:
    - match: [{ gateways: [mesh], port: ${String(port)} }]
      route: [{ destination: { host: istio-egressgateway.istio-system.svc.cluster.local, port: { number: 80 } } }]
    - match: [{ gateways: [istio-egressgateway], port: 80 }]
      route: [{ destination: { host: external.example, port: { number: ${String(port)} } } }]
`,
            ),
          );
          const viaGateway = await curl([
            '-x',
            PRODUCTPAGE_SIDECAR,
            '-w',
            '\n%{http_code}',
            `http://external.example:${String(port)}/`,
          ]);
          assert.equal(viaGateway.stdout, 'external says hi\n200');
          assert.equal(
            callers.at(-1),
            '127.12.0.2',
            'the external server was called by the egress gateway',
          );
          await apply(join(dir.path, 'egress-gateway.yaml'), 'delete');
          await apply(join(dir.path, 'egress.yaml'), 'delete');
          const open = await curl([
            '-x',
            PRODUCTPAGE_SIDECAR,
            '-w',
            '\n%{http_code}',
            `http://127.0.0.91:${String(otherPort)}/`,
          ]);
          assert.equal(open.stdout, 'not in the registry\n200', 'ALLOW_ANY again: passthrough');
        },
      );

      const sample = (name: string): string =>
        join(REPO_ROOT, 'examples', 'bookinfo', 'samples', name);

      await t.test("7. traffic management with Istio's Bookinfo samples, unchanged", async () => {
        await apply(join(REPO_ROOT, 'examples', 'bookinfo', 'destination-rule-all-mtls.yaml'));
        await apply(sample('virtual-service-all-v1.yaml'));
        for (let i = 0; i < 10; i += 1) assert.equal(servedBy(await page()), 'reviews-v1');
        await apply(sample('virtual-service-reviews-test-v2.yaml'));
        for (let i = 0; i < 5; i += 1) {
          assert.equal(servedBy(await page('user=jason')), 'reviews-v2');
          assert.equal(servedBy(await page()), 'reviews-v1');
        }
        await apply(sample('virtual-service-reviews-50-v3.yaml'));
        const counts: Record<string, number> = {};
        const n = 80;
        for (let i = 0; i < n; i += 1) {
          const v = servedBy(await page());
          counts[v] = (counts[v] ?? 0) + 1;
        }
        assert.equal(
          (counts['reviews-v1'] ?? 0) + (counts['reviews-v3'] ?? 0),
          n,
          JSON.stringify(counts),
        );
        const share = (counts['reviews-v3'] ?? 0) / n;
        assert.ok(share > 0.3 && share < 0.7, `v3 share ${String(share)} should be near 0.5`);
        // Delay fault for jason: ratings waits 7 s; productpage's 3 s timeout to reviews fires first.
        await apply(sample('virtual-service-reviews-test-v2.yaml'));
        await apply(sample('virtual-service-ratings-test-delay.yaml'));
        const started = Date.now();
        const delayed = await page('user=jason', 20);
        assert.match(delayed, /Sorry, product reviews are currently unavailable for this book\./);
        assert.ok(Date.now() - started >= 2500, "the page waited for productpage's timeout");
        // Other users are not delayed. (In netns mode this once failed under load: productpage's
        // call to reviews missed the 100 ms protocol-detection bound and was relayed as bytes to
        // details; detection now has no timeout and a VIP's bytes only go to its own service.)
        assert.equal(servedBy(await page()), 'reviews-v1', 'other users are not delayed');
        await apply(sample('virtual-service-ratings-test-abort.yaml'));
        const aborted = await page('user=jason');
        assert.equal(servedBy(aborted), 'reviews-v2');
        assert.match(aborted, /Ratings service is currently unavailable/);
        const status = await runPalisade([
          'proxy-status',
          '--control',
          info.control,
          '--state-dir',
          state,
        ]);
        assert.match(
          status.stdout,
          /productpage-v1-0\.default\s+SYNCED\s+SYNCED\s+SYNCED\s+SYNCED\s+SYNCED/,
        );
      });

      await t.test('8. a Kubernetes NetworkPolicy isolates ratings to reviews only', async () => {
        await apply(sample('virtual-service-all-v1.yaml'));
        await apply(sample('virtual-service-reviews-v3.yaml'));
        // From productpage: its sidecar as an explicit proxy (loopback), or curl inside its pod (netns).
        const probe = ['-o', '/dev/null', '-w', '%{http_code}', 'http://ratings:9080/ratings/0'];
        const fromProductpage = async (): Promise<string> =>
          mode === 'loopback'
            ? (await curl(['-x', PRODUCTPAGE_SIDECAR, ...probe])).stdout
            : (
                await runPalisade(
                  [
                    'exec',
                    '--state-dir',
                    state,
                    'productpage-v1-0',
                    '--',
                    'curl',
                    '-sS',
                    '-m',
                    '10',
                    ...probe,
                  ],
                  { cwd: REPO_ROOT },
                )
              ).stdout;
        assert.equal(await fromProductpage(), '200', 'no policy yet: productpage may call ratings');
        await apply(sample('networkpolicy-ratings.yaml'));
        const refused = await fromProductpage();
        if (refused !== '503') {
          const listeners = await runPalisade([
            'proxy-config',
            'listener',
            'ratings-v1-0',
            '--control',
            info.control,
            '--state-dir',
            state,
            '-o',
            'json',
          ]);
          assert.fail(
            `productpage is not reviews and must be refused, got ${refused}; ratings listeners: ${listeners.stdout.slice(0, 3000)}`,
          );
        }
        const html = await page();
        assert.equal(servedBy(html), 'reviews-v3');
        assert.match(html, /stars-red/, 'reviews → ratings is still allowed');
        await apply(sample('networkpolicy-ratings.yaml'), 'delete');
        assert.equal(await fromProductpage(), '200');
      });
    },
  );
