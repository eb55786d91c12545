/**
 * `palisade check authz` — would this request reach the workload under these
 * Istio security policies, and why. Runs the same translation (to Envoy RBAC
 * and jwt_authn configs) and the same evaluator the proxy uses.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { PalisadeError } from '../../errors/index.js';
import { isIP } from 'node:net';
import {
  enforcedProviders,
  extAuthzHttpFilters,
  jwtAuthnFilter,
  rbacFilters,
} from '../../control/index.js';
import {
  createWorkloadAuthorizer,
  DEFAULT_TRUST_DOMAIN,
  loadSecurityPolicies,
  readPolicyMeshConfig,
  type Decision,
  type PolicyMeshConfig,
  type SecurityPolicies,
  type WorkloadAuthorizer,
} from '../../policy/index.js';
import { parseCommandArgs } from '../args.js';
import type { CliIO, Command } from '../command.js';

const USAGE = `Usage:
  palisade check authz -f FILE [-f FILE...] --request REQ.json [-o json|envoy] [--root-namespace NS]
                       [--mesh-config MESH.yaml]
  palisade check authz -f FILE [-f FILE...] --requests REQS.json [-o json|envoy]

FILEs hold YAML documents: PeerAuthentication, RequestAuthentication and
AuthorizationPolicy (security.istio.io/v1 or v1beta1); other kinds are ignored.
A request:
  { "destination": { "namespace": "foo", "labels": {"app": "httpbin"}, "port": 8000, "ip": "10.0.0.2",
                     "gateway": false },
    "source": { "principal": "spiffe://cluster.local/ns/bar/sa/sleep", "ip": "10.0.0.1",
                "remoteIp": "203.0.113.7" },
    "request": { "protocol": "http", "method": "GET", "host": "httpbin.foo", "path": "/ip",
                 "headers": {"x-token": "a"}, "jwt": "eyJ..." } }
source.principal null or absent = a plaintext peer; protocol "tcp" = connection facts only.
source.ip is the peer address (ipBlocks, source.ip); source.remoteIp the original client
(remoteIpBlocks, remote.ip). Without remoteIp it comes from the X-Forwarded-For header as
Envoy computes it: on a sidecar (gateway false) the last address; on a gateway the peer,
or with meshConfig defaultConfig.gatewayTopology.numTrustedProxies N the Nth from the right.
--mesh-config takes Istio's MeshConfig (the object, the istio ConfigMap, or an
IstioOperator): trustDomain and trustDomainAliases (a policy principal matches under the
trust domain and every alias), rootNamespace, gatewayTopology.numTrustedProxies,
pathNormalization.normalization (the request path is normalised as the proxies do;
default BASE).
The answer: { "decision": "ALLOW"|"DENY", "status": 200|401|403|"connection-refused",
              "policy": "ns/name"|null, "rule": n|null, "reason": "..." }
--requests takes a JSON array and answers an array in the same order.
-o envoy prints, per request, the Envoy filters compiled for its destination workload
(jwt_authn and RBAC HTTP filters, network RBAC filters) as JSON, the shape
\`istioctl proxy-config listener -o json\` shows them in; no decision is made.
Exit status, like kubectl auth can-i and palisade check netpol: with --request,
0 when the request is allowed (ALLOW), 1 when it is denied; with --requests
(a report) or -o envoy, 0 when every request was answered; 2 on invalid input.`;

interface RequestJson {
  destination: {
    namespace: string;
    labels: Record<string, string>;
    port: number;
    ip?: string;
    gateway?: boolean;
  };
  source: { principal: string | null; ip?: string; remoteIp?: string };
  request: {
    protocol: 'http' | 'tcp';
    method?: string;
    host?: string;
    path?: string;
    headers?: Record<string, string>;
    jwt?: string;
    sni?: string;
  };
}

function fail(where: string, message: string): never {
  throw new PalisadeError('PAL_ERR_AUTHZ_REQUEST_INVALID', `${where}: ${message}`);
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const optString = (o: Record<string, unknown>, k: string, where: string): string | undefined => {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail(`${where}.${k}`, 'must be a string');
  return v;
};

function parseRequest(raw: unknown, where: string): RequestJson {
  if (!isObj(raw)) fail(where, 'must be an object');
  const d = raw['destination'];
  if (!isObj(d)) fail(`${where}.destination`, 'required object is missing');
  const ns = d['namespace'];
  if (typeof ns !== 'string' || ns === '')
    fail(`${where}.destination.namespace`, 'must be a non-empty string');
  const labels = d['labels'] ?? {};
  if (!isObj(labels) || Object.values(labels).some((v) => typeof v !== 'string'))
    fail(`${where}.destination.labels`, 'must be a map of strings');
  const port = d['port'];
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
    fail(`${where}.destination.port`, 'must be a port number 1-65535');
  const s = raw['source'] ?? {};
  if (!isObj(s)) fail(`${where}.source`, 'must be an object');
  const principal = s['principal'] ?? null;
  if (principal !== null && typeof principal !== 'string')
    fail(`${where}.source.principal`, 'must be a string or null');
  const r = raw['request'] ?? { protocol: 'http' };
  if (!isObj(r)) fail(`${where}.request`, 'must be an object');
  const protocol = r['protocol'] ?? 'http';
  if (protocol !== 'http' && protocol !== 'tcp')
    fail(`${where}.request.protocol`, 'must be "http" or "tcp"');
  const headers = r['headers'] ?? {};
  if (!isObj(headers) || Object.values(headers).some((v) => typeof v !== 'string'))
    fail(`${where}.request.headers`, 'must be a map of strings');
  const dIp = optString(d, 'ip', `${where}.destination`);
  const sIp = optString(s, 'ip', `${where}.source`);
  const remoteIp = optString(s, 'remoteIp', `${where}.source`);
  for (const [k, v] of [
    ['destination.ip', dIp],
    ['source.ip', sIp],
    ['source.remoteIp', remoteIp],
  ] as const)
    if (v !== undefined && isIP(v) === 0) fail(`${where}.${k}`, `not an IP address: ${v}`);
  const gateway = d['gateway'] ?? false;
  if (typeof gateway !== 'boolean') fail(`${where}.destination.gateway`, 'must be a boolean');
  const method = optString(r, 'method', `${where}.request`);
  const host = optString(r, 'host', `${where}.request`);
  const path = optString(r, 'path', `${where}.request`);
  const jwt = optString(r, 'jwt', `${where}.request`);
  const sni = optString(r, 'sni', `${where}.request`);
  return {
    destination: {
      namespace: ns,
      labels: labels as Record<string, string>,
      port,
      ...(dIp === undefined ? {} : { ip: dIp }),
      gateway,
    },
    source: {
      principal,
      ...(sIp === undefined ? {} : { ip: sIp }),
      ...(remoteIp === undefined ? {} : { remoteIp }),
    },
    request: {
      protocol,
      ...(method === undefined ? {} : { method }),
      ...(host === undefined ? {} : { host }),
      ...(path === undefined ? {} : { path }),
      headers: headers as Record<string, string>,
      ...(jwt === undefined ? {} : { jwt }),
      ...(sni === undefined ? {} : { sni }),
    },
  };
}

function authorizerFor(
  policies: SecurityPolicies,
  req: RequestJson,
  rootNamespace: string | undefined,
  mesh: PolicyMeshConfig | undefined,
): WorkloadAuthorizer {
  // Istio sets use_remote_address and numTrustedProxies on gateways only.
  const xff =
    req.destination.gateway === true
      ? { useRemoteAddress: true, numTrustedHops: mesh?.numTrustedProxies ?? 0 }
      : {};
  return createWorkloadAuthorizer(
    policies,
    { namespace: req.destination.namespace, labels: req.destination.labels },
    {
      ...(rootNamespace === undefined ? {} : { rootNamespace }),
      trustDomain: mesh?.trustDomain ?? DEFAULT_TRUST_DOMAIN,
      trustDomainAliases: mesh?.trustDomainAliases ?? [],
      pathNormalization: mesh?.pathNormalization ?? 'BASE',
      knownProviders: enforcedProviders(mesh?.extensionProviders),
      knownTcpProviders: enforcedProviders(mesh?.extensionProviders),
      xff,
    },
  );
}

/** The Envoy filters compiled for a request's destination workload (`-o envoy`). */
function envoyFilters(
  authorizer: WorkloadAuthorizer,
  req: RequestJson,
  mesh: PolicyMeshConfig | undefined,
): Record<string, unknown> {
  const jwt = authorizer.jwtConfig();
  const http = authorizer.envoyFilters('http');
  return {
    workload: { namespace: req.destination.namespace, labels: req.destination.labels },
    http_filters: [
      ...(jwt === undefined ? [] : [jwtAuthnFilter(jwt)]),
      ...extAuthzHttpFilters(http, mesh?.extensionProviders),
      ...rbacFilters(http, true),
    ],
    network_filters: rbacFilters(authorizer.envoyFilters('tcp'), false),
  };
}

