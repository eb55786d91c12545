/**
 * `palisade apiserver` — the Kubernetes-compatible API server (docs/apiserver.md).
 * Flags are named as kube-apiserver names them.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { PalisadeError } from '../../errors/index.js';
import {
  ensurePki,
  openEmbeddedStore,
  openEtcdStore,
  startApiServer,
  type OidcOptions,
  AUTHORIZATION_MODES,
  type AuthorizationMode,
  readAuditPolicy,
  parseDuration,
  readWebhookKubeconfig,
} from '../../apiserver/index.js';
import { parseCommandArgs, requireOption } from '../args.js';
import type { Command } from '../command.js';

/** On unless disabled, as in kube-apiserver's default set. */
const DEFAULT_PLUGINS = [
  'NamespaceLifecycle',
  'ServiceAccount',
  'PodSecurity',
  'MutatingAdmissionWebhook',
  'ValidatingAdmissionWebhook',
  'ResourceQuota',
];
/** Off unless enabled. */
const OPT_IN_PLUGINS = ['AlwaysPullImages'];
const KNOWN_PLUGINS = [...DEFAULT_PLUGINS, ...OPT_IN_PLUGINS];

function authorizationModes(text: string): AuthorizationMode[] {
  const modes = text.split(',').map((m) => m.trim());
  for (const m of modes) {
    if (m === 'Node')
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        '--authorization-mode Node: not available (this server keeps no Node objects for kubelets)',
      );
    if (!(AUTHORIZATION_MODES as readonly string[]).includes(m))
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        `--authorization-mode ${JSON.stringify(m)}: unknown (known: ${AUTHORIZATION_MODES.join(', ')})`,
      );
  }
  if (new Set(modes).size !== modes.length)
    throw new PalisadeError(
      'PAL_ERR_USAGE',
      `--authorization-mode ${text}: a mode is listed twice`,
    );
  return modes as AuthorizationMode[];
}

function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (m === null || port > 65535)
    throw new PalisadeError(
      'PAL_ERR_USAGE',
      `--listen ${JSON.stringify(text)}: expected HOST:PORT`,
    );
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port };
}

function plugins(flag: string, text: string | undefined): string[] {
  if (text === undefined || text === '') return [];
  const list = text.split(',').map((p) => p.trim());
  for (const p of list)
    if (!KNOWN_PLUGINS.includes(p))
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        `${flag}: unknown admission plugin ${JSON.stringify(p)} (known: ${KNOWN_PLUGINS.join(', ')})`,
      );
  return list;
}

function readEtcdTls(
  cwd: string,
  ca: string | undefined,
  cert: string | undefined,
  key: string | undefined,
): { ca: Buffer; cert?: Buffer; key?: Buffer } | undefined {
  if (ca === undefined) {
    if (cert !== undefined || key !== undefined)
      throw new PalisadeError('PAL_ERR_USAGE', '--etcd-certfile/--etcd-keyfile need --etcd-cafile');
    return undefined;
  }
  const read = (flag: string, f: string): Buffer => {
    try {
      return readFileSync(resolve(cwd, f));
    } catch (cause) {
      throw new PalisadeError('PAL_ERR_FILE_READ', `${flag} ${f}: cannot read`, { cause });
    }
  };
  return {
    ca: read('--etcd-cafile', ca),
    ...(cert === undefined ? {} : { cert: read('--etcd-certfile', cert) }),
    ...(key === undefined ? {} : { key: read('--etcd-keyfile', key) }),
  };
}

