/**
 * Pods of `palisade up --isolation netns`, put together from the node network
 * (pod-network.ts), the service VIPs (service-ips.ts) and the capture rules
 * (../capture): what mesh-runtime.ts calls, so its netns hooks stay a few
 * lines each.
 *
 * Per pod, before any of its processes starts (Istio's init container):
 * the namespace, veth and address; /etc/netns/<netns>/hosts (service names
 * only in gateway pods); for sidecar pods the capture rules of `palisade
 * proxy-init` with Istio's defaults plus `--redirect-dns` (names come from the
 * sidecar's DNS proxy, src/proxy/dns); and
 * a DNAT that lets the host (only the bridge's host address) reach the
 * sidecar's admin port, which listens on the pod's 127.0.0.1:15000 as
 * Envoy's admin does (route_localnet lets the kernel deliver it there).
 */
import { chownSync, copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_CAPTURE, installCapture } from '../capture/index.js';
import { createNodeNetwork, netnsExec, type NodeNetwork, type Pod } from './pod-network.js';
import { assignClusterIps, podHostsFile, writeClusterIps, type ServiceVip } from './service-ips.js';

/** The sidecar's UID and GID (Istio's 1337): capture rules exclude its traffic by owner. */
export const PROXY_UID = 1337;

/** The admin port of every proxy in its pod (Envoy's 15000, on the pod's loopback). */
export const POD_ADMIN_PORT = 15000;

/** Options of {@link createPods}. */
export interface PodsOptions {
  readonly stateDir: string;
  readonly configDir: string;
  readonly podCidr: string;
  readonly serviceCidr: string;
  readonly services: readonly { namespace: string; name: string; clusterIP?: string | undefined }[];
  /** Service file name in the config dir. */
  readonly fileOf: (namespace: string, name: string) => string;
}

/** The pods of a mesh. */
export interface MeshPods {
  readonly network: NodeNetwork;
  readonly vips: readonly ServiceVip[];
  /** Creates a pod; `capture` installs proxy-init's rules (sidecar pods, not gateways). */
  add(name: string, namespace: string, capture: boolean): Pod;
  /** argv that runs `command args` inside the pod (as root: an app). */
  app(pod: Pod, command: string, args: readonly string[]): { command: string; args: string[] };
  /** argv that runs a proxy inside the pod as UID/GID 1337. */
  proxy(pod: Pod, command: string, args: readonly string[]): { command: string; args: string[] };
  /** A copy of `file` the proxy user can read (tokens, roots are 0600 root-owned). */
  shareWithProxy(file: string): string;
  /** True when the process `pid` (in a pod) has a TCP socket listening on `port`. */
  listening(pid: number, port: number): boolean;
  teardown(): void;
}

/** Sets up the bridge and service VIPs; pods are added with `add`. */
export function createPods(options: PodsOptions): MeshPods {
  const network = createNodeNetwork({ stateDir: options.stateDir, podCidr: options.podCidr });
  const vips = assignClusterIps(options.services, options.serviceCidr);
  writeClusterIps(options.configDir, vips, options.fileOf);
  return {
    network,
    vips,
    add(name, namespace, capture) {
      // Sidecar pods resolve mesh names through their sidecar's DNS proxy (port 53 captured to
      // 15053, the table from the control plane: it follows `apply`); their hosts file keeps only
      // localhost and the pod's own name. Gateway pods have no DNS capture: they keep the names.
      const pod = network.addPod(name, (podIP) =>
        podHostsFile({ name, podIP, namespace }, capture ? [] : vips),
      );
      netnsExec(
        pod.netns,
        ['sh', '-c', 'echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet'],
        `allowing the admin DNAT in ${name}`,
      );
      netnsExec(
        pod.netns,
        [
          'iptables',
          '-t',
          'nat',
          '-A',
          'PREROUTING',
          '-s',
          `${network.hostIp}/32`,
          '-d',
          `${pod.podIP}/32`,
          '-p',
          'tcp',
          '--dport',
          String(POD_ADMIN_PORT),
          '-j',
          'DNAT',
          '--to-destination',
          `127.0.0.1:${String(POD_ADMIN_PORT)}`,
        ],
        `exposing the admin port of ${name} to the host`,
      );
      if (capture) installCapture({ ...DEFAULT_CAPTURE, redirectDns: true }, pod.netns);
      return pod;
    },
    app(pod, command, args) {
      return { command: 'ip', args: ['netns', 'exec', pod.netns, command, ...args] };
    },
    proxy(pod, command, args) {
      const id = String(PROXY_UID);
      return {
        command: 'ip',
        args: [
          'netns',
          'exec',
          pod.netns,
          'setpriv',
          '--reuid',
          id,
          '--regid',
          id,
          '--clear-groups',
          command,
          ...args,
        ],
      };
    },
    shareWithProxy(file) {
      // Not under the state directory: its parents may be closed to other users (mkdtemp makes 0700).
      const dir = network.record.shareDir;
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      const copy = join(dir, file.split('/').at(-1) ?? 'file');
      copyFileSync(file, copy);
      chownSync(copy, PROXY_UID, PROXY_UID);
      return copy;
    },
    listening(pid, port) {
      const hex = port.toString(16).toUpperCase().padStart(4, '0');
      for (const table of ['tcp', 'tcp6'])
        try {
          const rows = readFileSync(`/proc/${String(pid)}/net/${table}`, 'utf8').split('\n');
          // Columns: sl local_address rem_address st …; st 0A is LISTEN.
          if (
            rows.some(
              (r) =>
                r.trim().split(/\s+/)[1]?.endsWith(`:${hex}`) && r.trim().split(/\s+/)[3] === '0A',
            )
          )
            return true;
        } catch {
          // the process is gone or restarting
        }
      return false;
    },
    teardown() {
      network.teardown();
    },
  };
}

export type { Pod };
