#!/usr/bin/env node
// Copies the Envoy xDS v3 .proto files Palisade uses into proto/, from the
// pinned @grpc/grpc-js-xds package (which ships the whole tree under deps/).
// Only the import closure of the roots below is copied. Well-known
// google/protobuf types are not copied: protobufjs bundles them.
// Run: node scripts/copy-protos.mjs   (commit the result)
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const require = createRequire(import.meta.url);
const pkgDir = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
const version = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version;
const depDirs = ['envoy-api', 'xds', 'protoc-gen-validate', 'googleapis'].map((d) =>
  join(pkgDir, 'deps', d),
);

const roots = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/secret/v3/sds.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/rbac/v3/rbac.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/service/auth/v3/external_auth.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/network/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/filters/udp/dns_filter/v3/dns_filter.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/clusters/aggregate/v3/cluster.proto',
  'envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.proto',
  'envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto',
  'envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto',
  'envoy/extensions/load_balancing_policies/random/v3/random.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/service/status/v3/csds.proto',
];

function locate(rel) {
  for (const d of depDirs) {
    const p = join(d, rel);
    if (existsSync(p)) return p;
  }
  return undefined;
}

const seen = new Map();
const stack = [...roots];
while (stack.length > 0) {
  const rel = stack.pop();
  if (seen.has(rel)) continue;
  const src = locate(rel);
  if (src === undefined) {
    if (rel.startsWith('google/protobuf/')) continue;
    if (roots.includes(rel)) throw new Error(`root proto not found in @grpc/grpc-js-xds: ${rel}`);
    throw new Error(`imported proto not found: ${rel}`);
  }
  seen.set(rel, src);
  for (const m of readFileSync(src, 'utf8').matchAll(
    /^import\s+(?:public\s+|weak\s+)?"([^"]+)";/gm,
  )) {
    stack.push(m[1]);
  }
}

const out = join(root, 'proto');
rmSync(out, { recursive: true, force: true });
for (const [rel, src] of seen) {
  mkdirSync(dirname(join(out, rel)), { recursive: true });
  copyFileSync(src, join(out, rel));
}
const note = `These .proto files were copied by scripts/copy-protos.mjs from @grpc/grpc-js-xds ${version}
(its deps/ folder: envoy-api, xds, protoc-gen-validate, googleapis). Do not edit them by hand; rerun the script.
Their licences are those of the upstream projects (Apache-2.0).
`;
import('node:fs').then((fs) => fs.writeFileSync(join(out, 'README.md'), note));
console.log(`copied ${seen.size} proto files into proto/ from @grpc/grpc-js-xds ${version}`);
