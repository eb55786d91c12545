/**
 * `palisade proxy` — runs one Palisade proxy (sidecar) process: an ADS client
 * to the control plane, the outbound listener and the admin endpoint. Prints
 * `ready outbound=<port> admin=<port>` once listening; drains on SIGTERM/SIGINT.
 */
import { createWriteStream, openSync, readFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { PalisadeError } from '../../errors/index.js';
import { readConfig } from '../../config/index.js';
import { createLogger } from '../../logging/index.js';
import { startProxy, type ProxyIdentityOptions } from '../../proxy/index.js';
import { parseNodeId, type XdsTransport } from '../../xds/index.js';
import { parseCommandArgs, requireOption } from '../args.js';
import type { Command } from '../command.js';

const USAGE = `palisade proxy --xds HOST:PORT --node-id ID [options]

Runs a Palisade proxy driven over xDS (ADS, state of the world).

Options:
  --xds HOST:PORT          control plane ADS address (required)
  --node-id ID             Envoy node id, e.g. sidecar~127.0.0.2~a-1.ns~ns.svc.cluster.local (required)
  --cluster NAME           node.cluster, <workload>.<namespace> (default: from --node-id)
  --metadata JSON          node.metadata as a JSON object (NAMESPACE, SERVICE_ACCOUNT, ...)
  --token-file FILE        service-account token sent as "authorization: Bearer", re-read per stream
                           and at every certificate renewal (projected tokens rotate)
  --xds-root-cert FILE     PEM roots that verify the control plane's xDS certificate (default: --ca-root-cert);
                           the server must present spiffe://<trust-domain>/ns/palisade-system/sa/palisade-control
  --xds-insecure           speak plaintext to the control plane (loopback tests only: the stream carries
                           the token and gateway keys)
  --instance-ip IP         address the outbound listener binds (default: from --node-id)
  --outbound-port PORT     outbound listener port (default 15001; 0 picks a free one)
  --interception MODE      none (default): apps use the proxy explicitly (loopback runtime);
                           redirect: iptables REDIRECTs the pod's TCP here (palisade proxy-init):
                           the outbound port becomes the capture listener on 0.0.0.0, inbound
                           arrives on 15006, and node metadata INTERCEPTION_MODE=REDIRECT asks the
                           control plane for virtualOutbound/virtualInbound (docs/proxy.md)
  --admin-port PORT        admin port on 127.0.0.1 (default 15000; 0 picks a free one)
  --drain-ms MS            longest wait for in-flight requests on SIGTERM (default 5000)
  --ca-url URL             the CA's CSR service (https://HOST:PORT); with it the proxy generates its key,
                           gets its SVID for NAMESPACE/SERVICE_ACCOUNT with the token, and rotates it
  --ca-root-cert FILE      PEM roots that verify the CA server (required with --ca-url)
  --trust-domain TD        SPIFFE trust domain (default $PALISADE_TRUST_DOMAIN or cluster.local)
  --svid-ttl DURATION      SVID lifetime to request (default 24h)
  --otlp-endpoint URL      export spans over OTLP/HTTP JSON to this collector (e.g. http://127.0.0.1:4318;
                           default $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else $OTEL_EXPORTER_OTLP_ENDPOINT)
  --trace-sampling PCT     share of new traces sampled, 0-100 (default 1, Istio's default); a caller's
                           sampling decision (traceparent, B3) is always kept
  --access-log-file PATH   where JSON access-log lines go, as Istio's meshConfig.accessLogFile:
                           /dev/stdout (default), /dev/stderr, a file (appended), or "" for none
`;

/** The access-log stream for `--access-log-file` (undefined: no access log). */
function accessLogStream(path: string | undefined): Writable | undefined {
  if (path === undefined || path === '/dev/stdout') return process.stdout;
  if (path === '/dev/stderr') return process.stderr;
  if (path === '') return undefined;
  let fd: number;
  try {
    // Opened now so that a bad path stops the proxy with its reason instead of losing lines later.
    fd = openSync(path, 'a');
  } catch (err) {
    throw new PalisadeError(
      'PAL_ERR_USAGE',
      `--access-log-file: cannot open ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  return createWriteStream(path, { fd });
}

function port(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new PalisadeError('PAL_ERR_USAGE', `${flag}: ${value} is not a port`);
  }
  return n;
}

export const proxyCommand: Command = {
  path: ['proxy'],
  summary: 'Run a Palisade proxy (sidecar) driven by the control plane over xDS',
  usage: USAGE,
  run: async (args, io) => {
    const { values } = parseCommandArgs(
      args,
      {
        xds: { type: 'string' },
        'node-id': { type: 'string' },
        cluster: { type: 'string' },
        metadata: { type: 'string' },
        'token-file': { type: 'string' },
        'instance-ip': { type: 'string' },
        'outbound-port': { type: 'string' },
        'admin-port': { type: 'string' },
        'drain-ms': { type: 'string' },
        'ca-url': { type: 'string' },
        'ca-root-cert': { type: 'string' },
        'trust-domain': { type: 'string' },
        'svid-ttl': { type: 'string' },
        'otlp-endpoint': { type: 'string' },
        'trace-sampling': { type: 'string' },
        'access-log-file': { type: 'string' },
        'xds-root-cert': { type: 'string' },
        'xds-insecure': { type: 'boolean' },
        interception: { type: 'string' },
      },
      false,
    );
    const xdsAddress = requireOption(values.xds, '--xds');
    const nodeId = requireOption(values['node-id'], '--node-id');
    const node = parseNodeId(nodeId);
    const instanceIp = values['instance-ip'] ?? (node.ip || '127.0.0.1');
    let metadata: unknown;
    try {
      metadata = values.metadata === undefined ? {} : JSON.parse(values.metadata);
    } catch {
      throw new PalisadeError('PAL_ERR_USAGE', '--metadata is not valid JSON');
    }
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      throw new PalisadeError('PAL_ERR_USAGE', '--metadata must be a JSON object');
    }
    const tokenFile = values['token-file'];
    const meta = metadata as Record<string, unknown>;
    // Metadata INTERCEPTION_MODE=REDIRECT alone means the same as the flag (Istio sets only the key).
    const interception =
      values.interception ?? (meta['INTERCEPTION_MODE'] === 'REDIRECT' ? 'redirect' : 'none');
    if (interception !== 'none' && interception !== 'redirect')
      throw new PalisadeError('PAL_ERR_USAGE', '--interception must be none or redirect');
    // Istio's node metadata key: the control plane sends capture listeners to REDIRECT nodes.
    if (interception === 'redirect') meta['INTERCEPTION_MODE'] = 'REDIRECT';
    const caUrl = values['ca-url'];
    let identity: ProxyIdentityOptions | undefined;
    if (caUrl !== undefined) {
      const rootFile = requireOption(values['ca-root-cert'], '--ca-root-cert');
      const namespace = meta['NAMESPACE'];
      const serviceAccount = meta['SERVICE_ACCOUNT'];
      if (typeof namespace !== 'string' || typeof serviceAccount !== 'string')
        throw new PalisadeError(
          'PAL_ERR_USAGE',
          '--ca-url needs NAMESPACE and SERVICE_ACCOUNT in --metadata',
        );
      if (tokenFile === undefined)
        throw new PalisadeError('PAL_ERR_USAGE', '--ca-url needs --token-file');
      identity = {
        caUrl,
        caRootPem: readFileSync(rootFile, 'utf8'),
        trustDomain: values['trust-domain'] ?? readConfig().trustDomain,
        namespace,
        serviceAccount,
        ...(values['svid-ttl'] === undefined ? {} : { ttl: values['svid-ttl'] }),
      };
    }
    const config = readConfig();
    const otlpEndpoint = values['otlp-endpoint'] ?? config.otlpEndpoint;
    const sampling = Number(values['trace-sampling'] ?? 1);
    if (!Number.isFinite(sampling) || sampling < 0 || sampling > 100)
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        `--trace-sampling: ${values['trace-sampling'] ?? ''} is not a percentage between 0 and 100`,
      );
    const xdsRoot = values['xds-root-cert'] ?? values['ca-root-cert'];
    if (values['xds-insecure'] === true && values['xds-root-cert'] !== undefined)
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        '--xds-insecure and --xds-root-cert exclude each other',
      );
    if (values['xds-insecure'] !== true && xdsRoot === undefined)
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        '--xds needs --xds-root-cert (or --ca-root-cert) to verify the control plane, or --xds-insecure for plaintext',
      );
    const xdsTransport: XdsTransport =
      values['xds-insecure'] === true || xdsRoot === undefined
        ? 'plaintext'
        : {
            rootPem: readFileSync(xdsRoot, 'utf8'),
            trustDomain: values['trust-domain'] ?? config.trustDomain,
          };
    const accessLog = accessLogStream(values['access-log-file']);
    const logger = createLogger('proxy', config.logLevel);
    const proxy = await startProxy({
      ...(otlpEndpoint === undefined || otlpEndpoint === ''
        ? {}
        : { tracing: { otlpEndpoint, samplingPercent: sampling } }),
      ...(accessLog === undefined ? {} : { accessLog }),
      logger,
      ...(identity === undefined ? {} : { identity }),
      node: {
        id: nodeId,
        cluster: values.cluster ?? (node.type === '' ? 'unknown' : node.id),
        metadata: metadata as Record<string, unknown>,
      },
      xdsAddress,
      xdsTransport,
      ...(tokenFile === undefined ? {} : { token: () => readFileSync(tokenFile, 'utf8').trim() }),
      instanceIp,
      outboundPort: port(values['outbound-port'], '--outbound-port', 15001),
      ...(interception === 'redirect' ? { interception: 'redirect' as const } : {}),
      adminPort: port(values['admin-port'], '--admin-port', 15000),
      drainMs: Number(values['drain-ms'] ?? 5000),
    });
    // Once serving, the last line of containment (src/proxy/containment.ts wraps every request and connection):
    // an error that still escapes is logged and the proxy keeps serving, so no input can take
    // the enforcement point down.
    process.on('unhandledRejection', (reason) => {
      logger.error({ err: reason }, 'unhandled rejection contained');
    });
    process.on('uncaughtException', (error) => {
      logger.error({ err: error }, 'uncaught exception contained');
    });
    io.stdout(`ready outbound=${String(proxy.outboundPort)} admin=${String(proxy.adminPort)}\n`);
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        resolve();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await proxy.close();
    // A file's last lines are written asynchronously: finish them before the process exits.
    if (accessLog !== undefined && accessLog !== process.stdout && accessLog !== process.stderr)
      await new Promise<void>((resolve) => {
        accessLog.end(resolve);
      });
    return 0;
  },
};
