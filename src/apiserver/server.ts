/**
 * The API server: a Kubernetes-compatible REST API over HTTPS that `kubectl`
 * uses unmodified. Every request goes through the chain kube-apiserver
 * documents — authentication → impersonation → authorization → admission
 * (mutating, then validating) → validation → store — and errors come back as
 * `meta/v1` Status objects worded as Kubernetes words them.
 *
 * Kubernetes: "Controlling Access to the Kubernetes API", "API Concepts"
 * (resourceVersion, watch, 410 Gone, bookmarks, server-side printing).
 */
import { constants as cryptoConstants, randomInt, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { validateMeshObject } from '../api/index.js';
import {
  admitPod,
  formatLevelVersion,
  podTemplateOf,
  type RequestAttributes,
} from '../kubernetes/index.js';
import {
  createAuthenticator,
  createServiceAccountTokens,
  readTokenAuthFile,
  type AuthUser,
} from './authn.js';
import { createStoreAuthorizer, type Authorizer } from './authz.js';
import {
  createChainAuthorizer,
  createWebhookAuthorizer,
  type AuthorizationMode,
  type WebhookAuthorizerOptions,
} from './authz-chain.js';
import { createWebhookTokenAuthenticator } from './authn-webhook.js';
import { alwaysPullImages } from './admission/always-pull-images.js';
import { admitQuota, refreshQuotas } from './admission/quota.js';
import { createWebhookAdmission, validateWebhookConfiguration } from './admission/webhooks.js';
import { auditLevel, microTime, openAuditLog, type AuditPolicy, type AuditSink } from './audit.js';
import type { WebhookTarget } from './webhook-client.js';
import { bootstrapPolicy } from './bootstrap-policy.js';
import { decodeKubernetesProtobuf } from './protobuf.js';
import { openApiV3Document, openApiV3Root } from './openapi.js';
import { createOidcAuthenticator, type OidcOptions } from './oidc.js';
import { jsonPatch, mergePatch, strategicMergePatch, TestFailed } from './patch.js';
import type { ApiServerPki } from './pki.js';
import { requestInfo, type RequestInfo } from './request-info.js';
import {
  apiGroups,
  findKind,
  findResource,
  groupVersion,
  qualifiedResource,
  RESOURCE_TYPES,
  storageKey,
  storagePrefix,
  verbsOf,
  versionsOf,
  type ResourceType,
} from './resources.js';
import { objectFilter } from './selectors.js';
import {
  alreadyExists,
  ApiError,
  badRequest,
  conflict,
  forbiddenByAdmission,
  invalid,
  notFound,
} from './status.js';
import { StoreError, type KubeObject, type ObjectStore, type StoredObject } from './store/types.js';
import { toTable, wantsTable } from './table.js';

/** Kubernetes' request body limit (3 MiB). */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;
/** The Kubernetes version this server reports and matches. */
export const KUBERNETES_VERSION = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-palisade',
} as const;
const DEFAULT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
const NAMESPACE_TYPE = findResource('', 'v1', 'namespaces') as ResourceType;
const SA_TYPE = findResource('', 'v1', 'serviceaccounts') as ResourceType;
const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public'];
const MESH_GROUPS = new Set([
  'networking.istio.io',
  'security.istio.io',
  'palisade.dev',
  'rbac.authorization.k8s.io',
  'networking.k8s.io',
]);

export interface ApiServerOptions {
  readonly store: ObjectStore;
  readonly pki: ApiServerPki;
  readonly host: string;
  readonly port: number;
  /** `--client-ca-file`: further CAs whose client certificates are accepted. */
  readonly clientCaPem?: string;
  /** `--oidc-*`: OpenID Connect ID tokens. */
  readonly oidc?: OidcOptions;
  /** `--token-auth-file`. */
  readonly tokenAuthFile?: string;
  /** `--anonymous-auth` (default false). */
  readonly anonymous?: boolean;
  /** `--service-account-issuer`. */
  readonly serviceAccountIssuer?: string;
  /** Default-on admission plugins turned off (`--disable-admission-plugins`). */
  readonly disabledAdmissionPlugins?: readonly string[];
  /** Opt-in admission plugins turned on (`--enable-admission-plugins`): AlwaysPullImages. */
  readonly enabledAdmissionPlugins?: readonly string[];
  /** `--authentication-token-webhook-config-file` and `--authentication-token-webhook-cache-ttl`. */
  readonly tokenWebhook?: { readonly target: WebhookTarget; readonly cacheTtlMs: number };
  /** `--authorization-mode` (default RBAC). */
  readonly authorizationModes?: readonly AuthorizationMode[];
  /** `--authorization-webhook-config-file` and its cache TTLs. */
  readonly authorizationWebhook?: WebhookAuthorizerOptions;
  /** `--audit-policy-file`, read. */
  readonly auditPolicy?: AuditPolicy;
  /** `--audit-log-path` (`-` for stdout). */
  readonly auditLogPath?: string;
  /** Interval of watch BOOKMARK events when a client allows them (default 60 s). */
  readonly bookmarkIntervalMs?: number;
}

export interface ApiServer {
  /** `https://HOST:PORT`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly info: RequestInfo;
  readonly user: AuthUser;
  readonly warnings: string[];
  /** Audit annotations the chain adds (authorization decision, PodSecurity, webhooks). */
  readonly annotations: Record<string, string>;
}

function rfc3339(d = new Date()): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

