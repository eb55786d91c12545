/**
 * The part of Istio's MeshConfig (istio.io/latest/docs/reference/config/istio.mesh.v1alpha1/)
 * that decides security policy: `trustDomain`, `trustDomainAliases`,
 * `rootNamespace`, `defaultConfig.gatewayTopology.numTrustedProxies` and
 * `pathNormalization.normalization` (the path that routing, policy and the app see).
 * `extensionProviders` (the external authorizers of CUSTOM policies).
 *
 * Accepted shapes, as users hold them: the MeshConfig object itself, the
 * `istio` ConfigMap (`data.mesh` holds MeshConfig as YAML), or an
 * IstioOperator (`spec.meshConfig`). Other MeshConfig fields are not about
 * policy and are ignored; a policy field of the wrong type is an error naming
 * the file and the field.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { PalisadeError } from '../errors/index.js';
import { parseManifests, ValidationError, type ValidationIssue } from '../api/index.js';
import { PATH_NORMALIZATIONS, type PathNormalization } from './path-normalization.js';

/** The policy-relevant MeshConfig fields, defaulted as Istio does. */
export interface PolicyMeshConfig {
  /** Undefined when the file does not set it (Istio's default is `cluster.local`). */
  readonly trustDomain?: string;
  readonly trustDomainAliases: readonly string[];
  /** Istio's default root namespace is `istio-system`. */
  readonly rootNamespace?: string;
  /** `defaultConfig.gatewayTopology.numTrustedProxies`: gateways' xff_num_trusted_hops. */
  readonly numTrustedProxies?: number;
  /**
   * `pathNormalization.normalization`; undefined when the file does not set it
   * (Istio's default, `DEFAULT`, is BASE). `DEFAULT` is read as BASE.
   */
  readonly pathNormalization?: PathNormalization;
  /** `extensionProviders`: the external authorizers CUSTOM policies name. */
  readonly extensionProviders: readonly ExtensionProvider[];
}

/**
 * meshConfig `extensionProviders[].envoyExtAuthzHttp` (Istio's
 * EnvoyExternalAuthorizationHttpProvider), defaulted as Istio does.
 */
export interface ExtAuthzHttpProvider {
  /** A hostname (`ext-authz.foo.svc.cluster.local`), `<ns>/<name>`, or an IP address. */
  readonly service: string;
  readonly port: number;
  /** Milliseconds; Istio's default is 600 s. */
  readonly timeoutMs: number;
  readonly pathPrefix: string;
  readonly failOpen: boolean;
  /** `statusOnError`: Envoy's default is 403. */
  readonly statusOnError: number;
  readonly includeRequestHeadersInCheck: readonly string[];
  readonly headersToUpstreamOnAllow: readonly string[];
  readonly headersToDownstreamOnDeny: readonly string[];
}

/** meshConfig `extensionProviders[].envoyExtAuthzGrpc` (the Envoy ext_authz v3 gRPC protocol). */
export type ExtAuthzGrpcProvider = Pick<
  ExtAuthzHttpProvider,
  'service' | 'port' | 'timeoutMs' | 'failOpen' | 'statusOnError'
>;

/** One `extensionProviders` entry; a kind Palisade cannot enforce keeps only its name. */
export interface ExtensionProvider {
  readonly name: string;
  readonly envoyExtAuthzHttp?: ExtAuthzHttpProvider;
  readonly envoyExtAuthzGrpc?: ExtAuthzGrpcProvider;
  /** The provider kind (`envoyExtAuthzGrpc`, ...), when it is not one Palisade enforces. */
  readonly unsupported?: string;
}

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The MeshConfig object inside one of the accepted shapes, with the path it was found at. */
function meshObject(doc: unknown, file: string): { mesh: unknown; at: string } {
  if (!isObj(doc)) return { mesh: doc, at: '' };
  if (doc['kind'] === 'ConfigMap') {
    const data = isObj(doc['data']) ? doc['data'] : {};
    const text = data['mesh'];
    if (typeof text !== 'string')
      throw new ValidationError(`${file}: ConfigMap`, [
        { path: 'data.mesh', message: 'must hold the MeshConfig as a YAML string' },
      ]);
    try {
      return { mesh: parse(text) as unknown, at: 'data.mesh.' };
    } catch (cause) {
      throw new ValidationError(`${file}: ConfigMap`, [
        {
          path: 'data.mesh',
          message: `not valid YAML: ${cause instanceof Error ? cause.message : String(cause)}`,
        },
      ]);
    }
  }
  if (doc['kind'] === 'IstioOperator') {
    const spec = isObj(doc['spec']) ? doc['spec'] : {};
    return { mesh: spec['meshConfig'] ?? {}, at: 'spec.meshConfig.' };
  }
  return { mesh: doc, at: '' };
}

