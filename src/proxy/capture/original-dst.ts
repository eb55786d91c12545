/**
 * The original destination of a connection that iptables REDIRECTed to this
 * proxy (Envoy's `envoy.filters.listener.original_dst`, Istio's capture
 * listeners). Linux's NAT keeps it in conntrack and hands it back through
 * `getsockopt(fd, SOL_IP, SO_ORIGINAL_DST)` (IPv4, <linux/netfilter_ipv4.h>)
 * or `getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST)` (IPv6,
 * <linux/netfilter_ipv6/ip6_tables.h>); both option numbers are 80.
 *
 * Why getsockopt and not TPROXY: with REDIRECT the accepted socket's local
 * address is the proxy's own, so the destination must be asked for; TPROXY
 * (IP_TRANSPARENT) would make `socket.localAddress` the original destination
 * without a call, but needs IP_TRANSPARENT on the listening socket (again a
 * setsockopt Node does not expose), policy routing (`ip rule` + a local route
 * table) and the mangle table in every pod, and Istio's default
 * (`istio-iptables`, interception mode REDIRECT) uses NAT. Node has no
 * getsockopt, so it is called through `koffi` (a maintained FFI with prebuilt
 * binaries): one system call per accepted connection, a few microseconds
 * (measured in docs/proxy.md "Transparent capture").
 */
import { createRequire } from 'node:module';
import { isIPv4 } from 'node:net';
import type * as net from 'node:net';

/** Where a captured connection was going. */
export interface OriginalDestination {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

const SOL_IP = 0;
const SOL_IPV6 = 41;
/** SO_ORIGINAL_DST (IPv4) and IP6T_SO_ORIGINAL_DST (IPv6) share the number. */
const SO_ORIGINAL_DST = 80;
const SOCKADDR_IN6_SIZE = 28;

type GetSockOpt = (fd: number, level: number, name: number, buf: Buffer, len: Buffer) => number;
let getsockopt: GetSockOpt | undefined;
let loadError: Error | undefined;

/** Loads libc's getsockopt once (koffi is only needed where capture is on). */
function libcGetSockOpt(): GetSockOpt {
  if (getsockopt !== undefined) return getsockopt;
  if (loadError !== undefined) throw loadError;
  try {
    if (process.platform !== 'linux') throw new Error(`not available on ${process.platform}`);
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as {
      load(path: string): { func(signature: string): GetSockOpt };
    };
    getsockopt = koffi.load('libc.so.6').func(
      // Raw pointers to Node Buffers: koffi passes their memory as is (no array marshalling).
      'int getsockopt(int fd, int level, int name, void *buf, void *len)',
    );
    return getsockopt;
  } catch (error) {
    loadError = new Error(
      `SO_ORIGINAL_DST unavailable: ${error instanceof Error ? error.message : String(error)}`,
    );
    throw loadError;
  }
}

/** The file descriptor behind a Node TCP socket (libuv's handle), when it has one. */
function fdOf(socket: net.Socket): number | undefined {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** Decodes a `struct sockaddr_in` / `struct sockaddr_in6` (family host order, port network order). */
export function decodeSockaddr(buf: Buffer): OriginalDestination | undefined {
  const family = buf.readUInt16LE(0);
  const port = buf.readUInt16BE(2);
  if (family === 2) return { address: [...buf.subarray(4, 8)].join('.'), port, family: 4 };
  if (family === 10 && buf.length >= 24) {
    const groups: string[] = [];
    for (let i = 8; i < 24; i += 2) groups.push(buf.readUInt16BE(i).toString(16));
    const address = groups.join(':');
    // An IPv4-mapped address (a v4 client on a dual-stack socket) is reported as IPv4.
    const mapped = /^0:0:0:0:0:ffff:([0-9a-f]+):([0-9a-f]+)$/.exec(address);
    if (mapped?.[1] !== undefined && mapped[2] !== undefined) {
      const hi = parseInt(mapped[1], 16);
      const lo = parseInt(mapped[2], 16);
      return {
        address: `${String(hi >> 8)}.${String(hi & 255)}.${String(lo >> 8)}.${String(lo & 255)}`,
        port,
        family: 4,
      };
    }
    return { address: compressIpv6(groups), port, family: 6 };
  }
  return undefined;
}

/** RFC 5952 text form of eight hex groups (longest run of zero groups as `::`). */
function compressIpv6(groups: readonly string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j += 1;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/**
 * The original destination of an accepted connection, or undefined when it was
 * not NATed (conntrack has no entry: ENOENT) — e.g. a client that connected to
 * the capture port directly.
 */
export function originalDestination(socket: net.Socket): OriginalDestination | undefined {
  const fd = fdOf(socket);
  if (fd === undefined) return undefined;
  const call = libcGetSockOpt();
  const v4 =
    socket.localAddress === undefined || isIPv4(socket.localAddress.replace(/^::ffff:/, ''));
  const buf = Buffer.alloc(SOCKADDR_IN6_SIZE);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(buf.length, 0);
  const rc = v4
    ? call(fd, SOL_IP, SO_ORIGINAL_DST, buf, len)
    : call(fd, SOL_IPV6, SO_ORIGINAL_DST, buf, len);
  if (rc !== 0) return undefined;
  const found = decodeSockaddr(buf.subarray(0, len.readUInt32LE(0)));
  // Not redirected: the kernel may answer with the socket's own local address.
  if (found === undefined) return undefined;
  return found;
}