function rec(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

const NAME_CHARS = 'bcdfghjklmnpqrstvwxz2456789';
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** `names.SimpleNameGenerator`: the prefix plus five random characters. */
function generateName(prefix: string): string {
  let s = prefix.slice(0, 63 - 5);
  for (let i = 0; i < 5; i++) s += NAME_CHARS[randomInt(NAME_CHARS.length)] ?? 'x';
  return s;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        // Stop buffering and answer 413; drain what the client still sends, up to a bound.
        req.off('data', onData);
        let drained = 0;
        req.on('data', (d: Buffer) => {
          drained += d.length;
          if (drained > 4 * MAX_BODY_BYTES) req.socket.destroy();
        });
        reject(new ApiError('RequestEntityTooLarge', 'Request entity too large: limit is 3145728'));
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('end', () => {
      resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

async function readObject(req: IncomingMessage): Promise<unknown> {
  const o = await decodeObject(req);
  readBodies.set(req, o);
  return o;
}

async function decodeObject(req: IncomingMessage): Promise<unknown> {
  const bytes = await readBody(req);
  const type = (req.headers['content-type'] ?? 'application/json').split(';')[0]?.trim() ?? '';
  if (type === 'application/vnd.kubernetes.protobuf') return decodeKubernetesProtobuf(bytes);
  if (type === 'application/cbor')
    throw new ApiError(
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf`,
    );
  const body = bytes.toString('utf8');
  try {
    if (type.endsWith('yaml')) return parseYaml(body, { maxAliasCount: 100 }) as unknown;
    return JSON.parse(body) as unknown;
  } catch (e) {
    throw badRequest(
      `the request body could not be decoded: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

function send(
  ctx: { res: ServerResponse; warnings?: readonly string[] },
  code: number,
  body: unknown,
): void {
  const text = JSON.stringify(body);
  const headers: Record<string, string | string[]> = {
    'content-type': 'application/json',
    'cache-control': 'no-cache, private',
    'x-content-type-options': 'nosniff',
  };
  if (ctx.warnings !== undefined && ctx.warnings.length > 0) {
    // RFC 7234 §5.5 warn-code 299, as kube-apiserver sends admission warnings.
    headers.warning = ctx.warnings.map((w) => `299 - ${JSON.stringify(w.replace(/[\r\n]/g, ' '))}`);
  }
  ctx.res.writeHead(code, headers);
  ctx.res.end(text);
  sentBodies.set(ctx.res, { code, body });
}

/** What each response carried, for the audit log's responseStatus and responseObject. */
const sentBodies = new WeakMap<ServerResponse, { code: number; body: unknown }>();
/** Each request's decoded body, for the audit log's requestObject. */
const readBodies = new WeakMap<IncomingMessage, unknown>();

interface AuditRecord {
  readonly deps: { readonly policy: AuditPolicy; readonly sink: AuditSink };
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly info: RequestInfo;
  readonly user: AuthUser | undefined;
  impersonated?: AuthUser;
  readonly id: string;
  readonly level: string;
  readonly omitStages: readonly string[];
  readonly received: Date;
  readonly annotations: Record<string, string>;
}

function userInfo(u: AuthUser): Record<string, unknown> {
  return {
    username: u.name,
    ...(u.uid === undefined ? {} : { uid: u.uid }),
    groups: u.groups,
    ...(u.extra === undefined ? {} : { extra: u.extra }),
  };
}

function auditEvent(a: AuditRecord, stage: string): Record<string, unknown> {
  const { info } = a;
  const remote = (a.req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  const event: Record<string, unknown> = {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: a.level,
    auditID: a.id,
    stage,
    requestURI: a.req.url ?? '/',
    verb: info.verb,
    user: a.user === undefined ? {} : userInfo(a.user),
    ...(a.impersonated === undefined ? {} : { impersonatedUser: userInfo(a.impersonated) }),
    sourceIPs: [remote],
    ...(a.req.headers['user-agent'] === undefined
      ? {}
      : { userAgent: a.req.headers['user-agent'] }),
  };
  if (info.isResourceRequest) {
    const body = rec(readBodies.get(a.req));
    const meta = rec(body.metadata);
    const name = info.name !== '' ? info.name : str(meta.name);
    event.objectRef = {
      resource: info.resource,
      ...(info.namespace === '' ? {} : { namespace: info.namespace }),
      ...(name === '' ? {} : { name }),
      apiGroup: info.apiGroup,
      apiVersion: info.apiVersion,
      ...(info.subresource === '' ? {} : { subresource: info.subresource }),
    };
  }
  if (stage !== 'RequestReceived') {
    const sent = sentBodies.get(a.res);
    const code = sent?.code ?? a.res.statusCode;
    const b = rec(sent?.body);
    event.responseStatus =
      code >= 400 && b.kind === 'Status'
        ? {
            metadata: {},
            status: b.status,
            message: b.message,
            reason: b.reason,
            ...(b.details === undefined ? {} : { details: b.details }),
            code,
          }
        : { metadata: {}, code };
    if ((a.level === 'Request' || a.level === 'RequestResponse') && readBodies.has(a.req))
      event.requestObject = readBodies.get(a.req);
    if (a.level === 'RequestResponse' && sent !== undefined) event.responseObject = sent.body;
  }
  event.requestReceivedTimestamp = microTime(a.received);
  event.stageTimestamp = microTime(new Date());
  if (Object.keys(a.annotations).length > 0 && stage !== 'RequestReceived')
    event.annotations = { ...a.annotations };
  return event;
}

function startAudit(
  deps: { readonly policy: AuditPolicy; readonly sink: AuditSink },
  req: IncomingMessage,
  res: ServerResponse,
  info: RequestInfo,
  user: AuthUser | undefined,
  received: Date,
  annotations: Record<string, string>,
): AuditRecord | undefined {
  const { level, omitStages } = auditLevel(deps.policy, user, info);
  if (level === 'None') return undefined;
  const header = req.headers['audit-id'];
  const id = typeof header === 'string' && /^[\w-]{1,64}$/.test(header) ? header : randomUUID();
  res.setHeader('audit-id', id);
  const a: AuditRecord = {
    deps,
    req,
    res,
    info,
    user,
    id,
    level,
    omitStages,
    received,
    annotations,
  };
  if (!omitStages.includes('RequestReceived')) deps.sink.write(auditEvent(a, 'RequestReceived'));
  return a;
}

/** ResponseComplete now, or ResponseStarted now and ResponseComplete when a watch ends. */
function finishAudit(a: AuditRecord): void {
  const emit = (stage: string): void => {
    if (!a.omitStages.includes(stage)) a.deps.sink.write(auditEvent(a, stage));
  };
  if (a.res.writableEnded || a.res.destroyed) {
    emit('ResponseComplete');
    return;
  }
  emit('ResponseStarted');
  a.res.once('close', () => {
    emit('ResponseComplete');
  });
}

/** Starts the API server; resolves once it listens. */
export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { store, pki } = options;
  const saTokens = createServiceAccountTokens({
    privateKey: pki.saPrivateKey,
    publicKey: pki.saPublicKey,
    issuer: options.serviceAccountIssuer ?? DEFAULT_ISSUER,
  });
  const authenticate = createAuthenticator({
    ...(options.tokenAuthFile === undefined
      ? {}
      : { staticTokens: readTokenAuthFile(options.tokenAuthFile) }),
    serviceAccountTokens: saTokens,
    serviceAccountUid: async (ns, name) => {
      const sa = await store.get(storageKey(SA_TYPE, ns, name));
      return sa === undefined ? undefined : str(sa.object.metadata?.uid);
    },
    anonymous: options.anonymous ?? false,
    ...(options.oidc === undefined ? {} : { oidc: createOidcAuthenticator(options.oidc) }),
    ...(options.tokenWebhook === undefined
      ? {}
      : { webhook: createWebhookTokenAuthenticator(options.tokenWebhook) }),
  });
  await bootstrap(store);
  const authorizer = createChainAuthorizer(
    options.authorizationModes ?? ['RBAC'],
    await createStoreAuthorizer(store),
    options.authorizationWebhook === undefined
      ? undefined
      : createWebhookAuthorizer(options.authorizationWebhook),
  );
  const disabled = new Set(options.disabledAdmissionPlugins ?? []);
  const enabled = new Set(options.enabledAdmissionPlugins ?? []);
  const auditSink =
    options.auditPolicy !== undefined && options.auditLogPath !== undefined
      ? openAuditLog(options.auditLogPath)
      : undefined;
  const bookmarkIntervalMs = options.bookmarkIntervalMs ?? 60_000;
  const openWatches = new Set<() => void>();
  const handler = createHandler({
    store,
    authorizer,
    authenticate,
    saTokens,
    disabled,
    enabled,
    webhooks: createWebhookAdmission(store),
    ...(auditSink === undefined || options.auditPolicy === undefined
      ? {}
      : { audit: { policy: options.auditPolicy, sink: auditSink } }),
    bookmarkIntervalMs,
    openWatches,
    address: () => `${options.host}:${String(port)}`,
  });
  const server: Server = createServer(
    {
      key: pki.serving.keyPem,
      cert: pki.serving.certPem,
      ca:
        options.clientCaPem === undefined ? pki.ca.certPem : [pki.ca.certPem, options.clientCaPem],
      requestCert: true,
      // Client certificates are optional (Go's VerifyClientCertIfGiven): a token user sends none.
      // Node still verifies a presented one against `ca`; authn reads socket.authorized.
      // eslint-disable-next-line no-restricted-syntax
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      // No session tickets: a resumed session carries no peer certificate in Node.
      secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
    },
    (req, res) => {
      void handler(req, res);
    },
  );
  server.headersTimeout = 30_000;
  server.requestTimeout = 0; // watches are long-running
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `https://${host}:${String(port)}`,
    port,
    async close() {
      for (const stop of openWatches) stop();
      authorizer.close();
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      });
      auditSink?.close();
    },
  };
}

/** Creates the bootstrap RBAC policy and the system namespaces when absent. */
async function bootstrap(store: ObjectStore): Promise<void> {
  for (const object of bootstrapPolicy()) {
    const t = findKind(str(object.apiVersion), str(object.kind));
    if (t === undefined) continue;
    const key = storageKey(t, undefined, str(object.metadata?.name));
    if ((await store.get(key)) === undefined)
      await store.create(key, withSystemFields(object, undefined));
  }
  for (const ns of SYSTEM_NAMESPACES) {
    const key = storageKey(NAMESPACE_TYPE, undefined, ns);
    if ((await store.get(key)) === undefined) {
      await store.create(
        key,
        withSystemFields(
          {
            apiVersion: 'v1',
            kind: 'Namespace',
            metadata: { name: ns, labels: { 'kubernetes.io/metadata.name': ns } },
            spec: { finalizers: ['kubernetes'] },
            status: { phase: 'Active' },
          },
          undefined,
        ),
      );
      await ensureDefaultServiceAccount(store, ns);
    }
  }
}

/** The service-account controller's job: every namespace has `default`. */
async function ensureDefaultServiceAccount(store: ObjectStore, ns: string): Promise<void> {
  const key = storageKey(SA_TYPE, ns, 'default');
  if ((await store.get(key)) !== undefined) return;
  try {
    await store.create(
      key,
      withSystemFields(
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: ns } },
        undefined,
      ),
    );
  } catch (e) {
    if (!(e instanceof StoreError && e.reason === 'AlreadyExists')) throw e;
  }
}

/** uid, creationTimestamp, generation: set by the server, never by the client. */
function withSystemFields(object: KubeObject, namespace: string | undefined): KubeObject {
  const metadata = { ...rec(object.metadata) };
  metadata.uid = randomUUID();
  metadata.creationTimestamp = rfc3339();
  metadata.generation = 1;
  if (namespace !== undefined) metadata.namespace = namespace;
  for (const f of [
    'resourceVersion',
    'deletionTimestamp',
    'deletionGracePeriodSeconds',
    'selfLink',
    'managedFields',
  ])
    Reflect.deleteProperty(metadata, f);
  return { ...object, metadata };
}

interface HandlerDeps {
  readonly store: ObjectStore;
  readonly authorizer: Authorizer;
  readonly authenticate: (req: IncomingMessage) => Promise<AuthUser>;
  readonly saTokens: ReturnType<typeof createServiceAccountTokens>;
  readonly disabled: ReadonlySet<string>;
  readonly enabled: ReadonlySet<string>;
  readonly webhooks: ReturnType<typeof createWebhookAdmission>;
  readonly audit?: { readonly policy: AuditPolicy; readonly sink: AuditSink };
  readonly bookmarkIntervalMs: number;
  readonly openWatches: Set<() => void>;
  readonly address: () => string;
}

function forbiddenMessage(attrs: RequestAttributes): string {
  const user = attrs.user.name;
  if (attrs.nonResourceURL !== undefined)
    return `User ${JSON.stringify(user)} cannot ${attrs.verb} path ${JSON.stringify(attrs.nonResourceURL)}`;
  let resource = attrs.resource ?? '';
  if (attrs.subresource !== undefined && attrs.subresource !== '')
    resource += `/${attrs.subresource}`;
  const ns = attrs.namespace ?? '';
  const where = ns === '' ? 'at the cluster scope' : `in the namespace ${JSON.stringify(ns)}`;
  return `User ${JSON.stringify(user)} cannot ${attrs.verb} resource ${JSON.stringify(resource)} in API group ${JSON.stringify(attrs.apiGroup ?? '')} ${where}`;
}

/** NewForbidden: `pods "x" is forbidden: <msg>`, `pods is forbidden: ...`, or `forbidden: ...`. */
function forbidden(attrs: RequestAttributes, info: RequestInfo, reason: string): ApiError {
  let msg = forbiddenMessage(attrs);
  if (reason !== '') msg = `${msg}: ${reason}`;
  if (attrs.nonResourceURL !== undefined) return new ApiError('Forbidden', `forbidden: ${msg}`, {});
  const qr =
    attrs.apiGroup === undefined || attrs.apiGroup === ''
      ? (attrs.resource ?? '')
      : `${attrs.resource ?? ''}.${attrs.apiGroup}`;
  const name = attrs.name ?? '';
  return new ApiError('Forbidden', `${qr}${name === '' ? '' : ` "${name}"`} is forbidden: ${msg}`, {
    ...(name === '' ? {} : { name }),
    ...(attrs.apiGroup === undefined || attrs.apiGroup === '' ? {} : { group: attrs.apiGroup }),
    kind: attrs.resource ?? '',
  });
}

function attributesOf(user: AuthUser, info: RequestInfo): RequestAttributes {
  // uid and extra ride along for the Webhook mode's SubjectAccessReview; RBAC reads name and groups.
  const u = {
    name: user.name,
    groups: user.groups,
    ...(user.uid === undefined ? {} : { uid: user.uid }),
    ...(user.extra === undefined ? {} : { extra: user.extra }),
  };
  if (!info.isResourceRequest) return { user: u, verb: info.verb, nonResourceURL: info.path };
  return {
    user: u,
    verb: info.verb,
    apiGroup: info.apiGroup,
    resource: info.resource,
    ...(info.subresource === '' ? {} : { subresource: info.subresource }),
    ...(info.name === '' ? {} : { name: info.name }),
    ...(info.namespace === '' ? {} : { namespace: info.namespace }),
  };
}

function createHandler(
  deps: HandlerDeps,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { authorizer } = deps;

  const authorize = async (
    user: AuthUser,
    info: RequestInfo,
    annotations: Record<string, string>,
  ): Promise<void> => {
    const attrs = attributesOf(user, info);
    const d = await authorizer.authorize(attrs);
    annotations['authorization.k8s.io/decision'] = d.allowed ? 'allow' : 'forbid';
    annotations['authorization.k8s.io/reason'] = d.reason;
    if (!d.allowed) throw forbidden(attrs, info, d.reason);
  };

  /** Impersonate-User / -Group / -Uid / -Extra-*: each checked with the `impersonate` verb. */
  const impersonate = async (req: IncomingMessage, user: AuthUser): Promise<AuthUser> => {
    const as = req.headersDistinct['impersonate-user']?.[0];
    const asGroups = req.headersDistinct['impersonate-group'] ?? [];
    const asUid = req.headersDistinct['impersonate-uid']?.[0];
    const extraHeaders = Object.keys(req.headers).filter((h) => h.startsWith('impersonate-extra-'));
    if (as === undefined) {
      if (asGroups.length > 0 || asUid !== undefined || extraHeaders.length > 0)
        throw new ApiError(
          'InternalError',
          'requested impersonation without a user; Impersonate-User is required',
        );
      return user;
    }
    const check = async (
      resource: string,
      name: string,
      namespace = '',
      apiGroup = '',
    ): Promise<void> => {
      const attrs: RequestAttributes = {
        user: { name: user.name, groups: user.groups },
        verb: 'impersonate',
        apiGroup,
        resource,
        name,
        ...(namespace === '' ? {} : { namespace }),
      };
      const d = await authorizer.authorize(attrs);
      if (!d.allowed) {
        const where =
          namespace === ''
            ? 'at the cluster scope'
            : `in the namespace ${JSON.stringify(namespace)}`;
        throw new ApiError(
          'Forbidden',
          `${resource}${apiGroup === '' ? '' : `.${apiGroup}`} ${JSON.stringify(name)} is forbidden: User ${JSON.stringify(user.name)} cannot impersonate resource ${JSON.stringify(resource)} in API group ${JSON.stringify(apiGroup)} ${where}`,
          { name, kind: resource },
        );
      }
    };
    const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(as);
    const groups = [...asGroups];
    if (sa !== null) {
      await check('serviceaccounts', sa[2] ?? '', sa[1] ?? '');
      groups.push('system:serviceaccounts', `system:serviceaccounts:${sa[1] ?? ''}`);
    } else await check('users', as);
    for (const g of asGroups) await check('groups', g);
    if (asUid !== undefined) await check('uids', asUid, '', 'authentication.k8s.io');
    const extra: Record<string, string[]> = {};
    for (const h of extraHeaders) {
      const key = decodeURIComponent(h.slice('impersonate-extra-'.length));
      const values = req.headersDistinct[h] ?? [];
      for (const v of values) await check(`userextras/${key}`, v, '', 'authentication.k8s.io');
      extra[key] = values;
    }
    if (as !== 'system:anonymous' && !groups.includes('system:authenticated'))
      groups.push('system:authenticated');
    if (as === 'system:anonymous' && !groups.includes('system:unauthenticated'))
      groups.push('system:unauthenticated');
    return {
      name: as,
      groups: [...new Set(groups)],
      ...(asUid === undefined ? {} : { uid: asUid }),
      ...(extraHeaders.length === 0 ? {} : { extra }),
    };
  };

  return async (req, res) => {
    const warnings: string[] = [];
    const annotations: Record<string, string> = {};
    const received = new Date();
    let audit: AuditRecord | undefined;
    try {
      // Dot segments (plain or percent-encoded), encoded slashes and empty segments are refused
      // before URL parsing could resolve them, so routing and authorization see one path.
      const rawPath = (req.url ?? '/').split('?')[0] ?? '/';
      if (
        !rawPath.startsWith('/') ||
        rawPath.includes('//') ||
        /%2f|%5c|\\/i.test(rawPath) ||
        rawPath.split('/').some((seg) => /^(\.|%2e){1,2}$/i.test(seg))
      )
        throw badRequest(`invalid path ${JSON.stringify(rawPath)}`);
      const url = new URL(req.url ?? '/', 'https://apiserver.invalid');
      const path = url.pathname;
      const info = requestInfo(req.method ?? 'GET', path, url.searchParams);
      let authenticated: AuthUser;
      try {
        authenticated = await deps.authenticate(req);
      } catch (e) {
        if (deps.audit !== undefined)
          audit = startAudit(deps.audit, req, res, info, undefined, received, annotations);
        throw e;
      }
      if (deps.audit !== undefined)
        audit = startAudit(deps.audit, req, res, info, authenticated, received, annotations);
      const user = await impersonate(req, authenticated);
      if (audit !== undefined && user !== authenticated) audit.impersonated = user;
      await authorize(user, info, annotations);
      const ctx: RequestContext = { req, res, url, info, user, warnings, annotations };
      if (!info.isResourceRequest) {
        handleNonResource(ctx, deps);
        return;
      }
      await handleResource(ctx, deps);
    } catch (e) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      send({ res, warnings }, ...errorStatus(e));
    } finally {
      if (audit !== undefined) finishAudit(audit);
    }
  };
}

