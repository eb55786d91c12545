// A control plane and its sidecars as real processes, for tests that need the
// whole xDS + CA path: `palisade control` on a config directory with its CA,
// and `palisade proxy` sidecars that authenticate with a service-account
// token from that CA and get their SVID from it.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { runPalisade, spawnPalisade, tempDir, type PalisadeProcess } from './index.js';

/** A test's mesh directories: a config directory and an initialised CA, removed after the test. */
export interface MeshDirs {
  readonly path: string;
  readonly configDir: string;
  readonly caDir: string;
}

/** Makes a temporary directory with `config/` and a fresh CA in `ca/` (`palisade ca init`). */
export async function meshDirs(t: { after(fn: () => void): void }): Promise<MeshDirs> {
  const dir = tempDir();
  t.after(dir.cleanup);
  const configDir = join(dir.path, 'config');
  const caDir = join(dir.path, 'ca');
  mkdirSync(configDir);
  const init = await runPalisade(['ca', 'init', '--dir', caDir]);
  assert.equal(init.code, 0, init.stderr);
  return { path: dir.path, configDir, caDir };
}

export interface ControlPlaneProcess extends PalisadeProcess {
  /** `127.0.0.1:<port>` of the xDS server. */
  readonly xds: string;
  /** The CA's CSR service URL. */
  readonly caUrl: string;
  readonly caDir: string;
  /**
   * The control plane's state dir (the CA dir's parent): its debug-token is
   * there; pass it to proxy-status / proxy-config as --state-dir.
   */
  readonly stateDir: string;
}

/**
 * Starts `palisade control --config-dir configDir --ca-dir caDir` (or
 * `--kubeconfig FILE` when given `{ kubeconfig }`) on a free
 * loopback port, with `extraArgs` (e.g. `--mesh-config FILE`) after them.
 */
export async function startControlPlane(
  configDir: string | { readonly kubeconfig: string },
  caDir: string,
  extraArgs: readonly string[] = [],
): Promise<ControlPlaneProcess> {
  const proc = await spawnPalisade(
    [
      'control',
      ...(typeof configDir === 'string'
        ? ['--config-dir', configDir]
        : ['--kubeconfig', configDir.kubeconfig]),
      '--listen',
      '127.0.0.1:0',
      '--ca-dir',
      caDir,
      ...extraArgs,
    ],
    {
      ready: /xDS 127\.0\.0\.1:(\d+), CA (https:\/\/\S+),/,
      // The API source loads @kubernetes/client-node and lists every kind first.
      ...(typeof configDir === 'string' ? {} : { timeoutMs: 60_000 }),
    },
  );
  return Object.assign(proc, {
    xds: `127.0.0.1:${proc.match[1] ?? ''}`,
    caUrl: proc.match[2] ?? '',
    caDir,
    stateDir: dirname(caDir),
  });
}

export interface SidecarOptions {
  readonly namespace: string;
  /** Service account, workload name and pod name prefix (`<name>-0.<namespace>`). */
  readonly name: string;
  readonly instanceIp: string;
  readonly appIp: string;
  /** Where the token file is written. */
  readonly dir: string;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly extraArgs?: readonly string[];
}

export interface SidecarProcess extends PalisadeProcess {
  readonly outbound: number;
  readonly admin: number;
}

/** Starts `palisade proxy` for `nodeId` with a token for namespace/serviceAccount from `control`'s CA. */
async function startProxy(
  control: ControlPlaneProcess,
  options: {
    readonly nodeId: string;
    readonly namespace: string;
    readonly serviceAccount: string;
    readonly metadata: Readonly<Record<string, unknown>>;
    readonly dir: string;
    readonly extraArgs?: readonly string[] | undefined;
  },
): Promise<SidecarProcess> {
  const { namespace, serviceAccount } = options;
  const token = await runPalisade([
    'ca',
    'token',
    '--dir',
    control.caDir,
    '--namespace',
    namespace,
    '--service-account',
    serviceAccount,
  ]);
  assert.equal(token.code, 0, token.stderr);
  const tokenFile = join(options.dir, `${serviceAccount}.token`);
  writeFileSync(tokenFile, token.stdout.trim());
  const proc = await spawnPalisade(
    [
      'proxy',
      '--xds',
      control.xds,
      '--node-id',
      options.nodeId,
      '--metadata',
      JSON.stringify({
        NAMESPACE: namespace,
        SERVICE_ACCOUNT: serviceAccount,
        ...options.metadata,
      }),
      '--token-file',
      tokenFile,
      '--ca-url',
      control.caUrl,
      '--ca-root-cert',
      join(control.caDir, 'root-cert.pem'),
      '--outbound-port',
      '0',
      '--admin-port',
      '0',
      ...(options.extraArgs ?? []),
    ],
    { ready: /ready outbound=(\d+) admin=(\d+)/ },
  );
  return Object.assign(proc, { outbound: Number(proc.match[1]), admin: Number(proc.match[2]) });
}

/** Starts a sidecar for `options.name` against `control`; outbound and admin on free ports. */
export function startSidecar(
  control: ControlPlaneProcess,
  options: SidecarOptions,
): Promise<SidecarProcess> {
  const { namespace, name } = options;
  return startProxy(control, {
    nodeId: `sidecar~${options.instanceIp}~${name}-0.${namespace}~${namespace}.svc.cluster.local`,
    namespace,
    serviceAccount: name,
    metadata: { WORKLOAD_NAME: name, APP_ADDRESS: options.appIp, ...options.metadata },
    dir: options.dir,
    extraArgs: options.extraArgs,
  });
}

/**
 * Starts the ingress gateway (`istio: ingressgateway`, namespace istio-system) on `ip`;
 * its listeners bind Gateway ports there (80 → 8080, 443 → 8443).
 */
export function startIngressGateway(
  control: ControlPlaneProcess,
  options: { readonly ip: string; readonly dir: string },
): Promise<SidecarProcess> {
  return startProxy(control, {
    nodeId: `router~${options.ip}~istio-ingressgateway-0.istio-system~istio-system.svc.cluster.local`,
    namespace: 'istio-system',
    serviceAccount: 'istio-ingressgateway-service-account',
    metadata: { PROXY_TYPE: 'ingress' },
    dir: options.dir,
  });
}