async function answer(authorizer: WorkloadAuthorizer, req: RequestJson): Promise<Decision> {
  const headers: Record<string, string> = { ...req.request.headers };
  if (
    req.request.jwt !== undefined &&
    Object.keys(headers).every((k) => k.toLowerCase() !== 'authorization')
  ) {
    headers['authorization'] = `Bearer ${req.request.jwt}`;
  }
  return authorizer.decide({
    principal: req.source.principal,
    ...(req.source.ip === undefined ? {} : { sourceIp: req.source.ip }),
    ...(req.source.remoteIp === undefined ? {} : { remoteIp: req.source.remoteIp }),
    ...(req.destination.ip === undefined ? {} : { destinationIp: req.destination.ip }),
    destinationPort: req.destination.port,
    ...(req.request.sni === undefined ? {} : { sni: req.request.sni }),
    protocol: req.request.protocol,
    ...(req.request.method === undefined ? {} : { method: req.request.method }),
    ...(req.request.host === undefined ? {} : { host: req.request.host }),
    ...(req.request.path === undefined ? {} : { path: req.request.path }),
    headers,
  });
}

function readJson(path: string, io: CliIO): unknown {
  let text: string;
  try {
    text = readFileSync(resolve(io.cwd, path), 'utf8');
  } catch {
    throw new PalisadeError('PAL_ERR_FILE_READ', `${path}: cannot read`);
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new PalisadeError(
      'PAL_ERR_YAML_PARSE',
      `${path}: not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}`,
    );
  }
}