/** Maps any error to a status code and Status body, once (STYLE.md §4). */
function errorStatus(e: unknown): [number, Record<string, unknown>] {
  if (e instanceof ApiError) return [e.code, e.toStatus()];
  if (e instanceof StoreError && e.reason === 'Unavailable') {
    const err = new ApiError('ServiceUnavailable', 'the storage backend is unavailable');
    return [err.code, err.toStatus()];
  }
  const err = new ApiError(
    'InternalError',
    'Internal error occurred: an unexpected error; see the server log',
  );
  process.stderr.write(
    `apiserver: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
  );
  return [err.code, err.toStatus()];
}

function handleNonResource(ctx: RequestContext, deps: HandlerDeps): void {
  const p = ctx.info.path.replace(/\/+$/, '') || '/';
  if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD')
    throw new ApiError(
      'MethodNotAllowed',
      'the server does not allow this method on the requested resource',
    );
  if (p === '/healthz' || p === '/livez' || p === '/readyz') {
    ctx.res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    ctx.res.end('ok');
    return;
  }
  if (p === '/version') {
    send(ctx, 200, {
      ...KUBERNETES_VERSION,
      gitCommit: '',
      gitTreeState: 'clean',
      buildDate: '2026-01-01T00:00:00Z',
      goVersion: `node${process.versions.node}`,
      compiler: 'tsc',
      platform: `${process.platform}/${process.arch}`,
    });
    return;
  }
  if (p === '/openapi/v3') {
    send(ctx, 200, openApiV3Root());
    return;
  }
  if (p === '/openapi/v2') {
    // No schemas are published (see openapi.ts). kubectl falls back to v2 for kinds without a
    // PATCH operation in v3 (the create-only reviews: `kubectl create -f sar.yaml`), and its
    // v2 validator skips kinds the document does not define — so an empty Swagger 2.0
    // document, as protobuf (openapi_v2.Document{swagger: "2.0"}) when asked, or JSON.
    if ((ctx.req.headers.accept ?? '').includes('protobuf')) {
      ctx.res.writeHead(200, {
        'content-type': 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf',
      });
      ctx.res.end(Buffer.from([0x0a, 0x03, 0x32, 0x2e, 0x30]));
      return;
    }
    send(ctx, 200, {
      swagger: '2.0',
      info: { title: 'Palisade API server', version: KUBERNETES_VERSION.gitVersion },
      paths: {},
      definitions: {},
    });
    return;
  }
  const oa = /^\/openapi\/v3\/(?:api\/([^/]+)|apis\/([^/]+)\/([^/]+))$/.exec(p);
  if (oa !== null) {
    const doc =
      oa[1] !== undefined
        ? openApiV3Document('', oa[1])
        : openApiV3Document(oa[2] ?? '', oa[3] ?? '');
    if (doc !== undefined) {
      send(ctx, 200, doc);
      return;
    }
  }
  if (p === '/api') {
    send(ctx, 200, {
      kind: 'APIVersions',
      versions: ['v1'],
      serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: deps.address() }],
    });
    return;
  }
  if (p === '/apis') {
    send(ctx, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: apiGroups().map(groupDoc) });
    return;
  }
  const g = /^\/apis\/([^/]+)$/.exec(p);
  if (g !== null) {
    const doc = apiGroups().find((x) => x.name === g[1]);
    if (doc !== undefined) {
      send(ctx, 200, { kind: 'APIGroup', apiVersion: 'v1', ...groupDoc(doc) });
      return;
    }
  }
  if (p === '/api/v1') {
    send(ctx, 200, resourceList('', 'v1'));
    return;
  }
  const gv = /^\/apis\/([^/]+)\/([^/]+)$/.exec(p);
  if (gv !== null) {
    const list = resourceList(gv[1] ?? '', gv[2] ?? '');
    if (list.resources.length > 0) {
      send(ctx, 200, list);
      return;
    }
  }
  throw new ApiError('NotFound', 'the server could not find the requested resource', {});
}

function groupDoc(g: { name: string; versions: string[] }): Record<string, unknown> {
  const versions = g.versions.map((v) => ({ groupVersion: `${g.name}/${v}`, version: v }));
  return { name: g.name, versions, preferredVersion: versions[0] };
}

function resourceList(
  group: string,
  version: string,
): { resources: Record<string, unknown>[] } & Record<string, unknown> {
  const resources: Record<string, unknown>[] = [];
  for (const t of RESOURCE_TYPES) {
    if (t.group !== group || !versionsOf(t).includes(version)) continue;
    resources.push({
      name: t.plural,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: verbsOf(t),
      ...(t.shortNames === undefined ? {} : { shortNames: t.shortNames }),
      ...(t.categories === undefined ? {} : { categories: t.categories }),
    });
    for (const sub of t.subresources ?? []) {
      resources.push({
        name: `${t.plural}/${sub}`,
        singularName: '',
        namespaced: t.namespaced,
        kind: sub === 'token' ? 'TokenRequest' : t.kind,
        ...(sub === 'token' ? { group: 'authentication.k8s.io', version: 'v1' } : {}),
        verbs:
          sub === 'token'
            ? ['create']
            : sub === 'finalize'
              ? ['update']
              : ['get', 'patch', 'update'],
      });
    }
  }
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group === '' ? version : `${group}/${version}`,
    resources,
  };
}

/** Sets apiVersion/kind for the version the client asked for. */
function asVersion(t: ResourceType, version: string, o: KubeObject): KubeObject {
  return { ...o, apiVersion: t.group === '' ? version : `${t.group}/${version}`, kind: t.kind };
}

async function handleResource(ctx: RequestContext, deps: HandlerDeps): Promise<void> {
  const { info } = ctx;
  const t = findResource(info.apiGroup, info.apiVersion, info.resource);
  if (t === undefined)
    throw new ApiError('NotFound', 'the server could not find the requested resource', {});
  if (t.virtual === true) {
    if (info.verb !== 'create')
      throw new ApiError(
        'MethodNotAllowed',
        `the server does not allow this method on the requested resource`,
      );
    await handleReview(ctx, deps, t);
    return;
  }
  const namespace = t.namespaced ? (info.namespace === '' ? undefined : info.namespace) : undefined;
  if (!t.namespaced && info.namespace !== '' && t.kind !== 'Namespace')
    throw new ApiError('NotFound', 'the server could not find the requested resource', {});
  if (info.subresource !== '' && !(t.subresources ?? []).includes(info.subresource))
    throw new ApiError('NotFound', 'the server could not find the requested resource', {});
  if (info.subresource === 'token') {
    await handleTokenRequest(ctx, deps, namespace ?? '');
    return;
  }
  switch (info.verb) {
    case 'get':
      await handleGet(ctx, deps, t, namespace);
      return;
    case 'list':
      await handleList(ctx, deps, t, namespace);
      return;
    case 'watch':
      await handleWatch(ctx, deps, t, namespace);
      return;
    case 'create':
      await handleCreate(ctx, deps, t, namespace);
      return;
    case 'update':
      await handleUpdate(ctx, deps, t, namespace);
      return;
    case 'patch':
      await handlePatch(ctx, deps, t, namespace);
      return;
    case 'delete':
      await handleDelete(ctx, deps, t, namespace);
      return;
    case 'deletecollection':
      await handleDeleteCollection(ctx, deps, t, namespace);
      return;
    default:
      throw new ApiError(
        'MethodNotAllowed',
        'the server does not allow this method on the requested resource',
      );
  }
}

function outObject(ctx: RequestContext, t: ResourceType, o: KubeObject): KubeObject {
  return asVersion(t, ctx.info.apiVersion, o);
}

async function handleGet(
  ctx: RequestContext,
  deps: HandlerDeps,
  t: ResourceType,
  ns: string | undefined,
): Promise<void> {
  const got = await deps.store.get(storageKey(t, ns, ctx.info.name));
  if (got === undefined) throw notFound(t, ctx.info.name);
  const o = outObject(ctx, t, got.object);
  if (wantsTable(ctx.req.headers.accept))
    send(ctx, 200, toTable(t, [o], { resourceVersion: String(got.revision) }));
  else send(ctx, 200, o);
}

async function handleList(
  ctx: RequestContext,
  deps: HandlerDeps,
  t: ResourceType,
  ns: string | undefined,
): Promise<void> {
  const q = ctx.url.searchParams;
  const filter = objectFilter(q.get('labelSelector'), q.get('fieldSelector'));
  const { items, revision } = await deps.store.list(storagePrefix(t, ns));
  const objects = items.map((i) => outObject(ctx, t, i.object)).filter(filter);
  const listMeta = { resourceVersion: String(revision) };
  if (wantsTable(ctx.req.headers.accept)) {
    send(ctx, 200, toTable(t, objects, listMeta));
    return;
  }
  send(ctx, 200, {
    kind: `${t.kind}List`,
    apiVersion: t.group === '' ? ctx.info.apiVersion : `${t.group}/${ctx.info.apiVersion}`,
    metadata: listMeta,
    items: objects,
  });
}

async function handleWatch(
  ctx: RequestContext,
  deps: HandlerDeps,
  t: ResourceType,
  ns: string | undefined,
): Promise<void> {
  const q = ctx.url.searchParams;
  const filter = objectFilter(q.get('labelSelector'), q.get('fieldSelector'));
  const table = wantsTable(ctx.req.headers.accept);
  const rvParam = q.get('resourceVersion') ?? '';
  const bookmarks = q.get('allowWatchBookmarks') === 'true';
  const timeoutSeconds = Number(q.get('timeoutSeconds') ?? '1800');
  const prefix = storagePrefix(t, ns);
  const res = ctx.res;
  let first = true;
  let lastRevision = 0;
  const write = (type: string, o: KubeObject): void => {
    const object =
      table && type !== 'BOOKMARK' && type !== 'ERROR'
        ? toTable(t, [o], { resourceVersion: str(o.metadata?.resourceVersion) }, first)
        : o;
    if (table && type !== 'BOOKMARK' && type !== 'ERROR') first = false;
    res.write(`${JSON.stringify({ type, object })}\n`);
  };
  let after: number;
  let initial: KubeObject[] = [];
  if (rvParam === '' || rvParam === '0') {
    // "Get State and Start at Most Recent": synthetic ADDED for what exists.
    const listed = await deps.store.list(prefix);
    initial = listed.items.map((i) => outObject(ctx, t, i.object)).filter(filter);
    after = listed.revision;
  } else {
    after = Number(rvParam);
    if (!Number.isSafeInteger(after) || after < 0)
      throw badRequest(`invalid resourceVersion ${JSON.stringify(rvParam)}`);
  }
  lastRevision = after;
  res.writeHead(200, {
    'content-type': 'application/json',
    'cache-control': 'no-cache, private',
    'transfer-encoding': 'chunked',
  });
  res.flushHeaders();
  for (const o of initial) write('ADDED', o);
  let stopped = false;
  let storeWatch: { cancel(): void } | undefined;
  const timers: NodeJS.Timeout[] = [];
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    storeWatch?.cancel();
    for (const tm of timers) clearInterval(tm);
    deps.openWatches.delete(stop);
    res.end();
  };
  deps.openWatches.add(stop);
  res.on('close', stop);
  try {
    storeWatch = deps.store.watch(
      prefix,
      after,
      (e) => {
        if (stopped) return;
        lastRevision = e.revision;
        const o = outObject(ctx, t, e.object);
        if (filter(o)) write(e.type, o);
      },
      (e) => {
        if (stopped) return;
        const status =
          e.reason === 'Gone'
            ? new ApiError('Expired', e.message)
            : new ApiError('InternalError', 'the watch ended: the storage backend is unavailable');
        write('ERROR', status.toStatus());
        stop();
      },
    );
  } catch (e) {
    if (e instanceof StoreError && e.reason === 'Gone') {
      write('ERROR', new ApiError('Expired', e.message).toStatus());
      stop();
      return;
    }
    stop();
    throw e;
  }
  if (bookmarks) {
    timers.push(
      setInterval(() => {
        write('BOOKMARK', {
          kind: t.kind,
          apiVersion: t.group === '' ? ctx.info.apiVersion : `${t.group}/${ctx.info.apiVersion}`,
          metadata: { resourceVersion: String(lastRevision) },
        });
      }, deps.bookmarkIntervalMs),
    );
  }
  if (Number.isFinite(timeoutSeconds) && timeoutSeconds > 0) {
    const tm = setTimeout(stop, Math.min(timeoutSeconds, 3600) * 1000);
    tm.unref();
    timers.push(tm);
  }
}

/**
 * Admission in kube-apiserver's order: NamespaceLifecycle; mutating
 * (ServiceAccount, AlwaysPullImages, MutatingAdmissionWebhook); validating
 * (PodSecurity, the mesh validator, webhook-configuration checks,
 * ValidatingAdmissionWebhook, ResourceQuota last, as its charge is the
 * commit point).
 */
async function admit(
  ctx: RequestContext,
  deps: HandlerDeps,
  t: ResourceType,
  ns: string | undefined,
  object: KubeObject,
  operation: 'CREATE' | 'UPDATE',
  oldObject?: KubeObject,
): Promise<KubeObject> {
  let o = object;
  const dryRun = ctx.url.searchParams.get('dryRun') === 'All';
  const webhookAttrs = (obj: KubeObject): Parameters<HandlerDeps['webhooks']['mutate']>[0] => ({
    operation,
    type: t,
    version: ctx.info.apiVersion,
    subresource: ctx.info.subresource,
    namespace: ns,
    name: str(obj.metadata?.name),
    object: obj,
    oldObject,
    user: ctx.user,
    dryRun,
  });
  const name = str(o.metadata?.name);
  // NamespaceLifecycle: no new content in a missing or terminating namespace.
  if (!deps.disabled.has('NamespaceLifecycle') && ns !== undefined && operation === 'CREATE') {
    const nsObj = await deps.store.get(storageKey(NAMESPACE_TYPE, undefined, ns));
    if (nsObj === undefined) throw notFound(NAMESPACE_TYPE, ns);
    if (nsObj.object.metadata?.deletionTimestamp !== undefined)
      throw forbiddenByAdmission(
        t,
        name,
        `unable to create new content in namespace ${ns} because it is being terminated`,
      );
  }
  if (t.kind === 'Pod' && ns !== undefined) {
    // ServiceAccount admission: default the service account, require that it exists.
    if (!deps.disabled.has('ServiceAccount') && operation === 'CREATE') {
      const spec = { ...rec(o.spec) };
      if (str(spec.serviceAccountName) === '') spec.serviceAccountName = 'default';
      spec.serviceAccount = spec.serviceAccountName;
      o = { ...o, spec };
      const sa = str(spec.serviceAccountName);
      if ((await deps.store.get(storageKey(SA_TYPE, ns, sa))) === undefined)
        throw forbiddenByAdmission(
          t,
          name,
          `error looking up service account ${ns}/${sa}: serviceaccount "${sa}" not found`,
        );
    }
    if (deps.enabled.has('AlwaysPullImages')) o = alwaysPullImages(o);
  }
  if (!deps.disabled.has('MutatingAdmissionWebhook')) {
    const r = await deps.webhooks.mutate(webhookAttrs(o));
    if (r.object !== undefined) o = r.object;
    ctx.warnings.push(...r.warnings);
    Object.assign(ctx.annotations, r.annotations);
  }
  if (t.kind === 'Pod' && ns !== undefined) {
    if (!deps.disabled.has('PodSecurity')) {
      const nsObj = await deps.store.get(storageKey(NAMESPACE_TYPE, undefined, ns));
      const labels = rec(nsObj?.object.metadata?.labels) as Record<string, string>;
      const ref = podTemplateOf(o);
      if (ref !== undefined) {
        const r = admitPod(ref, {
          namespace: ns,
          namespaceLabels: labels,
          username: ctx.user.name,
          kind: 'Pod',
        });
        ctx.warnings.push(...r.warnings);
        if (r.exempt === undefined) {
          ctx.annotations['pod-security.kubernetes.io/enforce-policy'] = formatLevelVersion(
            r.policy.enforce,
          );
        }
        if (r.auditViolations !== undefined)
          ctx.annotations['pod-security.kubernetes.io/audit-violations'] = r.auditViolations;
        if (!r.allowed) throw forbiddenByAdmission(t, name, r.message ?? 'violates PodSecurity');
      }
    }
  }
  // Palisade's validator for mesh and security kinds, as a built-in validating admission.
  if (MESH_GROUPS.has(t.group)) {
    const r = validateMeshObject(o);
    if (r.ok === false)
      throw invalid(
        t,
        name,
        r.issues.map((i) => ({ field: i.path, message: i.message })),
      );
  }
  if (t.group === 'admissionregistration.k8s.io') {
    const issues = validateWebhookConfiguration(o);
    if (issues.length > 0) throw invalid(t, name, issues);
  }
  if (!deps.disabled.has('ValidatingAdmissionWebhook')) {
    const r = await deps.webhooks.validate(webhookAttrs(o));
    ctx.warnings.push(...r.warnings);
    Object.assign(ctx.annotations, r.annotations);
  }
  if (!deps.disabled.has('ResourceQuota') && ns !== undefined && operation === 'CREATE')
    await admitQuota(deps.store, RESOURCE_TYPES, t, ns, o, dryRun);
  return o;
}

/** Object names: DNS subdomains (namespaces and Istio names: DNS labels). */
function validateName(t: ResourceType, name: string): void {
  const re = t.kind === 'Namespace' || t.kind === 'Service' ? DNS_LABEL : DNS_SUBDOMAIN;
  const limit = re === DNS_LABEL ? 63 : 253;
  if (name === '')
    throw invalid(t, name, [
      { field: 'metadata.name', message: 'Required value: name or generateName is required' },
    ]);
  if (name.length > limit || !re.test(name)) {
    const what = re === DNS_LABEL ? 'a lowercase RFC 1123 label' : 'a lowercase RFC 1123 subdomain';
    throw invalid(t, name, [
      {
        field: 'metadata.name',
        message: `Invalid value: ${JSON.stringify(name)}: ${what} must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
      },
    ]);
  }
}