/** Reads the policy part of a MeshConfig from the documents of one file. */
export function parsePolicyMeshConfig(text: string, file: string): PolicyMeshConfig {
  const docs = parseManifests(text, file);
  if (docs.length !== 1)
    throw new ValidationError(file, [
      { path: '', message: `must hold one MeshConfig document, found ${String(docs.length)}` },
    ]);
  const { mesh, at } = meshObject(docs[0]?.object, file);
  const issues: ValidationIssue[] = [];
  const m = isObj(mesh) ? mesh : {};
  if (!isObj(mesh) && mesh !== null && mesh !== undefined)
    issues.push({ path: at || '.', message: 'MeshConfig must be a mapping' });
  const str = (key: string): string | undefined => {
    const v = m[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '') {
      issues.push({ path: `${at}${key}`, message: 'must be a non-empty string' });
      return undefined;
    }
    return v;
  };
  const trustDomain = str('trustDomain');
  const rootNamespace = str('rootNamespace');
  const aliasesRaw = m['trustDomainAliases'] ?? [];
  let trustDomainAliases: string[] = [];
  if (!Array.isArray(aliasesRaw) || aliasesRaw.some((a) => typeof a !== 'string' || a === ''))
    issues.push({
      path: `${at}trustDomainAliases`,
      message: 'must be a list of non-empty strings',
    });
  else trustDomainAliases = aliasesRaw as string[];
  let numTrustedProxies: number | undefined;
  const defaultConfig = m['defaultConfig'];
  if (defaultConfig !== undefined) {
    const topology = isObj(defaultConfig) ? defaultConfig['gatewayTopology'] : undefined;
    const n = isObj(topology) ? topology['numTrustedProxies'] : undefined;
    if (n !== undefined) {
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0)
        issues.push({
          path: `${at}defaultConfig.gatewayTopology.numTrustedProxies`,
          message: 'must be a non-negative integer',
        });
      else numTrustedProxies = n;
    }
  }
  let pathNormalization: PathNormalization | undefined;
  const pn = m['pathNormalization'];
  if (pn !== undefined && pn !== null) {
    const level = isObj(pn) ? pn['normalization'] : pn;
    if (!isObj(pn)) issues.push({ path: `${at}pathNormalization`, message: 'must be a mapping' });
    else if (level === undefined || level === 'DEFAULT') pathNormalization = 'BASE';
    else if (
      typeof level === 'string' &&
      (PATH_NORMALIZATIONS as readonly string[]).includes(level)
    )
      pathNormalization = level as PathNormalization;
    else
      issues.push({
        path: `${at}pathNormalization.normalization`,
        message: `must be one of DEFAULT, ${PATH_NORMALIZATIONS.join(', ')}`,
      });
  }
  const extensionProviders = parseExtensionProviders(
    m['extensionProviders'],
    `${at}extensionProviders`,
    issues,
  );
  if (issues.length > 0) throw new ValidationError(`${file}: invalid MeshConfig`, issues);
  return {
    extensionProviders,
    ...(trustDomain === undefined ? {} : { trustDomain }),
    trustDomainAliases,
    ...(rootNamespace === undefined ? {} : { rootNamespace }),
    ...(numTrustedProxies === undefined ? {} : { numTrustedProxies }),
    ...(pathNormalization === undefined ? {} : { pathNormalization }),
  };
}

const DEFAULT_EXT_AUTHZ_TIMEOUT_MS = 600_000;
const GRPC_FIELDS = ['service', 'port', 'timeout', 'failOpen', 'statusOnError'];

/** A protobuf Duration as YAML holds it (`0.5s`, `200ms`, `1m`), in milliseconds. */
function durationMs(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v);
  if (m === null) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  const ms = Number(m[1]) * unit;
  return ms > 0 && Number.isFinite(ms) ? ms : undefined;
}

