/**
 * Upstream TLS for outbound clusters (Envoy UpstreamTlsContext): mTLS with the
 * workload's SVID (SDS `default`) verified against the trust bundle (SDS
 * `ROOTCA`) — Istio's ISTIO_MUTUAL — or TLS with files named in the cluster
 * (DestinationRule SIMPLE/MUTUAL). After the chain verifies, the server's
 * identity must match `match_subject_alt_names` (secure naming: only the
 * service accounts allowed to serve the service; istio.io "Secure naming").
 *
 * Agents are keyed by cluster and secret generation: a rotated SVID or a new
 * bundle is used by the next connection while live ones finish. A missing
 * secret fails the request (never a plaintext fallback).
 */
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import type { PeerCertificate } from 'node:tls';
import { PalisadeError } from '../../errors/index.js';
import { peerSpiffeIds } from '../../identity/workload.js';
import type { SecretStore } from '../tls/secrets.js';

type R = Record<string, unknown>;
const rec = (v: unknown): R =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as R) : {};
const list = (v: unknown): R[] => (Array.isArray(v) ? v.map(rec) : []);

/** A SAN matcher (StringMatcher subset). */
export type SanMatcher = { readonly exact: string } | { readonly prefix: string };

/** What a cluster's UpstreamTlsContext asks for. */
export interface UpstreamTlsConfig {
  readonly sni: string | undefined;
  readonly alpn: readonly string[];
  readonly sans: readonly SanMatcher[];
  /** SDS names, or inline/file material. */
  readonly certificateSecret: string | undefined;
  readonly validationSecret: string | undefined;
  readonly certificateFiles: { readonly cert: string; readonly key: string } | undefined;
  readonly caFile: string | undefined;
}

/** Fields of UpstreamTlsContext this build implements (others are NACKed). */
export const UPSTREAM_TLS_FIELDS = ['@type', 'sni', 'common_tls_context'] as const;
const COMMON_FIELDS = [
  'alpn_protocols',
  'tls_certificate_sds_secret_configs',
  'combined_validation_context',
  'validation_context',
  'tls_certificates',
];

function discriminator(object: R, key: string): boolean {
  const value = object[key];
  return typeof value === 'string' && value !== key && value in object;
}

function sanMatchers(context: R): SanMatcher[] {
  return list(context['match_subject_alt_names']).flatMap((m): SanMatcher[] =>
    typeof m['exact'] === 'string'
      ? [{ exact: m['exact'] }]
      : typeof m['prefix'] === 'string'
        ? [{ prefix: m['prefix'] }]
        : [],
  );
}

/** Reads a cluster's transport socket; `problems` lists anything unsupported. */
export function parseUpstreamTls(
  cluster: R,
  problems: string[] = [],
): UpstreamTlsConfig | undefined {
  const socket = rec(cluster['transport_socket']);
  if (Object.keys(socket).length === 0) return undefined;
  const config = rec(socket['typed_config']);
  for (const key of Object.keys(config))
    if (!(UPSTREAM_TLS_FIELDS as readonly string[]).includes(key) && !discriminator(config, key))
      problems.push(`transport_socket: unsupported field ${key}`);
  const common = rec(config['common_tls_context']);
  for (const key of Object.keys(common))
    if (!COMMON_FIELDS.includes(key) && !discriminator(common, key))
      problems.push(`transport_socket.common_tls_context: unsupported field ${key}`);
  const combined = rec(common['combined_validation_context']);
  const validation = {
    ...rec(common['validation_context']),
    ...rec(combined['default_validation_context']),
  };
  for (const key of Object.keys(validation))
    if (!['match_subject_alt_names', 'trusted_ca'].includes(key) && !discriminator(validation, key))
      problems.push(`transport_socket validation context: unsupported field ${key}`);
  const certSds = list(common['tls_certificate_sds_secret_configs'])[0]?.['name'];
  const files = list(common['tls_certificates'])[0];
  const certFile = rec(files?.['certificate_chain'])['filename'];
  const keyFile = rec(files?.['private_key'])['filename'];
  const caFile = rec(validation['trusted_ca'])['filename'];
  const caSds = rec(combined['validation_context_sds_secret_config'])['name'];
  if (caSds === undefined && caFile === undefined)
    problems.push(
      'transport_socket: no trust anchor (validation_context_sds_secret_config or trusted_ca.filename); refusing to connect unverified',
    );
  return {
    sni: typeof config['sni'] === 'string' && config['sni'] !== '' ? config['sni'] : undefined,
    alpn: Array.isArray(common['alpn_protocols'])
      ? (common['alpn_protocols'] as unknown[]).map(String)
      : [],
    sans: sanMatchers(validation),
    certificateSecret: typeof certSds === 'string' ? certSds : undefined,
    validationSecret: typeof caSds === 'string' ? caSds : undefined,
    certificateFiles:
      typeof certFile === 'string' && typeof keyFile === 'string'
        ? { cert: certFile, key: keyFile }
        : undefined,
    caFile: typeof caFile === 'string' ? caFile : undefined,
  };
}