function checkBody(
  ctx: RequestContext,
  t: ResourceType,
  ns: string | undefined,
  body: unknown,
): KubeObject {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badRequest('the request body must be an object');
  const o = body as KubeObject;
  const apiVersion = str(o.apiVersion);
  const kind = str(o.kind);
  const want = t.group === '' ? ctx.info.apiVersion : `${t.group}/${ctx.info.apiVersion}`;
  if ((apiVersion !== '' && apiVersion !== want) || (kind !== '' && kind !== t.kind)) {
    throw badRequest(
      `the API version in the data (${apiVersion}) does not match the expected API version (${want})`,
    );
  }
  const metaNs = str(o.metadata?.namespace);
  if (t.namespaced && ns !== undefined && metaNs !== '' && metaNs !== ns)
    throw badRequest(
      'the namespace of the provided object does not match the namespace sent on the request',
    );
  return { ...o, apiVersion: want, kind: t.kind };
}

async function handleCreate(
  ctx: RequestContext,
  deps: HandlerDeps,
  t: ResourceType,
  ns: string | undefined,
): Promise<void> {
  if (t.namespaced && ns === undefined)
    throw new ApiError(
      'MethodNotAllowed',
      'the server does not allow this method on the requested resource',
    );
  let o = checkBody(ctx, t, ns, await readObject(ctx.req));
  const meta = rec(o.metadata);
  let name = str(meta.name);
  if (name === '' && str(meta.generateName) !== '') name = generateName(str(meta.generateName));
  validateName(t, name);
  o = withSystemFields({ ...o, metadata: { ...meta, name } }, ns);
  if (t.kind === 'Namespace')
    o = { ...o, spec: { finalizers: ['kubernetes'], ...rec(o.spec) }, status: { phase: 'Active' } };
  if (t.kind === 'Namespace') {
    const labels = { ...rec(o.metadata?.labels), 'kubernetes.io/metadata.name': name };
    o = { ...o, metadata: { ...rec(o.metadata), labels } };
  }
  o = await admit(ctx, deps, t, ns, o, 'CREATE');
  if (ctx.url.searchParams.get('dryRun') === 'All') {
    send(ctx, 201, outObject(ctx, t, o));
    return;
  }
  let created: StoredObject;
  try {
    created = await deps.store.create(storageKey(t, ns, name), o);
  } catch (e) {
    if (e instanceof StoreError && e.reason === 'AlreadyExists') throw alreadyExists(t, name);
    throw e;
  }
  if (t.kind === 'Namespace') await ensureDefaultServiceAccount(deps.store, name);
  if (t.kind === 'ResourceQuota' && ns !== undefined) {
    // The quota controller's first count: status.hard and status.used.
    await refreshQuotas(deps.store, RESOURCE_TYPES, ns);
    created = (await deps.store.get(storageKey(t, ns, name))) ?? created;
  }
  send(ctx, 201, outObject(ctx, t, created.object));
}