function parseExtensionProviders(
  raw: unknown,
  at: string,
  issues: ValidationIssue[],
): ExtensionProvider[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    issues.push({ path: at, message: 'must be a list' });
    return [];
  }
  const out: ExtensionProvider[] = [];
  const names = new Set<string>();
  raw.forEach((entry: unknown, i) => {
    const here = `${at}[${String(i)}]`;
    if (!isObj(entry)) {
      issues.push({ path: here, message: 'must be a mapping' });
      return;
    }
    const name = entry['name'];
    if (typeof name !== 'string' || name === '') {
      issues.push({ path: `${here}.name`, message: 'must be a non-empty string' });
      return;
    }
    // Istio: "extension provider name must be unique".
    if (names.has(name)) {
      issues.push({ path: `${here}.name`, message: `duplicate extension provider ${name}` });
      return;
    }
    names.add(name);
    const http = entry['envoyExtAuthzHttp'];
    const grpc = entry['envoyExtAuthzGrpc'];
    if (http === undefined && grpc !== undefined) {
      const at = `${here}.envoyExtAuthzGrpc`;
      const httpOnly = isObj(grpc) ? Object.keys(grpc).filter((k) => !GRPC_FIELDS.includes(k)) : [];
      for (const k of httpOnly)
        issues.push({ path: `${at}.${k}`, message: 'not a field of envoyExtAuthzGrpc' });
      const p = parseExtAuthzHttp(grpc, at, issues);
      if (p !== undefined && httpOnly.length === 0)
        out.push({
          name,
          envoyExtAuthzGrpc: {
            service: p.service,
            port: p.port,
            timeoutMs: p.timeoutMs,
            failOpen: p.failOpen,
            statusOnError: p.statusOnError,
          },
        });
      return;
    }
    if (http === undefined) {
      const kind = Object.keys(entry).find((k) => k !== 'name') ?? 'none';
      out.push({ name, unsupported: kind });
      return;
    }
    const provider = parseExtAuthzHttp(http, `${here}.envoyExtAuthzHttp`, issues);
    if (provider !== undefined) out.push({ name, envoyExtAuthzHttp: provider });
  });
  return out;
}

function parseExtAuthzHttp(
  raw: unknown,
  at: string,
  issues: ValidationIssue[],
): ExtAuthzHttpProvider | undefined {
  if (!isObj(raw)) {
    issues.push({ path: at, message: 'must be a mapping' });
    return undefined;
  }
  const before = issues.length;
  const service = raw['service'];
  if (typeof service !== 'string' || service === '' || /[\s@?#]/.test(service))
    issues.push({
      path: `${at}.service`,
      message: 'must be a service hostname or <namespace>/<name>',
    });
  const portRaw = raw['port'];
  const port = typeof portRaw === 'string' && /^\d+$/.test(portRaw) ? Number(portRaw) : portRaw;
  // Istio: "port must be in the range [1, 65535]".
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
    issues.push({ path: `${at}.port`, message: 'must be in the range [1, 65535]' });
  let timeoutMs = DEFAULT_EXT_AUTHZ_TIMEOUT_MS;
  if (raw['timeout'] !== undefined) {
    const t = durationMs(raw['timeout']);
    if (t === undefined)
      issues.push({ path: `${at}.timeout`, message: 'must be a positive duration such as 0.5s' });
    else timeoutMs = t;
  }
  const pathPrefix = raw['pathPrefix'] ?? '';
  // Istio: "pathPrefix must begin with `/`".
  if (typeof pathPrefix !== 'string' || (pathPrefix !== '' && !/^\/[^\s?#]*$/.test(pathPrefix)))
    issues.push({ path: `${at}.pathPrefix`, message: 'must begin with / and hold no query' });
  const failOpen = raw['failOpen'] ?? false;
  if (typeof failOpen !== 'boolean')
    issues.push({ path: `${at}.failOpen`, message: 'must be a boolean' });
  let statusOnError = 403;
  if (raw['statusOnError'] !== undefined) {
    const v = raw['statusOnError'];
    const s = typeof v === 'string' || typeof v === 'number' ? String(v) : '';
    // Istio parses statusOnError as an Envoy StatusCode (an HTTP status).
    if (!/^[1-5]\d\d$/.test(s))
      issues.push({ path: `${at}.statusOnError`, message: 'must be an HTTP status code' });
    else statusOnError = Number(s);
  }
  const list = (key: string): string[] => {
    const v = raw[key] ?? [];
    if (
      !Array.isArray(v) ||
      v.some((h) => typeof h !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(h))
    ) {
      issues.push({ path: `${at}.${key}`, message: 'must be a list of header names' });
      return [];
    }
    return (v as string[]).map((h) => h.toLowerCase());
  };
  // `includeHeadersInCheck` is the deprecated name of `includeRequestHeadersInCheck`.
  const include = [...list('includeRequestHeadersInCheck'), ...list('includeHeadersInCheck')];
  const headersToUpstreamOnAllow = list('headersToUpstreamOnAllow');
  const headersToDownstreamOnDeny = list('headersToDownstreamOnDeny');
  if (issues.length > before) return undefined;
  return {
    service: service as string,
    port: port as number,
    timeoutMs,
    pathPrefix: pathPrefix as string,
    failOpen: failOpen as boolean,
    statusOnError,
    includeRequestHeadersInCheck: include,
    headersToUpstreamOnAllow,
    headersToDownstreamOnDeny,
  };
}

/** Reads {@link parsePolicyMeshConfig} from a file. */
export function readPolicyMeshConfig(path: string): PolicyMeshConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new PalisadeError('PAL_ERR_FILE_READ', `${path}: cannot read`);
  }
  return parsePolicyMeshConfig(text, path);
}
