/**
 * The mesh's config in its API server (`palisade up --apiserver`): a small
 * client for `up` (loading the mesh's YAML) and `apply`/`delete` (changing
 * it), authenticated with the kubeconfig's client certificate and verified
 * against its CA. Writes are server-side apply (`application/apply-patch+yaml`,
 * field manager `palisade`, force: the CLI owns what it applies, as
 * `kubectl apply --server-side --force-conflicts`). It reads the kubeconfig
 * itself rather than loading @kubernetes/client-node: the CLI stays quick to
 * start.
 */
import { readFileSync } from 'node:fs';
import { request, type RequestOptions } from 'node:https';
import { parse as parseYaml } from 'yaml';
import {
  asManifestObject,
  basePath,
  WATCHED_KINDS,
  type ApiMetadata,
  type Manifest,
  type WatchedKind,
} from '../api/index.js';
import { PalisadeError } from '../errors/index.js';
import { objectFileName } from './object-file-name.js';

/** Where a mesh's API server is, in mesh.json. */
export interface MeshApiInfo {
  readonly url: string;
  /** The admin kubeconfig (`.palisade/<mesh>/kubeconfig`). */
  readonly kubeconfig: string;
}

interface Credentials {
  readonly server: URL;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** An HTTP answer from the API server. */
export interface ApiReply {
  readonly status: number;
  readonly body: unknown;
}

function b64(v: unknown): string {
  return typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : '';
}

/** The current context's server, CA and client certificate (inline `-data` fields, as Palisade writes them). */
function readKubeconfig(file: string): Credentials {
  const kc = parseYaml(readFileSync(file, 'utf8')) as {
    'current-context'?: string;
    contexts?: { name: string; context: { cluster: string; user: string } }[];
    clusters?: { name: string; cluster: Record<string, unknown> }[];
    users?: { name: string; user: Record<string, unknown> }[];
  };
  const ctx = kc.contexts?.find((c) => c.name === kc['current-context'])?.context;
  const cluster = kc.clusters?.find((c) => c.name === ctx?.cluster)?.cluster;
  const user = kc.users?.find((u) => u.name === ctx?.user)?.user;
  if (cluster === undefined || user === undefined)
    throw new PalisadeError('PAL_ERR_USAGE', `${file}: no current context with a cluster and user`);
  return {
    server: new URL(String(cluster['server'])),
    ca: b64(cluster['certificate-authority-data']),
    cert: b64(user['client-certificate-data']),
    key: b64(user['client-key-data']),
  };
}

/** A client for one mesh's API server. */
export interface MeshApiClient {
  call(method: string, path: string, body?: unknown, contentType?: string): Promise<ApiReply>;
  /** Every object of the watched kinds, as manifests named as the config dir names its files. */
  list(): Promise<Manifest[]>;
  /** Server-side apply of one object (creating it if absent). */
  apply(object: unknown): Promise<ApiReply>;
  /** Deletes one object; status 404 when it is not there. */
  remove(kind: string, namespace: string, name: string): Promise<ApiReply>;
}

function kindOf(kind: string): WatchedKind {
  const k = WATCHED_KINDS.find((w) => w.kind === kind);
  if (k === undefined)
    throw new PalisadeError('PAL_ERR_USAGE', `${kind} is not a kind the mesh's API server stores`);
  return k;
}

function objectPath(k: WatchedKind, namespace: string, name: string, version?: string): string {
  const ns = k.namespaced ? `/namespaces/${encodeURIComponent(namespace || 'default')}` : '';
  return `${basePath(k, version ?? k.versions[0] ?? 'v1')}${ns}/${k.plural}/${encodeURIComponent(name)}`;
}

/** A Status body's message, else the status code. */
export function replyMessage(reply: ApiReply): string {
  const m = (reply.body as { message?: unknown } | undefined)?.message;
  return typeof m === 'string' ? m : `HTTP ${String(reply.status)}`;
}

export function meshApiClient(kubeconfigFile: string, timeoutMs = 10_000): MeshApiClient {
  const creds = readKubeconfig(kubeconfigFile);
  const call = (
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<ApiReply> => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const opts: RequestOptions = {
      method,
      hostname: creds.server.hostname.replace(/^\[|\]$/g, ''),
      port: creds.server.port || 443,
      path,
      ca: creds.ca,
      cert: creds.cert,
      key: creds.key,
      timeout: timeoutMs,
      headers: {
        Accept: 'application/json',
        ...(payload === undefined
          ? {}
          : { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(payload) }),
      },
    };
    return new Promise((resolve, reject) => {
      const req = request(opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      });
      req.on('timeout', () =>
        req.destroy(new Error(`${method} ${path}: no answer in ${String(timeoutMs)} ms`)),
      );
      req.on('error', (error) => {
        reject(
          new PalisadeError(
            'PAL_ERR_CONTROL_CONFIG_API',
            `the mesh's API server at ${creds.server.origin} does not answer: ${error.message}`,
            { cause: error },
          ),
        );
      });
      req.end(payload);
    });
  };
  return {
    call,
    async list() {
      const manifests: Manifest[] = [];
      const replies = await Promise.all(
        WATCHED_KINDS.map(async (k) => {
          const version = k.versions[0] ?? 'v1';
          return { k, version, reply: await call('GET', `${basePath(k, version)}/${k.plural}`) };
        }),
      );
      for (const { k, version, reply } of replies) {
        if (reply.status === 404) continue; // not served (e.g. WorkloadEntry)
        if (reply.status !== 200)
          throw new PalisadeError(
            'PAL_ERR_CONTROL_CONFIG_API',
            `cannot list ${k.plural}: ${replyMessage(reply)}`,
          );
        for (const item of (reply.body as { items?: { metadata?: ApiMetadata }[] }).items ?? []) {
          const name = item.metadata?.name ?? '';
          const ns = k.namespaced ? (item.metadata?.namespace ?? 'default') : '';
          manifests.push({
            file: objectFileName(k.kind, ns, name),
            index: 0,
            object: asManifestObject(k, version, item),
          });
        }
      }
      return manifests;
    },
    apply(object) {
      const o = object as {
        apiVersion?: string;
        kind?: string;
        metadata?: { name?: string; namespace?: string };
      };
      const k = kindOf(o.kind ?? '');
      // The URL's version is the object's (an Istio v1beta1 object goes to …/v1beta1/…).
      const version = (o.apiVersion ?? '').split('/').at(-1) ?? 'v1';
      const path = objectPath(k, o.metadata?.namespace ?? '', o.metadata?.name ?? '', version);
      return call(
        'PATCH',
        `${path}?fieldManager=palisade&force=true`,
        object,
        'application/apply-patch+yaml',
      );
    },
    remove(kind, namespace, name) {
      return call('DELETE', objectPath(kindOf(kind), namespace, name));
    },
  };
}