/** Everything but metadata and status: a change here bumps metadata.generation. */
function specOf(o: KubeObject): string {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = o;
  return JSON.stringify(rest);
}

/**
 * Writes a new state of an existing object: system fields carried over,
 * generation bumped on spec changes, status kept apart from the main
 * resource, finalizers honoured, optimistic concurrency on resourceVersion.
 */
async function writeUpdate(
  ctx: RequestContext,
  deps: HandlerDeps,
  t: ResourceType,
  ns: string | undefined,
  current: StoredObject,
  next: KubeObject,
  expected: number | undefined,
): Promise<StoredObject | undefined> {
  const name = ctx.info.name;
  const cur = current.object;
  const curMeta = rec(cur.metadata);
  const nextMeta = { ...rec(next.metadata) };
  if (str(nextMeta.name) !== '' && nextMeta.name !== name)
    throw badRequest(
      `the name of the object (${str(nextMeta.name)}) does not match the name on the URL (${name})`,
    );
  if (str(nextMeta.uid) !== '' && nextMeta.uid !== curMeta.uid)
    throw new ApiError(
      'Conflict',
      `Precondition failed: UID in precondition: ${str(nextMeta.uid)}, UID in object meta: ${str(curMeta.uid)}`,
      { name, kind: t.plural },
    );
  for (const f of [
    'uid',
    'creationTimestamp',
    'deletionTimestamp',
    'deletionGracePeriodSeconds',
    'generation',
    'namespace',
  ]) {
    if (curMeta[f] === undefined) Reflect.deleteProperty(nextMeta, f);
    else nextMeta[f] = curMeta[f];
  }
  nextMeta.name = name;
  let o: KubeObject = { ...next, metadata: nextMeta };
  const hasStatus = (t.subresources ?? []).includes('status');
  if (ctx.info.subresource === 'status') {
    // The status subresource changes status only.
    o = { ...cur, status: next.status, metadata: { ...curMeta } };
  } else if (hasStatus) {
    o = { ...o, ...(cur.status === undefined ? {} : { status: cur.status }) };
    if (cur.status === undefined) Reflect.deleteProperty(o, 'status');
  }
  if (specOf(o) !== specOf(cur))
    o = {
      ...o,
      metadata: { ...rec(o.metadata), generation: (Number(curMeta.generation) || 1) + 1 },
    };
  if (ctx.info.subresource !== 'status') o = await admit(ctx, deps, t, ns, o, 'UPDATE', cur);
  const key = storageKey(t, ns, name);
  if (ctx.url.searchParams.get('dryRun') === 'All')
    return { key, object: o, revision: current.revision };
  try {
    const finalizers = o.metadata?.finalizers;
    if (
      o.metadata?.deletionTimestamp !== undefined &&
      (!Array.isArray(finalizers) || finalizers.length === 0)
    ) {
      // The last finalizer is gone from an object being deleted: delete it now.
      await deps.store.delete(key, expected ?? current.revision);
      return undefined;
    }
    const written = await deps.store.update(key, o, expected ?? current.revision);
    if (t.kind === 'ResourceQuota' && ns !== undefined && ctx.info.subresource !== 'status') {
      await refreshQuotas(deps.store, RESOURCE_TYPES, ns);
      return (await deps.store.get(key)) ?? written;
    }
    return written;
  } catch (e) {
    if (e instanceof StoreError && e.reason === 'Conflict') throw conflict(t, name);
    if (e instanceof StoreError && e.reason === 'NotFound') throw notFound(t, name);
    throw e;
  }
}

