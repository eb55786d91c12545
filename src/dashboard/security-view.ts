/**
 * The security view: per workload, who it is (SPIFFE ID, certificate serial
 * and validity from its proxy's admin `/certs`, so renewals show), how it is
 * reached (the effective PeerAuthentication mode per port), what guards it
 * (the AuthorizationPolicies that select it), a "who may call me" matrix
 * computed with the same engine as `palisade check authz` (src/policy: each
 * mesh workload's identity, and a plaintext caller, sending `GET /` to each
 * port), and the denials of the last minutes with the policy that decided
 * each, read from the proxies' `/tap/denies`.
 */
import type { Manifest } from '../api/index.js';
import {
  applicablePolicies,
  createWorkloadAuthorizer,
  loadSecurityPolicies,
  resolvePeerAuthentication,
  type SecurityPolicies,
} from '../policy/index.js';
import { httpGet } from './mesh-data.js';
import type { MeshWorkload } from './service-graph.js';

/** One caller's verdict in the matrix. */
export interface CallerVerdict {
  /** A workload id, or `plaintext` for a caller without a mesh identity. */
  readonly source: string;
  readonly port: number;
  readonly decision: 'ALLOW' | 'DENY';
  /** `ns/name` of the deciding policy, when one decided. */
  readonly policy: string | null;
  readonly reason: string;
}

/** One denial as the security view lists it. */
export interface DenyEntry {
  readonly time: string;
  readonly proxy: string;
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly sourcePrincipal: string | null;
  /** The calling workload(s) with that identity. */
  readonly sources: readonly string[];
  readonly policy: string | null;
  readonly details: string | null;
}

/** One workload in `GET /api/security`. */
export interface WorkloadSecurity {
  readonly id: string;
  readonly workload: string;
  readonly namespace: string;
  readonly spiffeId: string;
  readonly certificates: readonly {
    readonly proxy: string;
    readonly spiffeId: string | null;
    readonly serial: string | null;
    readonly notBefore: string | null;
    readonly notAfter: string | null;
  }[];
  readonly peerAuthentication: readonly {
    readonly port: number;
    readonly mode: string;
    readonly policy: string | null;
  }[];
  readonly authorizationPolicies: readonly { readonly name: string; readonly action: string }[];
  readonly callers: readonly CallerVerdict[];
  readonly denies: readonly DenyEntry[];
}

/** `GET /api/security`. */
export interface SecurityView {
  readonly workloads: readonly WorkloadSecurity[];
  readonly denies: readonly DenyEntry[];
  readonly problems: readonly string[];
}

interface CertsJson {
  spiffe_id?: string | null;
  certificates?: {
    cert_chain?: { serial_number?: string; valid_from?: string; expiration_time?: string }[];
  }[];
}

interface TapDeny {
  time: string;
  method: string;
  path: string;
  status: number;
  sourcePrincipal: string | null;
  policy?: string;
  details?: string;
}

/** Builds the security view of the mesh now. */
export async function securityView(
  workloads: readonly MeshWorkload[],
  objects: readonly Manifest[],
  trustDomain: string,
): Promise<SecurityView> {
  const problems: string[] = [];
  let policies: SecurityPolicies = {
    peerAuthentications: [],
    requestAuthentications: [],
    authorizationPolicies: [],
  };
  try {
    policies = loadSecurityPolicies(objects);
  } catch (error) {
    problems.push(`security policies could not be read: ${(error as Error).message}`);
  }
  const byPrincipal = (principal: string | null): string[] =>
    principal === null ? [] : workloads.filter((w) => w.principal === principal).map((w) => w.id);
  const allDenies: DenyEntry[] = [];
  const out = await Promise.all(
    workloads.map(async (w): Promise<WorkloadSecurity> => {
      const subject = { namespace: w.namespace, labels: w.labels };
      const certificates = await Promise.all(
        w.proxies.map(async (p) => {
          const r = await httpGet(`${p.adminUrl}/certs`);
          let parsed: CertsJson;
          try {
            parsed = r?.status === 200 ? (JSON.parse(r.body) as CertsJson) : {};
          } catch {
            parsed = {};
          }
          const leaf = parsed.certificates?.[0]?.cert_chain?.[0];
          return {
            proxy: p.name,
            spiffeId: parsed.spiffe_id ?? null,
            serial: leaf?.serial_number ?? null,
            notBefore: leaf?.valid_from ?? null,
            notAfter: leaf?.expiration_time ?? null,
          };
        }),
      );
      const denies = (
        await Promise.all(
          w.proxies.map(async (p) => {
            const r = await httpGet(`${p.adminUrl}/tap/denies`);
            if (r?.status !== 200) return [];
            try {
              const list = (JSON.parse(r.body) as { denies?: TapDeny[] }).denies ?? [];
              return list.map((d): DenyEntry => ({
                time: d.time,
                proxy: p.name,
                method: d.method,
                path: d.path,
                status: d.status,
                sourcePrincipal: d.sourcePrincipal,
                sources: byPrincipal(d.sourcePrincipal),
                policy: d.policy ?? null,
                details: d.details ?? null,
              }));
            } catch {
              return [];
            }
          }),
        )
      ).flat();
      allDenies.push(...denies);
      const ports = w.ports.length > 0 ? w.ports : [];
      const callers: CallerVerdict[] = [];
      if (w.kind === 'workload') {
        const authorizer = createWorkloadAuthorizer(policies, subject, { trustDomain });
        const sources: { id: string; principal: string | null }[] = [
          ...workloads
            .filter((s) => s.id !== w.id)
            .map((s) => ({ id: s.id, principal: s.principal })),
          { id: 'plaintext', principal: null },
        ];
        for (const port of ports)
          for (const s of sources) {
            const d = await authorizer.decide({
              principal: s.principal,
              destinationPort: port,
              protocol: 'http',
              method: 'GET',
              path: '/',
              host: `${w.services[0] ?? w.workload}:${String(port)}`,
              headers: {},
            });
            callers.push({
              source: s.id,
              port,
              decision: d.decision,
              policy: d.policy,
              reason: d.reason,
            });
          }
      }
      return {
        id: w.id,
        workload: w.workload,
        namespace: w.namespace,
        spiffeId: w.principal,
        certificates,
        peerAuthentication: ports.map((port) => {
          const pa = resolvePeerAuthentication(policies.peerAuthentications, subject, port);
          return { port, mode: pa.mode, policy: pa.policy };
        }),
        authorizationPolicies: applicablePolicies(policies.authorizationPolicies, subject).map(
          (p) => ({
            name: `${p.metadata.namespace ?? 'default'}/${p.metadata.name}`,
            action: p.spec?.action ?? 'ALLOW',
          }),
        ),
        callers,
        denies,
      };
    }),
  );
  allDenies.sort((a, b) => b.time.localeCompare(a.time));
  return { workloads: out, denies: allDenies, problems };
}
