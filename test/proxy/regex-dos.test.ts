// Regex denial of service (issue 15, item 3) against a real `palisade proxy`
// process fed by the test ADS server. Config regexes are RE2 (Envoy's
// safe_regex: "designed to complete execution in linear time"), so patterns
// that make a backtracking engine take ~2^n steps — `/(a+)+` on "/aaaa…!" —
// cost O(n) here: each attack request is answered, and a request sent at the
// same time is answered too (a blocked event loop would leave every request of
// the batch unanswered until the client's 10 s timeout). With the previous
// native RegExp, 30 characters took ~9 s; the 60 used here would take years.
// Then the proxy NACKs what RE2 rejects (lookahead, backreference, an
// over-large program) and keeps serving its last good config, as Envoy does.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EXTENSION_TYPE_URLS, TYPE_URLS } from '../../src/xds/index.js';
import { spawnPalisade, waitFor } from '../helpers/index.js';
import {
  clusterName,
  feed,
  insertHttpFilter,
  outboundResources,
  proxyClient,
  startTestAdsServer,
  startUpstream,
  virtualHost,
  waitAck,
} from './ads-server.js';

const ECHO = clusterName('echo');
const A60 = 'a'.repeat(60);

function direct(body: string): object {
  return { status: 200, body: { inline_string: body } };
}

/** The same catastrophic patterns at every config-regex site the proxy runs. */
function routes(): object[] {
  return [
    virtualHost('redos', [
      // VirtualService `uri: {regex: "/(a+)+"}` compiles to this (src/control/compiler/routes.ts).
      { match: { safe_regex: { regex: '/(a+)+' } }, direct_response: direct('uri-regex') },
      {
        match: {
          prefix: '/h',
          headers: [{ name: 'x-id', string_match: { safe_regex: { regex: '(a|a)*b' } } }],
        },
        direct_response: direct('header-regex'),
      },
      {
        match: {
          prefix: '/q',
          query_parameters: [{ name: 'q', string_match: { safe_regex: { regex: '(a|aa)+c' } } }],
        },
        direct_response: direct('query-regex'),
      },
      {
        match: { prefix: '/rw/' },
        route: {
          cluster: ECHO,
          regex_rewrite: { pattern: { regex: '/rw/(a*)*b' }, substitution: '/rewritten' },
        },
      },
      {
        match: { prefix: '/cors' },
        direct_response: direct('cors'),
        typed_per_filter_config: {
          'envoy.filters.http.cors': {
            '@type': EXTENSION_TYPE_URLS.corsPolicy,
            allow_origin_string_match: [{ safe_regex: { regex: 'https://(a+)+\\.example' } }],
            allow_methods: 'GET',
          },
        },
      },
      { match: { path: '/ok' }, direct_response: direct('ok') },
      { match: { prefix: '/' }, direct_response: direct('fallback') },
    ]),
  ];
}