async function handleUpdate(
  ctx: RequestContext,
  deps: HandlerDeps,
  t: ResourceType,
  ns: string | undefined,
): Promise<void> {
  const body = checkBody(ctx, t, ns, await readObject(ctx.req));
  const name = ctx.info.name;
  const current = await deps.store.get(storageKey(t, ns, name));
  if (current === undefined) throw notFound(t, name);
  const rv = str(body.metadata?.resourceVersion);
  let expected: number | undefined;
  if (rv !== '') {
    expected = Number(rv);
    if (!Number.isSafeInteger(expected))
      throw badRequest(`invalid resourceVersion ${JSON.stringify(rv)}`);
    if (expected !== current.revision) throw conflict(t, name);
  }
  const updated = await writeUpdate(ctx, deps, t, ns, current, body, expected);
  send(ctx, 200, outObject(ctx, t, updated?.object ?? current.object));
}

async function handlePatch(
  ctx: RequestContext,
  deps: HandlerDeps,
  t: ResourceType,
  ns: string | undefined,
): Promise<void> {
  const type = (ctx.req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
  const patch = await readObject(ctx.req);
  const name = ctx.info.name;
  const key = storageKey(t, ns, name);
  // Retry on conflicts from concurrent writers: a patch has no resourceVersion precondition of its own.
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await deps.store.get(key);
    if (current === undefined) {
      if (type === 'application/apply-patch+yaml') {
        // Server-side apply of an object that does not exist creates it.
        const o = checkBody(ctx, t, ns, patch);
        if (str(o.metadata?.name) !== name)
          throw badRequest('the name of the applied object does not match the URL');
        let created = withSystemFields(o, ns);
        created = await admit(ctx, deps, t, ns, created, 'CREATE');
        try {
          const c = await deps.store.create(key, created);
          if (t.kind === 'Namespace') await ensureDefaultServiceAccount(deps.store, name);
          send(ctx, 201, outObject(ctx, t, c.object));
          return;
        } catch (e) {
          if (e instanceof StoreError && e.reason === 'AlreadyExists') continue;
          throw e;
        }
      }
      throw notFound(t, name);
    }
    const base = outObject(ctx, t, current.object);
    let next: unknown;
    try {
      switch (type) {
        case 'application/merge-patch+json':
          next = mergePatch(base, patch);
          break;
        case 'application/json-patch+json':
          next = jsonPatch(base, patch);
          break;
        case 'application/strategic-merge-patch+json':
        case 'application/apply-patch+yaml':
          next = strategicMergePatch(base, patch);
          break;
        default:
          throw new ApiError(
            'UnsupportedMediaType',
            `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`,
          );
      }
    } catch (e) {
      if (e instanceof TestFailed) throw invalid(t, name, [{ field: '', message: e.message }]);
      throw e;
    }
    const o = checkBody(ctx, t, ns, next);
    const rv = str(o.metadata?.resourceVersion);
    // A patch that names a resourceVersion is a precondition; otherwise it applies to the latest.
    const explicit =
      rv !== '' && rv !== String(current.revision) && rv !== str(base.metadata?.resourceVersion)
        ? Number(rv)
        : undefined;
    if (explicit !== undefined) throw conflict(t, name);
    try {
      const updated = await writeUpdate(ctx, deps, t, ns, current, o, current.revision);
      send(ctx, 200, outObject(ctx, t, updated?.object ?? current.object));
      return;
    } catch (e) {
      if (e instanceof ApiError && e.reason === 'Conflict' && attempt < 4) continue;
      throw e;
    }
  }
}

