/**
 * The iptables rules of `palisade proxy-init`: the same NAT rules Istio's
 * `istio-iptables` (pilot-agent istio-iptables, REDIRECT mode) installs in a
 * pod, with the chains named PALISADE_* instead of ISTIO_*:
 *
 * - PREROUTING → PALISADE_INBOUND: inbound TCP (minus excluded ports) to
 *   PALISADE_IN_REDIRECT, which REDIRECTs it to the sidecar's inbound port
 *   (15006).
 * - OUTPUT → PALISADE_OUTPUT: TCP the pod sends. The sidecar's own traffic
 *   (its UID/GID, 1337) returns untouched, except when it goes over `lo` to
 *   an address other than 127.0.0.1 (an app calling its own pod IP through the
 *   mesh: that is inbound traffic for the same pod, so PALISADE_IN_REDIRECT);
 *   traffic from 127.0.0.6 (the inbound passthrough source) returns; an app's
 *   own loopback traffic returns; the rest goes to PALISADE_REDIRECT, which
 *   REDIRECTs it to the outbound port (15001).
 * - optional DNS capture (Istio's `--redirect-dns`): UDP and TCP port 53 from
 *   anyone but the sidecar to its DNS proxy (15053).
 *
 * The rule text is generated here and applied with one `iptables-restore
 * --noflush` transaction, so a pod never has half its rules. Reference:
 * istio/istio tools/istio-iptables/pkg/capture/run.go and its golden files
 * (tools/istio-iptables/pkg/capture/testdata/*.golden).
 */
import { isIPv4 } from 'node:net';
import { PalisadeError } from '../../errors/index.js';

/** Options of {@link captureRules}; the flag of istio-iptables in brackets. */
export interface CaptureOptions {
  /** Outbound capture port (`-p`, 15001). */
  readonly proxyPort: number;
  /** Inbound capture port (`-z`, 15006). */
  readonly inboundPort: number;
  /** The sidecar's UID (`-u`, 1337): its traffic is not captured. */
  readonly proxyUid: number;
  /** The sidecar's GID (`-g`, 1337). */
  readonly proxyGid: number;
  /** Outbound CIDRs to capture (`-i`): `['*']` for all (default). */
  readonly includeCidrs: readonly string[];
  /** Outbound CIDRs never captured (`-x`). */
  readonly excludeCidrs: readonly string[];
  /** Inbound ports to capture (`-b`): `['*']` for all (default). */
  readonly inboundPorts: readonly string[];
  /** Inbound ports never captured (`-d`), besides the sidecar's own (15008, 15090, 15021, 15020). */
  readonly excludeInboundPorts: readonly number[];
  /** Outbound destination ports never captured (`-o`). */
  readonly excludeOutboundPorts: readonly number[];
  /** DNS capture to the sidecar's DNS proxy (`--redirect-dns`). */
  readonly redirectDns: boolean;
  /** The DNS proxy's port (15053). */
  readonly dnsPort: number;
}

/** Istio's defaults (pilot-agent istio-iptables with the sidecar injector's arguments). */
export const DEFAULT_CAPTURE: CaptureOptions = {
  proxyPort: 15001,
  inboundPort: 15006,
  proxyUid: 1337,
  proxyGid: 1337,
  includeCidrs: ['*'],
  excludeCidrs: [],
  inboundPorts: ['*'],
  excludeInboundPorts: [],
  excludeOutboundPorts: [],
  redirectDns: false,
  dnsPort: 15053,
};

/**
 * Ports of the sidecar itself that are never captured inbound: 15008 (HBONE),
 * 15090 (Prometheus), 15021 (health), 15020 (merged metrics), as Istio.
 */
export const SIDECAR_OWN_PORTS: readonly number[] = [15008, 15090, 15021, 15020];

/** The source address the sidecar uses for inbound passthrough connections (Istio's 127.0.0.6). */
export const INBOUND_PASSTHROUGH_SOURCE = '127.0.0.6';

/** Chains this module creates, in the nat table. */
export const CAPTURE_CHAINS = [
  'PALISADE_INBOUND',
  'PALISADE_IN_REDIRECT',
  'PALISADE_OUTPUT',
  'PALISADE_REDIRECT',
  'PALISADE_DNS',
] as const;

/** The rules added to the built-in chains (each jumps to one of ours): what --clean deletes. */
export function builtinJumps(options: CaptureOptions): string[] {
  const jumps = ['-A PREROUTING -p tcp -j PALISADE_INBOUND', '-A OUTPUT -p tcp -j PALISADE_OUTPUT'];
  if (options.redirectDns) jumps.push('-A OUTPUT -p udp -m udp --dport 53 -j PALISADE_DNS');
  return jumps;
}

function checkPort(value: number, field: string): void {
  if (!Number.isInteger(value) || value < 1 || value > 65535)
    throw new PalisadeError('PAL_ERR_USAGE', `${field}: ${String(value)} is not a port`);
}

function checkCidr(value: string, field: string): void {
  const [ip, bits, extra] = value.split('/');
  const n = Number(bits ?? '32');
  if (
    extra !== undefined ||
    ip === undefined ||
    !isIPv4(ip) ||
    !Number.isInteger(n) ||
    n < 0 ||
    n > 32
  )
    throw new PalisadeError(
      'PAL_ERR_USAGE',
      `${field}: ${value} is not an IPv4 CIDR (IPv6 capture is not supported)`,
    );
}