export const apiserverCommand: Command = {
  path: ['apiserver'],
  summary: 'Run the Kubernetes-compatible API server (kubectl works against it)',
  usage: `Usage: palisade apiserver --data-dir DIR [--listen 127.0.0.1:6443]
       [--store embedded|etcd] [--etcd-endpoints URL,…] [--etcd-cafile F --etcd-certfile F --etcd-keyfile F]
       [--token-auth-file FILE] [--client-ca-file FILE] [--anonymous-auth]
       [--oidc-issuer-url URL --oidc-client-id ID [--oidc-username-claim C] [--oidc-username-prefix P]
        [--oidc-groups-claim C] [--oidc-groups-prefix P] [--oidc-ca-file FILE]]
       [--authentication-token-webhook-config-file FILE [--authentication-token-webhook-cache-ttl 2m]]
       [--service-account-issuer URL] [--authorization-mode RBAC[,Webhook|,AlwaysAllow|,AlwaysDeny]]
       [--authorization-webhook-config-file FILE [--authorization-webhook-cache-authorized-ttl 5m]
        [--authorization-webhook-cache-unauthorized-ttl 30s]]
       [--enable-admission-plugins LIST] [--disable-admission-plugins LIST]
       [--audit-policy-file FILE --audit-log-path FILE|-]

Serves HTTPS with a certificate from a CA it creates in DIR/pki, keeps its
objects in DIR (an fsync'd log; --store embedded) or in etcd, writes DIR/admin.kubeconfig
(user admin in group system:masters, by client certificate) and prints
"API server ready: https://HOST:PORT" once it serves. Admission plugins on by
default: ${DEFAULT_PLUGINS.join(', ')}; opt-in: ${OPT_IN_PLUGINS.join(', ')}.
Stops on SIGINT/SIGTERM.`,
  run: async (args, io) => {
    const { values } = parseCommandArgs(
      args,
      {
        'data-dir': { type: 'string' },
        listen: { type: 'string' },
        store: { type: 'string' },
        'etcd-endpoints': { type: 'string' },
        'etcd-cafile': { type: 'string' },
        'etcd-certfile': { type: 'string' },
        'etcd-keyfile': { type: 'string' },
        'token-auth-file': { type: 'string' },
        'client-ca-file': { type: 'string' },
        'anonymous-auth': { type: 'boolean' },
        'oidc-issuer-url': { type: 'string' },
        'oidc-client-id': { type: 'string' },
        'oidc-username-claim': { type: 'string' },
        'oidc-username-prefix': { type: 'string' },
        'oidc-groups-claim': { type: 'string' },
        'oidc-groups-prefix': { type: 'string' },
        'oidc-ca-file': { type: 'string' },
        'service-account-issuer': { type: 'string' },
        'authorization-mode': { type: 'string' },
        'enable-admission-plugins': { type: 'string' },
        'disable-admission-plugins': { type: 'string' },
        'authentication-token-webhook-config-file': { type: 'string' },
        'authentication-token-webhook-cache-ttl': { type: 'string' },
        'authentication-token-webhook-version': { type: 'string' },
        'authorization-webhook-config-file': { type: 'string' },
        'authorization-webhook-cache-authorized-ttl': { type: 'string' },
        'authorization-webhook-cache-unauthorized-ttl': { type: 'string' },
        'audit-policy-file': { type: 'string' },
        'audit-log-path': { type: 'string' },
      },
      false,
    );
    const dataDir = resolve(io.cwd, requireOption(values['data-dir'], '--data-dir'));
    const { host, port } = parseListen(values.listen ?? '127.0.0.1:6443');
    const storeKind = values.store ?? 'embedded';
    if (storeKind !== 'embedded' && storeKind !== 'etcd')
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        `--store ${JSON.stringify(storeKind)}: must be embedded or etcd`,
      );
    const endpoints = (values['etcd-endpoints'] ?? '')
      .split(',')
      .map((e) => e.trim())
      .filter((e) => e !== '');
    if (storeKind === 'etcd' && endpoints.length === 0)
      throw new PalisadeError('PAL_ERR_USAGE', '--store etcd needs --etcd-endpoints URL[,URL…]');
    for (const e of endpoints)
      if (!/^https?:\/\/[^/]+$/.test(e))
        throw new PalisadeError(
          'PAL_ERR_USAGE',
          `--etcd-endpoints: ${JSON.stringify(e)} is not http(s)://HOST:PORT`,
        );
    const modes = authorizationModes(values['authorization-mode'] ?? 'RBAC');
    const authzFile = values['authorization-webhook-config-file'];
    if (modes.includes('Webhook') !== (authzFile !== undefined))
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        '--authorization-mode Webhook and --authorization-webhook-config-file go together',
      );
    const authorizationWebhook =
      authzFile === undefined
        ? undefined
        : {
            target: readWebhookKubeconfig(
              '--authorization-webhook-config-file',
              resolve(io.cwd, authzFile),
            ),
            authorizedTtlMs: parseDuration(
              '--authorization-webhook-cache-authorized-ttl',
              values['authorization-webhook-cache-authorized-ttl'] ?? '5m',
            ),
            unauthorizedTtlMs: parseDuration(
              '--authorization-webhook-cache-unauthorized-ttl',
              values['authorization-webhook-cache-unauthorized-ttl'] ?? '30s',
            ),
          };
    const version = values['authentication-token-webhook-version'] ?? 'v1';
    if (version !== 'v1')
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        `--authentication-token-webhook-version ${version}: only v1 is spoken`,
      );
    const authnFile = values['authentication-token-webhook-config-file'];
    const tokenWebhook =
      authnFile === undefined
        ? undefined
        : {
            target: readWebhookKubeconfig(
              '--authentication-token-webhook-config-file',
              resolve(io.cwd, authnFile),
            ),
            cacheTtlMs: parseDuration(
              '--authentication-token-webhook-cache-ttl',
              values['authentication-token-webhook-cache-ttl'] ?? '2m',
            ),
          };
    const enabled = plugins('--enable-admission-plugins', values['enable-admission-plugins']);
    const disabled = plugins('--disable-admission-plugins', values['disable-admission-plugins']);
    for (const p of enabled)
      if (disabled.includes(p))
        throw new PalisadeError(
          'PAL_ERR_USAGE',
          `admission plugin ${JSON.stringify(p)} is both enabled and disabled`,
        );
    const policyFile = values['audit-policy-file'];
    const auditLog = values['audit-log-path'];
    if ((policyFile === undefined) !== (auditLog === undefined))
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        '--audit-policy-file and --audit-log-path go together (a policy with nowhere to write, or a log with no policy, audits nothing)',
      );
    const auditPolicy =
      policyFile === undefined ? undefined : readAuditPolicy(resolve(io.cwd, policyFile));
    const auditLogPath =
      auditLog === undefined || auditLog === '-' ? auditLog : resolve(io.cwd, auditLog);
    const tokenAuthFile =
      values['token-auth-file'] === undefined
        ? undefined
        : resolve(io.cwd, values['token-auth-file']);
    let clientCaPem: string | undefined;
    if (values['client-ca-file'] !== undefined) {
      const p = resolve(io.cwd, values['client-ca-file']);
      try {
        clientCaPem = readFileSync(p, 'utf8');
      } catch (cause) {
        throw new PalisadeError('PAL_ERR_FILE_READ', `--client-ca-file ${p}: cannot read`, {
          cause,
        });
      }
    }
    const oidcIssuer = values['oidc-issuer-url'];
    let oidc: OidcOptions | undefined;
    if (oidcIssuer !== undefined) {
      if (!oidcIssuer.startsWith('https://'))
        throw new PalisadeError(
          'PAL_ERR_USAGE',
          `--oidc-issuer-url ${oidcIssuer}: must be an https URL`,
        );
      const caFile = values['oidc-ca-file'];
      let caPem: string | undefined;
      if (caFile !== undefined) {
        try {
          caPem = readFileSync(resolve(io.cwd, caFile), 'utf8');
        } catch (cause) {
          throw new PalisadeError('PAL_ERR_FILE_READ', `--oidc-ca-file ${caFile}: cannot read`, {
            cause,
          });
        }
      }
      oidc = {
        issuerUrl: oidcIssuer,
        clientId: requireOption(values['oidc-client-id'], '--oidc-client-id'),
        ...(values['oidc-username-claim'] === undefined
          ? {}
          : { usernameClaim: values['oidc-username-claim'] }),
        ...(values['oidc-username-prefix'] === undefined
          ? {}
          : { usernamePrefix: values['oidc-username-prefix'] }),
        ...(values['oidc-groups-claim'] === undefined
          ? {}
          : { groupsClaim: values['oidc-groups-claim'] }),
        ...(values['oidc-groups-prefix'] === undefined
          ? {}
          : { groupsPrefix: values['oidc-groups-prefix'] }),
        ...(caPem === undefined ? {} : { caPem }),
      };
    }
    const tls = readEtcdTls(
      io.cwd,
      values['etcd-cafile'],
      values['etcd-certfile'],
      values['etcd-keyfile'],
    );
    const store =
      storeKind === 'etcd'
        ? await openEtcdStore({ endpoints, ...(tls === undefined ? {} : { tls }) })
        : await openEmbeddedStore({ dir: dataDir });
    const displayHost = host.includes(':') ? `[${host}]` : host;
    try {
      // Port 0 picks a free port; the kubeconfig is rewritten with the real one below.
      const pki = await ensurePki(dataDir, host, `https://${displayHost}:${String(port)}`);
      const server = await startApiServer({
        store,
        pki,
        host,
        port,
        ...(tokenAuthFile === undefined ? {} : { tokenAuthFile }),
        ...(clientCaPem === undefined ? {} : { clientCaPem }),
        anonymous: values['anonymous-auth'] === true,
        ...(oidc === undefined ? {} : { oidc }),
        ...(values['service-account-issuer'] === undefined
          ? {}
          : { serviceAccountIssuer: values['service-account-issuer'] }),
        disabledAdmissionPlugins: disabled,
        enabledAdmissionPlugins: enabled,
        authorizationModes: modes,
        ...(authorizationWebhook === undefined ? {} : { authorizationWebhook }),
        ...(tokenWebhook === undefined ? {} : { tokenWebhook }),
        ...(auditPolicy === undefined ? {} : { auditPolicy }),
        ...(auditLogPath === undefined ? {} : { auditLogPath }),
      });
      if (port === 0) await ensurePki(dataDir, host, server.url);
      io.stdout(`API server ready: ${server.url}\n`);
      await new Promise<void>((done) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          done();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await server.close();
    } finally {
      await store.close();
    }
    return 0;
  },
};