async function handleDelete(
  ctx: RequestContext,
  deps: HandlerDeps,
  t: ResourceType,
  ns: string | undefined,
): Promise<void> {
  const name = ctx.info.name;
  const key = storageKey(t, ns, name);
  let options: Record<string, unknown> = {};
  const body = await readBody(ctx.req);
  if (body.length > 0) {
    try {
      options = rec(JSON.parse(body.toString('utf8')));
    } catch {
      throw badRequest('the DeleteOptions could not be decoded');
    }
  }
  const current = await deps.store.get(key);
  if (current === undefined) throw notFound(t, name);
  const pre = rec(options.preconditions);
  if (str(pre.uid) !== '' && pre.uid !== current.object.metadata?.uid)
    throw new ApiError(
      'Conflict',
      `Precondition failed: UID in precondition: ${str(pre.uid)}, UID in object meta: ${str(current.object.metadata?.uid)}`,
      { name, kind: t.plural },
    );
  if (str(pre.resourceVersion) !== '' && pre.resourceVersion !== String(current.revision))
    throw conflict(t, name);
  if (t.kind === 'Namespace' && SYSTEM_NAMESPACES.includes(name))
    throw forbiddenByAdmission(t, name, 'this namespace may not be deleted');
  const finalizers = current.object.metadata?.finalizers;
  const hasFinalizers = Array.isArray(finalizers) && finalizers.length > 0;
  if (ctx.url.searchParams.get('dryRun') === 'All') {
    send(ctx, 200, outObject(ctx, t, current.object));
    return;
  }
  if (t.kind === 'Namespace') {
    // Graceful namespace deletion: Terminating, its content removed, then the namespace.
    const terminating: KubeObject = {
      ...current.object,
      metadata: {
        ...rec(current.object.metadata),
        deletionTimestamp: current.object.metadata?.deletionTimestamp ?? rfc3339(),
      },
      status: { phase: 'Terminating' },
    };
    let updated: StoredObject;
    try {
      updated = await deps.store.update(key, terminating, current.revision);
    } catch (e) {
      if (e instanceof StoreError && e.reason === 'Conflict') throw conflict(t, name);
      throw e;
    }
    send(ctx, 200, outObject(ctx, t, updated.object));
    void finishNamespaceDeletion(deps.store, name).catch((e: unknown) => {
      process.stderr.write(
        `apiserver: deleting namespace ${name}: ${e instanceof Error ? e.message : String(e)}\n`,
      );
    });
    return;
  }
  if (hasFinalizers) {
    if (current.object.metadata?.deletionTimestamp !== undefined) {
      send(ctx, 200, outObject(ctx, t, current.object));
      return;
    }
    const marked: KubeObject = {
      ...current.object,
      metadata: {
        ...rec(current.object.metadata),
        deletionTimestamp: rfc3339(),
        deletionGracePeriodSeconds: 0,
      },
    };
    try {
      const u = await deps.store.update(key, marked, current.revision);
      send(ctx, 200, outObject(ctx, t, u.object));
    } catch (e) {
      if (e instanceof StoreError && e.reason === 'Conflict') throw conflict(t, name);
      throw e;
    }
    return;
  }
  try {
    const d = await deps.store.delete(key, current.revision);
    // The quota controller's recount: what the deleted object used is released.
    if (ns !== undefined && !deps.disabled.has('ResourceQuota'))
      await refreshQuotas(deps.store, RESOURCE_TYPES, ns);
    send(ctx, 200, outObject(ctx, t, d.object));
  } catch (e) {
    if (e instanceof StoreError && e.reason === 'Conflict') throw conflict(t, name);
    if (e instanceof StoreError && e.reason === 'NotFound') throw notFound(t, name);
    throw e;
  }
}

/** The namespace controller: delete every namespaced object, then the namespace. */
async function finishNamespaceDeletion(store: ObjectStore, ns: string): Promise<void> {
  const seen = new Set<string>();
  for (const t of RESOURCE_TYPES) {
    if (!t.namespaced || t.virtual === true) continue;
    const prefix = storagePrefix(t, ns);
    if (seen.has(prefix)) continue;
    seen.add(prefix);
    const { items } = await store.list(prefix);
    for (const i of items) {
      try {
        await store.delete(i.key);
      } catch (e) {
        if (!(e instanceof StoreError && e.reason === 'NotFound')) throw e;
      }
    }
  }
  try {
    await store.delete(storageKey(NAMESPACE_TYPE, undefined, ns));
  } catch (e) {
    if (!(e instanceof StoreError && e.reason === 'NotFound')) throw e;
  }
}