/** Validates options (field paths name the flag); throws PAL_ERR_USAGE. */
export function validateCapture(options: CaptureOptions): void {
  checkPort(options.proxyPort, '-p/--proxy-port');
  checkPort(options.inboundPort, '-z/--inbound-capture-port');
  checkPort(options.dnsPort, '--dns-port');
  for (const [v, f] of [
    [options.proxyUid, '-u/--proxy-uid'],
    [options.proxyGid, '-g/--proxy-gid'],
  ] as const)
    if (!Number.isInteger(v) || v < 0)
      throw new PalisadeError('PAL_ERR_USAGE', `${f}: ${String(v)} is not a user/group id`);
  for (const c of options.includeCidrs) if (c !== '*') checkCidr(c, '-i/--include-cidrs');
  for (const c of options.excludeCidrs) checkCidr(c, '-x/--exclude-cidrs');
  for (const p of options.inboundPorts) if (p !== '*') checkPort(Number(p), '-b/--inbound-ports');
  for (const p of options.excludeInboundPorts) checkPort(p, '-d/--exclude-inbound-ports');
  for (const p of options.excludeOutboundPorts) checkPort(p, '-o/--exclude-outbound-ports');
}

/**
 * The nat-table rules, as `iptables-restore --noflush` input (one
 * transaction: `*nat` … `COMMIT`). Chain declarations (`:NAME - [0:0]`)
 * create our chains empty or flush them if they exist, so applying twice
 * leaves one copy of each rule in them; the jumps from the built-in chains are
 * only appended by the caller when missing (see applyCapture).
 */
export function captureRules(options: CaptureOptions): string {
  validateCapture(options);
  const { proxyUid: uid, proxyGid: gid } = options;
  const lines: string[] = ['*nat'];
  for (const chain of CAPTURE_CHAINS)
    if (chain !== 'PALISADE_DNS' || options.redirectDns) lines.push(`:${chain} - [0:0]`);

  // Inbound (Istio: ISTIO_INBOUND / ISTIO_IN_REDIRECT).
  const exclude = [...SIDECAR_OWN_PORTS, ...options.excludeInboundPorts];
  if (options.inboundPorts.includes('*')) {
    for (const port of new Set(exclude))
      lines.push(`-A PALISADE_INBOUND -p tcp -m tcp --dport ${String(port)} -j RETURN`);
    lines.push('-A PALISADE_INBOUND -p tcp -j PALISADE_IN_REDIRECT');
  } else {
    for (const port of options.inboundPorts)
      lines.push(`-A PALISADE_INBOUND -p tcp -m tcp --dport ${port} -j PALISADE_IN_REDIRECT`);
  }
  lines.push(
    `-A PALISADE_IN_REDIRECT -p tcp -j REDIRECT --to-ports ${String(options.inboundPort)}`,
  );

  // Outbound (Istio: ISTIO_OUTPUT / ISTIO_REDIRECT), in Istio's order.
  for (const port of options.excludeOutboundPorts)
    lines.push(`-A PALISADE_OUTPUT -p tcp -m tcp --dport ${String(port)} -j RETURN`);
  lines.push(`-A PALISADE_OUTPUT -s ${INBOUND_PASSTHROUGH_SOURCE}/32 -o lo -j RETURN`);
  if (options.redirectDns) {
    // TCP DNS goes to the DNS proxy too, except the proxy's own upstream queries.
    lines.push(
      `-A PALISADE_OUTPUT -p tcp -m tcp --dport 53 -m owner --uid-owner ${String(uid)} -j RETURN`,
      `-A PALISADE_OUTPUT -p tcp -m tcp --dport 53 -m owner --gid-owner ${String(gid)} -j RETURN`,
      `-A PALISADE_OUTPUT ! -d 127.0.0.1/32 -p tcp -m tcp --dport 53 -j REDIRECT --to-ports ${String(options.dnsPort)}`,
    );
  }
  lines.push(
    // The sidecar calling its own pod's IP over lo: inbound for this pod.
    `-A PALISADE_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --uid-owner ${String(uid)} -j PALISADE_IN_REDIRECT`,
    `-A PALISADE_OUTPUT -o lo -m owner ! --uid-owner ${String(uid)} -j RETURN`,
    `-A PALISADE_OUTPUT -m owner --uid-owner ${String(uid)} -j RETURN`,
    `-A PALISADE_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --gid-owner ${String(gid)} -j PALISADE_IN_REDIRECT`,
    `-A PALISADE_OUTPUT -o lo -m owner ! --gid-owner ${String(gid)} -j RETURN`,
    `-A PALISADE_OUTPUT -m owner --gid-owner ${String(gid)} -j RETURN`,
    '-A PALISADE_OUTPUT -d 127.0.0.1/32 -j RETURN',
  );
  for (const cidr of options.excludeCidrs) lines.push(`-A PALISADE_OUTPUT -d ${cidr} -j RETURN`);
  if (options.includeCidrs.includes('*')) {
    lines.push('-A PALISADE_OUTPUT -j PALISADE_REDIRECT');
  } else {
    for (const cidr of options.includeCidrs)
      lines.push(`-A PALISADE_OUTPUT -d ${cidr} -j PALISADE_REDIRECT`);
    lines.push('-A PALISADE_OUTPUT -j RETURN');
  }
  lines.push(`-A PALISADE_REDIRECT -p tcp -j REDIRECT --to-ports ${String(options.proxyPort)}`);

  if (options.redirectDns)
    lines.push(
      `-A PALISADE_DNS -m owner --uid-owner ${String(uid)} -j RETURN`,
      `-A PALISADE_DNS -m owner --gid-owner ${String(gid)} -j RETURN`,
      `-A PALISADE_DNS ! -d 127.0.0.1/32 -p udp -j REDIRECT --to-ports ${String(options.dnsPort)}`,
    );
  lines.push('COMMIT', '');
  return lines.join('\n');
}