const contract = (d: Decision): Record<string, unknown> => ({
  decision: d.decision,
  status: d.status,
  policy: d.policy,
  rule: d.rule,
  reason: d.reason,
  ...(d.dryRun === undefined ? {} : { dryRun: d.dryRun }),
});

export const checkAuthzCommand: Command = {
  path: ['check', 'authz'],
  summary: 'Would a request be allowed under Istio security policies, and which policy decided',
  usage: USAGE,
  run: async (args, io) => {
    const { values } = parseCommandArgs(
      args,
      {
        filename: { type: 'string', short: 'f', multiple: true },
        request: { type: 'string' },
        requests: { type: 'string' },
        output: { type: 'string', short: 'o' },
        'root-namespace': { type: 'string' },
        'mesh-config': { type: 'string' },
      },
      false,
    );
    const files = values.filename ?? [];
    if (files.length === 0)
      throw new PalisadeError('PAL_ERR_USAGE', 'missing required option -f FILE');
    if ((values.request === undefined) === (values.requests === undefined))
      throw new PalisadeError('PAL_ERR_USAGE', 'give exactly one of --request or --requests');
    if (
      values.output !== undefined &&
      values.output !== 'json' &&
      values.output !== 'text' &&
      values.output !== 'envoy'
    )
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        `unknown output format ${JSON.stringify(values.output)}`,
      );
    const policies = loadSecurityPolicies(files.map((f) => resolve(io.cwd, f)));
    const meshFile = values['mesh-config'];
    const mesh =
      meshFile === undefined ? undefined : readPolicyMeshConfig(resolve(io.cwd, meshFile));
    const root = values['root-namespace'] ?? mesh?.rootNamespace;
    const many = values.requests !== undefined;
    const raw = readJson(values.requests ?? values.request ?? '', io);
    if (many && !Array.isArray(raw))
      throw new PalisadeError(
        'PAL_ERR_AUTHZ_REQUEST_INVALID',
        `${String(values.requests)}: must be a JSON array of requests`,
      );
    const requests = many
      ? (raw as unknown[]).map((r, i) => parseRequest(r, `requests[${i}]`))
      : [parseRequest(raw, 'request')];
    const authorizers = requests.map((r) => authorizerFor(policies, r, root, mesh));
    if (values.output === 'envoy') {
      const configs = requests.map((r, i) =>
        envoyFilters(authorizers[i] as WorkloadAuthorizer, r, mesh),
      );
      io.stdout(`${JSON.stringify(many ? configs : configs[0], null, 2)}\n`);
      return 0;
    }
    const answers: Decision[] = [];
    for (const [i, r] of requests.entries())
      answers.push(await answer(authorizers[i] as WorkloadAuthorizer, r));
    if (values.output === 'json') {
      io.stdout(
        `${JSON.stringify(many ? answers.map(contract) : contract(answers[0] as Decision), null, 2)}\n`,
      );
    } else {
      for (const d of answers) {
        io.stdout(
          `${d.decision} (${String(d.status)})${d.policy === null ? '' : ` by ${d.policy}${d.rule === null ? '' : ` rule ${d.rule}`}`}: ${d.reason}\n`,
        );
        if (d.dryRun !== undefined)
          io.stdout(
            `  dry-run: ${d.dryRun.action} policy ${d.dryRun.policy} rule ${d.dryRun.rule} would match\n`,
          );
      }
    }
    // One question answers yes (0) or no (1), as kubectl auth can-i does;
    // a --requests report exits 0 once every request was answered.
    if (!many && answers[0]?.decision !== 'ALLOW') return 1;
    return 0;
  },
};