async function handleDeleteCollection(
  ctx: RequestContext,
  deps: HandlerDeps,
  t: ResourceType,
  ns: string | undefined,
): Promise<void> {
  const q = ctx.url.searchParams;
  const filter = objectFilter(q.get('labelSelector'), q.get('fieldSelector'));
  const { items, revision } = await deps.store.list(storagePrefix(t, ns));
  const deleted: KubeObject[] = [];
  for (const i of items) {
    if (!filter(i.object)) continue;
    try {
      deleted.push(outObject(ctx, t, (await deps.store.delete(i.key, i.revision)).object));
    } catch (e) {
      if (!(e instanceof StoreError && (e.reason === 'NotFound' || e.reason === 'Conflict')))
        throw e;
    }
  }
  send(ctx, 200, {
    kind: `${t.kind}List`,
    apiVersion: groupVersion({ group: t.group, version: ctx.info.apiVersion }),
    metadata: { resourceVersion: String(revision) },
    items: deleted,
  });
}

/** POST serviceaccounts/NAME/token (TokenRequest). */
async function handleTokenRequest(
  ctx: RequestContext,
  deps: HandlerDeps,
  ns: string,
): Promise<void> {
  if (ctx.info.verb !== 'create')
    throw new ApiError(
      'MethodNotAllowed',
      'the server does not allow this method on the requested resource',
    );
  const body = rec(await readObject(ctx.req));
  const name = ctx.info.name;
  const sa = await deps.store.get(storageKey(SA_TYPE, ns, name));
  if (sa === undefined) throw notFound(SA_TYPE, name);
  const spec = rec(body.spec);
  const audiences =
    Array.isArray(spec.audiences) && spec.audiences.length > 0
      ? spec.audiences.map(str)
      : [deps.saTokens.issuer];
  const expirationSeconds =
    spec.expirationSeconds === undefined || spec.expirationSeconds === null
      ? 3600
      : Number(spec.expirationSeconds);
  const tokenType: ResourceType = { ...SA_TYPE, kind: 'TokenRequest' };
  if (!Number.isSafeInteger(expirationSeconds) || expirationSeconds < 600)
    throw invalid(tokenType, name, [
      {
        field: 'spec.expirationSeconds',
        message: 'Invalid value: may not specify a duration less than 10 minutes',
      },
    ]);
  if (expirationSeconds > 2 ** 32)
    throw invalid(tokenType, name, [
      {
        field: 'spec.expirationSeconds',
        message: 'Invalid value: may not specify a duration larger than 2^32 seconds',
      },
    ]);
  const { token, expiresAt } = await deps.saTokens.mint({
    namespace: ns,
    name,
    uid: str(sa.object.metadata?.uid),
    audiences,
    expirationSeconds,
  });
  send(ctx, 201, {
    kind: 'TokenRequest',
    apiVersion: 'authentication.k8s.io/v1',
    metadata: { name, namespace: ns, creationTimestamp: rfc3339() },
    spec: { audiences, expirationSeconds, boundObjectRef: spec.boundObjectRef ?? null },
    status: { token, expirationTimestamp: rfc3339(expiresAt) },
  });
}

/** The review kinds: SelfSubjectAccessReview, SubjectAccessReview, SelfSubjectRulesReview, SelfSubjectReview, TokenReview. */
async function handleReview(
  ctx: RequestContext,
  deps: HandlerDeps,
  t: ResourceType,
): Promise<void> {
  const body = rec(await readObject(ctx.req));
  const spec = rec(body.spec);
  const header = {
    kind: t.kind,
    apiVersion: `${t.group}/${ctx.info.apiVersion}`,
    metadata: { creationTimestamp: null },
  };
  const decide = async (
    user: { name: string; groups: readonly string[] },
    s: Record<string, unknown>,
    ns?: string,
  ): Promise<Record<string, unknown>> => {
    const ra = rec(s.resourceAttributes);
    const nra = rec(s.nonResourceAttributes);
    let attrs: RequestAttributes;
    if (s.nonResourceAttributes !== undefined) {
      attrs = {
        user: { name: user.name, groups: [...user.groups] },
        verb: str(nra.verb),
        nonResourceURL: str(nra.path),
      };
    } else {
      const namespace = ns ?? str(ra.namespace);
      attrs = {
        user: { name: user.name, groups: [...user.groups] },
        verb: str(ra.verb),
        apiGroup: str(ra.group),
        resource: str(ra.resource),
        ...(str(ra.subresource) === '' ? {} : { subresource: str(ra.subresource) }),
        ...(str(ra.name) === '' ? {} : { name: str(ra.name) }),
        ...(namespace === '' ? {} : { namespace }),
      };
    }
    const d = await deps.authorizer.authorize(attrs);
    return d.allowed ? { allowed: true, reason: d.reason } : { allowed: false };
  };
  switch (t.kind) {
    case 'SelfSubjectAccessReview':
      send(ctx, 201, { ...header, spec, status: await decide(ctx.user, spec) });
      return;
    case 'SubjectAccessReview':
    case 'LocalSubjectAccessReview': {
      const user = str(spec.user);
      const groups = Array.isArray(spec.groups) ? spec.groups.map(str) : [];
      if (user === '' && groups.length === 0)
        throw badRequest('at least one of user or group must be specified');
      const ns = t.kind === 'LocalSubjectAccessReview' ? ctx.info.namespace : undefined;
      send(ctx, 201, { ...header, spec, status: await decide({ name: user, groups }, spec, ns) });
      return;
    }
    case 'SelfSubjectRulesReview': {
      const ns = str(spec.namespace);
      const rules = await deps.authorizer.rulesFor(ctx.user, ns);
      const all = rules;
      send(ctx, 201, {
        ...header,
        spec,
        status: {
          resourceRules: all
            .filter((r) => r.nonResourceURLs === undefined || r.nonResourceURLs.length === 0)
            .map((r) => ({
              verbs: r.verbs,
              apiGroups: r.apiGroups ?? [],
              resources: r.resources ?? [],
              ...(r.resourceNames === undefined ? {} : { resourceNames: r.resourceNames }),
            })),
          nonResourceRules: all
            .filter((r) => r.nonResourceURLs !== undefined && r.nonResourceURLs.length > 0)
            .map((r) => ({ verbs: r.verbs, nonResourceURLs: r.nonResourceURLs })),
          incomplete: deps.authorizer.rulesIncomplete === true,
          ...(deps.authorizer.rulesIncomplete === true
            ? { evaluationError: 'webhook authorizer does not support user rule resolution' }
            : {}),
        },
      });
      return;
    }
    case 'SelfSubjectReview':
      send(ctx, 201, {
        ...header,
        status: {
          userInfo: {
            username: ctx.user.name,
            ...(ctx.user.uid === undefined ? {} : { uid: ctx.user.uid }),
            groups: ctx.user.groups,
            ...(ctx.user.extra === undefined ? {} : { extra: ctx.user.extra }),
          },
        },
      });
      return;
    case 'TokenReview': {
      const token = str(spec.token);
      const claims = token === '' ? undefined : await deps.saTokens.verify(token);
      let status: Record<string, unknown> = { authenticated: false, error: 'invalid bearer token' };
      if (claims !== undefined) {
        const sa = await deps.store.get(storageKey(SA_TYPE, claims.namespace, claims.name));
        if (sa !== undefined && sa.object.metadata?.uid === claims.uid) {
          status = {
            authenticated: true,
            user: {
              username: `system:serviceaccount:${claims.namespace}:${claims.name}`,
              uid: claims.uid,
              groups: [
                'system:serviceaccounts',
                `system:serviceaccounts:${claims.namespace}`,
                'system:authenticated',
              ],
            },
            audiences: [deps.saTokens.issuer],
          };
        }
      }
      send(ctx, 201, { ...header, spec, status });
      return;
    }
    default:
      throw new ApiError('NotFound', 'the server could not find the requested resource', {});
  }
}

export { qualifiedResource };
