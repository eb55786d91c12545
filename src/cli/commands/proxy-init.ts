/**
 * `palisade proxy-init` installs the traffic-capture rules of a pod (Istio's
 * `istio-iptables`, flags modelled on it) in the current network namespace or
 * in `--netns NAME`; `--clean` removes them, `--dry-run` prints them.
 */
import { PalisadeError } from '../../errors/index.js';
import {
  cleanCapture,
  DEFAULT_CAPTURE,
  installCapture,
  installScript,
  validateCapture,
  type CaptureOptions,
} from '../../runtime/index.js';
import { parseCommandArgs } from '../args.js';
import type { Command } from '../command.js';

function list(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function numbers(value: string | undefined, flag: string): number[] | undefined {
  return list(value)?.map((s) => {
    const n = Number(s);
    if (!/^\d+$/.test(s)) throw new PalisadeError('PAL_ERR_USAGE', `${flag}: ${s} is not a number`);
    return n;
  });
}

function number(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value))
    throw new PalisadeError('PAL_ERR_USAGE', `${flag}: ${value} is not a number`);
  return Number(value);
}

export const proxyInitCommand: Command = {
  path: ['proxy-init'],
  summary: "Install a pod's traffic-capture iptables rules (Istio's istio-iptables)",
  usage: `Usage: palisade proxy-init [--netns NAME] [-p 15001] [-z 15006] [-u 1337] [-g 1337] [-m REDIRECT]
                           [-i CIDRS|*] [-x CIDRS] [-b PORTS|*] [-d PORTS] [-o PORTS]
                           [--redirect-dns] [--dns-port 15053] [--dry-run | --clean]

Installs in the nat table of the current network namespace (run it with
\`ip netns exec NAME\`) or of --netns NAME the rules Istio's istio-iptables
installs in a pod, with chains PALISADE_INBOUND, PALISADE_IN_REDIRECT,
PALISADE_OUTPUT, PALISADE_REDIRECT (and PALISADE_DNS):
  -p PORT   outbound TCP is redirected to the sidecar's PORT (default 15001)
  -z PORT   inbound TCP is redirected to PORT (default 15006)
  -u UID    the sidecar's user: its traffic is not captured (default 1337)
  -g GID    the sidecar's group (default 1337)
  -m MODE   REDIRECT (the only mode; TPROXY is not supported)
  -i CIDRS  outbound destinations to capture, comma-separated, * for all (default *)
  -x CIDRS  outbound destinations never captured
  -b PORTS  inbound ports to capture, * for all (default *)
  -d PORTS  inbound ports never captured (15008, 15090, 15021, 15020 always are not)
  -o PORTS  outbound destination ports never captured
  --redirect-dns   UDP and TCP port 53 to the sidecar's DNS proxy (--dns-port, 15053)
  --dry-run        print the iptables-restore input that would be applied; change nothing
  --clean          remove every rule and chain proxy-init added, nothing else
Applying twice leaves one copy of each rule. Needs root (CAP_NET_ADMIN).`,
  run: (args, io) => {
    const { values } = parseCommandArgs(
      args,
      {
        netns: { type: 'string' },
        'proxy-port': { type: 'string', short: 'p' },
        'inbound-capture-port': { type: 'string', short: 'z' },
        'proxy-uid': { type: 'string', short: 'u' },
        'proxy-gid': { type: 'string', short: 'g' },
        'istio-inbound-interception-mode': { type: 'string', short: 'm' },
        'include-cidrs': { type: 'string', short: 'i' },
        'exclude-cidrs': { type: 'string', short: 'x' },
        'inbound-ports': { type: 'string', short: 'b' },
        'exclude-inbound-ports': { type: 'string', short: 'd' },
        'exclude-outbound-ports': { type: 'string', short: 'o' },
        'redirect-dns': { type: 'boolean' },
        'dns-port': { type: 'string' },
        'dry-run': { type: 'boolean' },
        clean: { type: 'boolean' },
      },
      false,
    );
    const mode = values['istio-inbound-interception-mode'] ?? 'REDIRECT';
    if (mode !== 'REDIRECT')
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        `-m: ${mode} is not supported (only REDIRECT; Istio's TPROXY mode is not implemented)`,
      );
    if (values['dry-run'] === true && values.clean === true)
      throw new PalisadeError('PAL_ERR_USAGE', '--dry-run and --clean exclude each other');
    const netns = values.netns;
    if (values.clean === true) {
      const script = cleanCapture(netns);
      io.stdout(script === undefined ? 'nothing to clean\n' : script);
      return Promise.resolve(0);
    }
    const options: CaptureOptions = {
      proxyPort: number(values['proxy-port'], '-p', DEFAULT_CAPTURE.proxyPort),
      inboundPort: number(values['inbound-capture-port'], '-z', DEFAULT_CAPTURE.inboundPort),
      proxyUid: number(values['proxy-uid'], '-u', DEFAULT_CAPTURE.proxyUid),
      proxyGid: number(values['proxy-gid'], '-g', DEFAULT_CAPTURE.proxyGid),
      includeCidrs: list(values['include-cidrs']) ?? DEFAULT_CAPTURE.includeCidrs,
      excludeCidrs: list(values['exclude-cidrs']) ?? DEFAULT_CAPTURE.excludeCidrs,
      inboundPorts: list(values['inbound-ports']) ?? DEFAULT_CAPTURE.inboundPorts,
      excludeInboundPorts:
        numbers(values['exclude-inbound-ports'], '-d') ?? DEFAULT_CAPTURE.excludeInboundPorts,
      excludeOutboundPorts:
        numbers(values['exclude-outbound-ports'], '-o') ?? DEFAULT_CAPTURE.excludeOutboundPorts,
      redirectDns: values['redirect-dns'] === true,
      dnsPort: number(values['dns-port'], '--dns-port', DEFAULT_CAPTURE.dnsPort),
    };
    validateCapture(options);
    if (values['dry-run'] === true) {
      // A dry run shows the full rule set as on a fresh pod (no table read, no root needed).
      io.stdout(installScript(options, ''));
      return Promise.resolve(0);
    }
    io.stdout(installCapture(options, netns));
    return Promise.resolve(0);
  },
};