/** True when the certificate carries a SAN the matchers accept (any when there are none). */
export function sanAllowed(cert: PeerCertificate, sans: readonly SanMatcher[]): boolean {
  if (sans.length === 0) return true;
  const names = [
    ...peerSpiffeIds(cert),
    ...(cert.subjectaltname ?? '')
      .split(/,\s*/)
      .filter((n) => n.startsWith('DNS:'))
      .map((n) => n.slice(4)),
  ];
  return names.some((n) =>
    sans.some((m) => ('exact' in m ? n === m.exact : n.startsWith(m.prefix))),
  );
}

/** Agents for TLS clusters, rebuilt when secrets change. */
export interface UpstreamTlsAgents {
  /** The agent for a cluster, or an Error saying why no TLS connection can be made. */
  agentFor(clusterName: string, config: UpstreamTlsConfig): https.Agent | Error;
  destroy(): void;
}

/** Creates the agent cache over a secret store. */
export function createUpstreamTlsAgents(
  secrets: SecretStore | undefined,
  onMismatch?: (cluster: string, presented: string[]) => void,
): UpstreamTlsAgents {
  const agents = new Map<string, { generation: number; agent: https.Agent }>();
  return {
    agentFor(clusterName, config) {
      const generation = secrets?.generation ?? 0;
      const hit = agents.get(clusterName);
      if (hit?.generation === generation) return hit.agent;
      let ca: string | undefined;
      let cert: string | undefined;
      let key: string | undefined;
      try {
        if (config.validationSecret !== undefined)
          ca = secrets?.get(config.validationSecret)?.validationContext?.trustedCaPem;
        else if (config.caFile !== undefined) ca = readFileSync(config.caFile, 'utf8');
        if (config.certificateSecret !== undefined) {
          const own = secrets?.get(config.certificateSecret)?.tlsCertificate;
          cert = own?.certChainPem;
          key = own?.privateKeyPem;
          if (own === undefined)
            return new Error(
              `no certificate for SDS secret ${JSON.stringify(config.certificateSecret)} yet`,
            );
        } else if (config.certificateFiles !== undefined) {
          cert = readFileSync(config.certificateFiles.cert, 'utf8');
          key = readFileSync(config.certificateFiles.key, 'utf8');
        }
      } catch (error) {
        return error instanceof Error ? error : new Error(String(error));
      }
      if (ca === undefined) return new Error(`no trust bundle for cluster ${clusterName} yet`);
      const sans = config.sans;
      const agent = new https.Agent({
        keepAlive: true,
        maxSockets: 256,
        ca,
        ...(cert === undefined || key === undefined ? {} : { cert, key }),
        ...(config.sni === undefined ? {} : { servername: config.sni }),
        ALPNProtocols: ['http/1.1'],
        minVersion: 'TLSv1.2',
        // The chain is verified against `ca` by Node; identity is the SAN check (secure naming), not the hostname.
        checkServerIdentity: (_host, peer) => {
          if (sanAllowed(peer, sans)) return undefined;
          const presented = peerSpiffeIds(peer);
          onMismatch?.(clusterName, presented);
          // Coded, so the request path recognises it without reading its text (no retry, UF).
          return new PalisadeError(
            'PAL_ERR_PEER_IDENTITY_MISMATCH',
            `secure naming: server presented ${presented.join(', ') || 'no SPIFFE ID'}, not one of ${sans.map((m) => ('exact' in m ? m.exact : `${m.prefix}*`)).join(', ')}`,
          );
        },
      });
      // The previous agent is not destroyed: its live connections finish; idle ones time out.
      agents.set(clusterName, { generation, agent });
      return agent;
    },
    destroy() {
      for (const { agent } of agents.values()) agent.destroy();
      agents.clear();
    },
  };
}