test('config regexes run in linear time in a palisade proxy process', async (t) => {
  const echo = await startUpstream('echo');
  t.after(() => echo.close());
  const ads = await startTestAdsServer(t);
  const clusters = [{ name: ECHO, endpoints: [{ port: echo.port }] }];
  const good = outboundResources(clusters, routes());
  insertHttpFilter(good, {
    name: 'envoy.filters.http.cors',
    typed_config: { '@type': EXTENSION_TYPE_URLS.cors },
  });
  feed(ads, good, 'v1');
  const proc = await spawnPalisade(
    [
      'proxy',
      '--xds',
      `127.0.0.1:${String(ads.port)}`,
      '--xds-insecure',
      '--node-id',
      'sidecar~127.0.0.1~a-1.ns~ns.svc.cluster.local',
      '--metadata',
      JSON.stringify({ NAMESPACE: 'ns', SERVICE_ACCOUNT: 'a' }),
      '--outbound-port',
      '0',
      '--admin-port',
      '0',
      '--drain-ms',
      '500',
    ],
    { ready: /ready outbound=(\d+) admin=(\d+)/ },
  );
  t.after(() => proc.stop(2000));
  const pid = proc.child.pid;
  const client = proxyClient(Number(proc.match[1]));
  t.after(() => {
    client.close();
  });
  await waitFor(async () => (await client.get('http://redos/ok')).status === 200, 20_000);
  await waitAck(ads, TYPE_URLS.route, 'v1');

  await t.test(
    'hostile inputs at every regex site and a normal request, all answered',
    async () => {
      const attacks = [
        client.get(`http://redos/${A60}!`),
        client.get('http://redos/h', { 'x-id': `${A60}!` }),
        client.get(`http://redos/q?q=${A60}!`),
        client.get(`http://redos/rw/${A60}!`),
        client.get('http://redos/cors', { origin: `https://${A60}!.example` }),
      ];
      // Sent while the attacks are in flight: a stalled event loop would never answer it.
      const normal = client.get('http://redos/ok');
      const [uri, header, query, rewrite, cors] = await Promise.all(attacks);
      assert.deepEqual(await normal, { status: 200, body: 'ok' });
      assert.deepEqual(uri, { status: 200, body: 'fallback' });
      assert.deepEqual(header, { status: 200, body: 'fallback' }, 'no header match: next route');
      assert.deepEqual(query, { status: 200, body: 'fallback' });
      assert.equal(rewrite?.status, 200, 'the rewrite route forwards (no match, path kept)');
      assert.ok(echo.seen.some((s) => s.url === `/rw/${A60}!`));
      assert.deepEqual(cors, { status: 200, body: 'cors' });
      // And the same regexes still match what they should (full match, RE2 semantics).
      assert.equal((await client.get(`http://redos/${A60}`)).body, 'uri-regex');
      assert.equal((await client.get('http://redos/h', { 'x-id': 'aab' })).body, 'header-regex');
      assert.equal((await client.get('http://redos/q?q=aaac')).body, 'query-regex');
      await client.get('http://redos/rw/aab');
      assert.ok(
        echo.seen.some((s) => s.url === '/rewritten'),
        'regex_rewrite rewrote /rw/aab',
      );
      assert.equal(proc.child.exitCode, null, 'the proxy is still running');
      assert.equal(proc.child.pid, pid);
    },
  );

  await t.test('what RE2 rejects is NACKed; the last good config keeps serving', async () => {
    const cases: [string, object, RegExp][] = [
      [
        'v2',
        { match: { safe_regex: { regex: '/(?=admin).*' } }, direct_response: direct('x') },
        /safe_regex\.regex: lookahead "\(\?=" is not supported/,
      ],
      [
        'v3',
        {
          match: {
            prefix: '/',
            headers: [{ name: 'x', string_match: { safe_regex: { regex: '(a)\\1' } } }],
          },
          direct_response: direct('x'),
        },
        /backreference "\\1" is not supported/,
      ],
      [
        'v4',
        {
          match: { prefix: '/' },
          route: {
            cluster: ECHO,
            regex_rewrite: { pattern: { regex: '(\\w+\\s?){1,1000}' }, substitution: '/' },
          },
        },
        /regex_rewrite: RE2 program size \d+ exceeds the maximum 1024/,
      ],
    ];
    for (const [version, route, reason] of cases) {
      const bad = outboundResources(clusters, [virtualHost('redos', [route])]);
      ads.set(TYPE_URLS.route, version, bad[TYPE_URLS.route] ?? []);
      const nack = await waitFor(
        () =>
          ads.requests.find(
            (r) =>
              r.type_url === TYPE_URLS.route &&
              r.error_detail !== undefined &&
              reason.test(r.error_detail.message ?? ''),
          ),
        10_000,
      );
      assert.equal(nack?.version_info, 'v1', 'the NACK carries the last accepted version');
    }
    assert.deepEqual(await client.get('http://redos/ok'), { status: 200, body: 'ok' });
    assert.equal((await client.get(`http://redos/${A60}`)).body, 'uri-regex');
    assert.equal(proc.child.pid, pid);
    assert.equal(proc.child.exitCode, null);
  });
});
