/**
 * Service virtual IPs for netns mode: every Service gets a ClusterIP from the
 * service CIDR (Kubernetes' default 10.96.0.0/12 → ours 10.96.0.0/16), written
 * into `spec.clusterIP` of the copy in the control plane's config dir (the
 * control plane uses it as the service VIP); its names resolve in sidecar pods
 * through the sidecar's DNS proxy (the control plane's name table), and in
 * gateway pods through /etc/netns/<netns>/hosts, as cluster DNS would.
 *
 * Allocation is deterministic: Services in namespace/name order from the
 * tenth address on (Kubernetes reserves the first for `kubernetes.default`);
 * a ClusterIP set in the manifest is kept.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { cidrHost, parseCidr } from './cidr.js';

/** One Service and its ClusterIP. */
export interface ServiceVip {
  readonly namespace: string;
  readonly name: string;
  readonly clusterIP: string;
}

interface ServiceLike {
  readonly namespace: string;
  readonly name: string;
  readonly clusterIP?: string | undefined;
}

/** Assigns ClusterIPs (kept when set and not `None`). */
export function assignClusterIps(
  services: readonly ServiceLike[],
  serviceCidr: string,
): ServiceVip[] {
  const cidr = parseCidr(serviceCidr, '--service-cidr');
  const sorted = [...services].sort((a, b) =>
    `${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1,
  );
  const taken = new Set(sorted.map((s) => s.clusterIP).filter((ip) => ip !== undefined));
  let next = 10;
  return sorted.map((s) => {
    if (s.clusterIP !== undefined && s.clusterIP !== '' && s.clusterIP !== 'None')
      return { namespace: s.namespace, name: s.name, clusterIP: s.clusterIP };
    let ip = cidrHost(cidr, next);
    while (taken.has(ip)) ip = cidrHost(cidr, ++next);
    next += 1;
    return { namespace: s.namespace, name: s.name, clusterIP: ip };
  });
}

/** Writes `spec.clusterIP` into each Service's file in the config dir (file names from `fileOf`). */
export function writeClusterIps(
  configDir: string,
  vips: readonly ServiceVip[],
  fileOf: (namespace: string, name: string) => string,
): void {
  for (const v of vips) {
    const file = join(configDir, fileOf(v.namespace, v.name));
    const doc = parse(readFileSync(file, 'utf8')) as { spec?: Record<string, unknown> };
    doc.spec = { ...(doc.spec ?? {}), clusterIP: v.clusterIP };
    writeFileSync(file, stringify(doc), { mode: 0o600 });
  }
}

/**
 * The /etc/hosts of a pod: localhost, the pod's own name, and per Service the
 * names cluster DNS answers for it from namespace `podNamespace` (the short
 * name only for Services in the pod's own namespace, as the DNS search path).
 */
export function podHostsFile(
  pod: { name: string; podIP: string; namespace: string },
  vips: readonly ServiceVip[],
): string {
  const lines = [
    '# written by palisade up (netns mode): cluster names of the mesh Services',
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    `${pod.podIP}\t${pod.name}`,
  ];
  for (const v of vips) {
    const names = [
      ...(v.namespace === pod.namespace ? [v.name] : []),
      `${v.name}.${v.namespace}`,
      `${v.name}.${v.namespace}.svc`,
      `${v.name}.${v.namespace}.svc.cluster.local`,
    ];
    lines.push(`${v.clusterIP}\t${names.join(' ')}`);
  }
  return `${lines.join('\n')}\n`;
}

interface AppliedObject {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly resource: unknown;
}

function clusterIpOf(resource: unknown): string | undefined {
  const spec = (resource as { spec?: { clusterIP?: unknown } } | undefined)?.spec;
  const ip = spec?.clusterIP;
  return typeof ip === 'string' && ip !== '' ? ip : undefined;
}

/**
 * `palisade apply` in netns mode: a Service applied without `spec.clusterIP`
 * gets one, as the Kubernetes API server allocates it on create — the one it
 * already has when it exists (a ClusterIP is immutable), else the next free
 * address of the service CIDR (from the tenth, as at start-up). The control
 * plane then uses it as the VIP and the sidecars' DNS proxies answer its names
 * with it. Other objects pass through unchanged.
 */
export function withClusterIps<T extends AppliedObject>(
  objects: readonly T[],
  current: readonly { readonly object: unknown }[],
  serviceCidr: string,
): T[] {
  const cidr = parseCidr(serviceCidr, '--service-cidr');
  const existing = new Map<string, string>();
  const taken = new Set<string>();
  for (const { object } of current) {
    const o = object as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
    const ip = clusterIpOf(object);
    if (o.kind !== 'Service' || ip === undefined) continue;
    const ns = typeof o.metadata?.namespace === 'string' ? o.metadata.namespace : 'default';
    existing.set(`${ns}/${String(o.metadata?.name)}`, ip);
    taken.add(ip);
  }
  for (const o of objects) {
    const ip = o.kind === 'Service' ? clusterIpOf(o.resource) : undefined;
    if (ip !== undefined) taken.add(ip);
  }
  let next = 10;
  return objects.map((o) => {
    if (o.kind !== 'Service' || clusterIpOf(o.resource) !== undefined) return o;
    let ip = existing.get(`${o.namespace}/${o.name}`);
    if (ip === undefined) {
      // cidrHost refuses an index past the CIDR: the service range is exhausted.
      do ip = cidrHost(cidr, next++);
      while (taken.has(ip));
      taken.add(ip);
    }
    const resource = o.resource as { spec?: Record<string, unknown> };
    return { ...o, resource: { ...resource, spec: { ...(resource.spec ?? {}), clusterIP: ip } } };
  });
}
