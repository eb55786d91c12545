/**
 * `palisade control` — run the control plane: watch a config directory,
 * serve xDS (ADS) and the debug API on one gRPC port, and the CA's CSR
 * service over HTTPS.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { readConfig } from '../../config/index.js';
import { DEBUG_TOKEN_FILE, startControlPlane } from '../../control/index.js';
import { PalisadeError } from '../../errors/index.js';
import { CA_FILES, initCaDirectory, loadCaDirectory } from '../../identity/index.js';
import { createLogger } from '../../logging/index.js';
import { readPolicyMeshConfig } from '../../policy/index.js';
import { parseCommandArgs, requireOption } from '../args.js';
import type { Command } from '../command.js';

/** Splits `HOST:PORT` (IPv6 in brackets); usage error naming the flag otherwise. */
export function parseHostPort(value: string, flag: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(value);
  const port = Number(m?.[2]);
  if (m === null || port > 65535)
    throw new PalisadeError(
      'PAL_ERR_USAGE',
      `${flag} ${JSON.stringify(value)}: expected HOST:PORT`,
    );
  return { host: (m[1] ?? '').replace(/^\[|\]$/g, ''), port };
}

export const controlCommand: Command = {
  path: ['control'],
  summary: 'Run the control plane (config dir watch, xDS server, CA)',
  usage: `Usage: palisade control (--config-dir DIR | --kubeconfig FILE) [--listen 127.0.0.1:15010] [--ca-dir DIR]
                        [--ca-listen HOST:PORT] [--trust-domain TD] [--root-namespace NS]
                        [--outbound-traffic-policy ALLOW_ANY|REGISTRY_ONLY]
                        [--mesh-config FILE]
                        [--allow-unauthenticated-proxyless] [--xds-insecure]
                        [--debug-token-file FILE] [--monitoring-port PORT]

Reads every YAML file in DIR (Istio networking and security kinds, Kubernetes
Namespace/Service/ServiceAccount/Secret and RBAC/NetworkPolicy kinds, Palisade
Workloads), validates them as one unit and serves each connected proxy its
config over Envoy's xDS v3 (ADS, state of the world) on --listen. A change to
DIR that fails validation is rejected whole and logged; the last good config
keeps serving.

--kubeconfig FILE reads the same kinds from a Kubernetes API instead (a
Palisade API server — palisade apiserver, or the one palisade up --apiserver
runs — or a real kube-apiserver): informers list and watch every kind the
server serves (kinds it does not serve are skipped and logged), and every
change is validated as one unit like a directory; a rejected change is
logged and the last good config keeps serving.

The CA (created in --ca-dir, default <state-dir>/ca, when
missing) signs workload certificates on --ca-listen (default 15012 next to
the default --listen, else a free port). Runs until interrupted.

Proxyless gRPC clients (@grpc/grpc-js-xds and other gRPC xDS clients) are
served api listeners named <host>:<port>. Every stream must carry a
service-account token; gRPC's xDS bootstrap cannot send one, so
--allow-unauthenticated-proxyless lets clients marked PROXY_TYPE=proxyless
(or GENERATOR=grpc) connect without it — they get routing config only, never
secrets or an identity.

--mesh-config takes Istio's MeshConfig (the object, the istio ConfigMap with
data.mesh, or an IstioOperator's spec.meshConfig); Palisade reads
trustDomain (used when the CA is created), trustDomainAliases (policy
principals match under the trust domain and every alias), rootNamespace and
defaultConfig.gatewayTopology.numTrustedProxies (gateways'
X-Forwarded-For trusted hops) and pathNormalization.normalization (NONE,
BASE — the default —, MERGE_SLASHES or DECODE_AND_MERGE_SLASHES: how every
proxy normalises the request path before routing, policy and the app see it)
and extensionProviders (envoyExtAuthzHttp and envoyExtAuthzGrpc: the external
authorizers CUSTOM policies name).


The xDS port speaks TLS (1.2+, AEAD cipher suites only) with a certificate
from the mesh CA for spiffe://<trust-domain>/ns/palisade-system/sa/palisade-control
(DNS/IP SANs: localhost, 127.0.0.1, ::1 and the --listen host); proxies verify
it against the trust bundle. --xds-insecure serves plaintext instead: for
loopback tests and proxyless gRPC clients whose bootstrap cannot do TLS.

The debug API (proxy-status, proxy-config) on the same port answers only the
operator: at every start the control plane writes a new random token to
--debug-token-file (default: debug-token next to the CA directory, i.e.
<state-dir>/debug-token), mode 0600; the CLI reads it from there.

--monitoring-port PORT serves the control plane's own metrics as Prometheus
text on http://<listen host>:PORT/metrics (istiod's :15014, with its names):
pilot_xds (connected proxies), pilot_xds_pushes, pilot_total_xds_rejects
(NACKs), pilot_xds_push_time_seconds, citadel_server_csr_count,
citadel_server_success_cert_issue_count, citadel_server_csr_sign_error_count.
palisade up passes 15014 (or the next free port) and Prometheus scrapes it.`,
  run: async (args, io) => {
    const { values } = parseCommandArgs(
      args,
      {
        'config-dir': { type: 'string' },
        kubeconfig: { type: 'string' },
        listen: { type: 'string' },
        'ca-dir': { type: 'string' },
        'ca-listen': { type: 'string' },
        'trust-domain': { type: 'string' },
        'root-namespace': { type: 'string' },
        'outbound-traffic-policy': { type: 'string' },
        'allow-unauthenticated-proxyless': { type: 'boolean' },
        'mesh-config': { type: 'string' },
        'xds-insecure': { type: 'boolean' },
        'debug-token-file': { type: 'string' },
        'monitoring-port': { type: 'string' },
      },
      false,
    );
    const config = readConfig();
    const kubeconfigFile =
      values.kubeconfig === undefined ? undefined : resolve(io.cwd, values.kubeconfig);
    if (kubeconfigFile !== undefined && values['config-dir'] !== undefined)
      throw new PalisadeError('PAL_ERR_USAGE', '--config-dir and --kubeconfig exclude each other');
    const configDir =
      kubeconfigFile === undefined
        ? resolve(io.cwd, requireOption(values['config-dir'], '--config-dir'))
        : undefined;
    const listen = parseHostPort(values.listen ?? config.controlAddress, '--listen');
    const caListen =
      values['ca-listen'] === undefined
        ? { host: listen.host, port: listen.port === 15010 ? 15012 : 0 }
        : parseHostPort(values['ca-listen'], '--ca-listen');
    const policy = values['outbound-traffic-policy'] ?? 'ALLOW_ANY';
    if (policy !== 'ALLOW_ANY' && policy !== 'REGISTRY_ONLY')
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        `--outbound-traffic-policy ${policy}: expected ALLOW_ANY or REGISTRY_ONLY`,
      );
    const meshFile = values['mesh-config'];
    const meshConfig =
      meshFile === undefined ? undefined : readPolicyMeshConfig(resolve(io.cwd, meshFile));
    const caDir = resolve(io.cwd, values['ca-dir'] ?? join(config.stateDir, 'ca'));
    const wantedTrustDomain = values['trust-domain'] ?? meshConfig?.trustDomain;
    if (!existsSync(join(caDir, CA_FILES.rootCert)))
      await initCaDirectory(caDir, { trustDomain: wantedTrustDomain ?? config.trustDomain });
    const ca = await loadCaDirectory(caDir);
    if (meshConfig?.trustDomain !== undefined && meshConfig.trustDomain !== ca.trustDomain)
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        `--mesh-config ${String(meshFile)}: trustDomain ${meshConfig.trustDomain} differs from the CA's trust domain ${ca.trustDomain} (${caDir}); list the old one in trustDomainAliases and keep the CA's, or use a CA for ${meshConfig.trustDomain}`,
      );
    const rootNamespace = values['root-namespace'] ?? meshConfig?.rootNamespace;
    const logger = createLogger('control', config.logLevel);
    const monitoringPort =
      values['monitoring-port'] === undefined ? undefined : Number(values['monitoring-port']);
    if (
      monitoringPort !== undefined &&
      (!Number.isInteger(monitoringPort) || monitoringPort < 0 || monitoringPort > 65535)
    )
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        `--monitoring-port ${String(values['monitoring-port'])}: expected a port number`,
      );
    const plane = await startControlPlane({
      ...(kubeconfigFile === undefined ? { configDir } : { kubeconfig: kubeconfigFile }),
      ca,
      logger,
      host: listen.host,
      port: listen.port,
      caPort: caListen.port,
      ...(rootNamespace === undefined ? {} : { rootNamespace }),
      mesh: {
        outboundTrafficPolicy: policy,
        ...(meshConfig?.numTrustedProxies === undefined
          ? {}
          : { numTrustedProxies: meshConfig.numTrustedProxies }),
      },
      ...(meshConfig === undefined
        ? {}
        : {
            trustDomainAliases: meshConfig.trustDomainAliases,
            extensionProviders: meshConfig.extensionProviders,
          }),
      ...(meshConfig?.pathNormalization === undefined
        ? {}
        : { pathNormalization: meshConfig.pathNormalization }),
      allowUnauthenticatedProxyless: values['allow-unauthenticated-proxyless'] === true,
      xdsPlaintext: values['xds-insecure'] === true,
      debugTokenFile: resolve(
        io.cwd,
        values['debug-token-file'] ?? join(dirname(caDir), DEBUG_TOKEN_FILE),
      ),
      ...(monitoringPort === undefined ? {} : { monitoringPort }),
    });
    io.stdout(
      `Control plane ready: xDS ${listen.host}:${String(plane.xdsPort)}, CA ${plane.caUrl}, ` +
        `config ${plane.config.origin} (${String(plane.config.current.objects.size)} objects), trust domain ${ca.trustDomain}` +
        (plane.monitoringUrl === undefined ? '' : `, metrics ${plane.monitoringUrl}`) +
        '\n',
    );
    await new Promise<void>((resolveStop) => {
      const stop = (): void => {
        void plane.close().then(resolveStop);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return 0;
  },
};
