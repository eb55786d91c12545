// CORS (Envoy's envoy.filters.http.cors, as Istio's corsPolicy compiles to it)
// through a real `palisade proxy` process fed by the test ADS server, with curl
// as the browser: preflights from allowed origins answered by the proxy (the
// app never sees them), unmatched preflights forwarded or, with Istio's
// IGNORE, answered without CORS headers; actual requests from allowed origins
// get Access-Control-Allow-Origin over the app's own; others are untouched.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EXTENSION_TYPE_URLS } from '../../src/xds/index.js';
import { waitFor } from '../helpers/index.js';
import {
  clusterName,
  curl,
  feed,
  insertHttpFilter,
  outboundResources,
  startProxyProcess,
  startTestAdsServer,
  startUpstream,
  virtualHost,
} from './ads-server.js';

const API = clusterName('api');

/** The CorsPolicy Istio's compiler emits for the corsPolicy below (see src/control/compiler/routes.ts). */
function corsPolicy(extra: Record<string, unknown> = {}): object {
  return {
    'envoy.filters.http.cors': {
      '@type': EXTENSION_TYPE_URLS.corsPolicy,
      allow_origin_string_match: [
        { exact: 'https://app.example.com' },
        { suffix: '.trusted.example.org' },
      ],
      allow_methods: 'GET,POST',
      allow_headers: 'x-custom,authorization',
      expose_headers: 'x-upstream',
      max_age: '60',
      allow_credentials: { value: true },
      ...extra,
    },
  };
}

function origin(value: string): string[] {
  return ['-H', `Origin: ${value}`];
}

const PREFLIGHT = ['-X', 'OPTIONS', '-H', 'Access-Control-Request-Method: POST'];

test('CORS through a palisade proxy process', async (t) => {
  const api = await startUpstream('api', (req, res) => {
    // An app that sets its own (too broad) CORS header: the filter's value wins for allowed origins.
    res.setHeader('access-control-allow-origin', '*');
    res.end(`api ${req.method} ${req.url}`);
  });
  t.after(() => api.close());
  const ads = await startTestAdsServer(t);
  const resources = outboundResources(
    [{ name: API, endpoints: [{ port: api.port }] }],
    [
      virtualHost('api', [
        {
          match: { prefix: '/ignore' },
          route: { cluster: API },
          typed_per_filter_config: corsPolicy({
            forward_not_matching_preflights: { value: false },
          }),
        },
        {
          match: { prefix: '/local' },
          direct_response: { status: 200, body: { inline_string: 'local' } },
          typed_per_filter_config: corsPolicy(),
        },
        { match: { prefix: '/' }, route: { cluster: API }, typed_per_filter_config: corsPolicy() },
      ]),
    ],
  );
  // The HCM runs the CORS filter ahead of the router, as the compiler emits it.
  insertHttpFilter(resources, {
    name: 'envoy.filters.http.cors',
    typed_config: { '@type': EXTENSION_TYPE_URLS.cors },
  });
  feed(ads, resources, 'v1');
  const proxy = await startProxyProcess(ads.port);
  t.after(() => proxy.stop());
  const via = proxy.via;
  await waitFor(async () => (await curl([...via, 'http://api/ready'])).status === 200, 20_000);

  await t.test('a preflight from an allowed origin is answered by the proxy', async () => {
    const before = api.seen.length;
    for (const o of ['https://app.example.com', 'https://ui.trusted.example.org']) {
      const r = await curl([...via, ...PREFLIGHT, ...origin(o), 'http://api/items']);
      assert.equal(r.status, 200);
      assert.equal(r.headers['access-control-allow-origin'], o);
      assert.equal(r.headers['access-control-allow-methods'], 'GET,POST');
      assert.equal(r.headers['access-control-allow-headers'], 'x-custom,authorization');
      assert.equal(r.headers['access-control-max-age'], '60');
      assert.equal(r.headers['access-control-allow-credentials'], 'true');
      assert.equal(r.body, '');
    }
    assert.equal(api.seen.length, before, 'the app saw a preflight the proxy answered');
  });

  await t.test('an unmatched preflight is forwarded (default) or ignored (IGNORE)', async () => {
    const before = api.seen.length;
    const forwarded = await curl([
      ...via,
      ...PREFLIGHT,
      ...origin('https://evil.example.net'),
      'http://api/items',
    ]);
    assert.equal(forwarded.status, 200);
    assert.equal(forwarded.body, 'api OPTIONS /items');
    assert.equal(api.seen.length, before + 1);
    // The app's own header passes; the filter adds nothing for an origin it does not allow.
    assert.equal(forwarded.headers['access-control-allow-origin'], '*');
    assert.equal(forwarded.headers['access-control-allow-credentials'], undefined);

    const ignored = await curl([
      ...via,
      ...PREFLIGHT,
      ...origin('https://evil.example.net'),
      'http://api/ignore/x',
    ]);
    assert.equal(ignored.status, 200);
    assert.equal(ignored.headers['access-control-allow-origin'], undefined);
    assert.equal(ignored.body, '');
    assert.equal(api.seen.length, before + 1, 'IGNORE forwarded the preflight');
  });

  await t.test(
    'actual requests: allowed origins get the headers, others are untouched',
    async () => {
      const allowed = await curl([
        ...via,
        ...origin('https://app.example.com'),
        'http://api/items',
      ]);
      assert.equal(allowed.status, 200);
      assert.equal(allowed.body, 'api GET /items');
      assert.equal(allowed.headers['access-control-allow-origin'], 'https://app.example.com');
      assert.equal(allowed.headers['access-control-allow-credentials'], 'true');
      assert.equal(allowed.headers['access-control-expose-headers'], 'x-upstream');
      assert.equal(allowed.headers['access-control-allow-methods'], undefined);

      const other = await curl([...via, ...origin('https://app.example.com.evil'), 'http://api/x']);
      assert.equal(other.headers['access-control-allow-origin'], '*');
      assert.equal(other.headers['access-control-expose-headers'], undefined);
      const none = await curl([...via, 'http://api/x']);
      assert.equal(none.headers['access-control-allow-credentials'], undefined);

      // A plain OPTIONS (no Access-Control-Request-Method) is not a preflight: it reaches the app.
      const options = await curl([
        ...via,
        '-X',
        'OPTIONS',
        ...origin('https://app.example.com'),
        'http://api/o',
      ]);
      assert.equal(options.body, 'api OPTIONS /o');
      assert.equal(options.headers['access-control-allow-origin'], 'https://app.example.com');

      // Local replies pass through the filter too.
      const local = await curl([...via, ...origin('https://app.example.com'), 'http://api/local']);
      assert.equal(local.body, 'local');
      assert.equal(local.headers['access-control-allow-origin'], 'https://app.example.com');
    },
  );
});
