/**
 * The sidecar's DNS proxy (Istio's DNS proxying): UDP and TCP on
 * 127.0.0.1:15053 in the pod, where proxy-init's `--redirect-dns` sends the
 * apps' port-53 queries. Names in the control plane's table (dns-table.ts)
 * are answered here (A from the VIPs; AAAA and other types of a known name:
 * no data); everything else is forwarded to the pod's upstream resolver
 * (`nameserver` in /etc/resolv.conf — the proxy's own queries run as UID 1337,
 * which capture leaves alone) over the query's own transport; with no
 * upstream the answer is REFUSED, when it fails or times out SERVFAIL.
 *
 * Hostile input: the wire format is parsed by dns-packet; anything it cannot
 * decode gets FORMERR (when at least a header came) or nothing; only standard
 * queries with one IN question are answered (else NOTIMP/FORMERR); no
 * response is larger than the client can take (UDP: 512 bytes, or its EDNS
 * size up to 1232) — a larger one goes back truncated (TC) with no records,
 * so a spoofed UDP source gets no amplification; pending forwards are bounded
 * (`max_pending_lookups`).
 */
import * as dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as dnsPacket from 'dns-packet';
import type { Logger } from '../../logging/index.js';
import type { DnsTable } from './dns-table.js';

/** RFC 1035 §4.1.1 RCODEs and the header bits Palisade sets itself. */
const RCODE = { FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const QR = 0x8000;
/** RFC 1035 §4.2.1: 512 bytes over UDP; RFC 9715/DNS flag day 2020: EDNS at most 1232. */
const UDP_LIMIT = 512;
const EDNS_LIMIT = 1232;
/** Longest query accepted (a query is one question: far below this). */
const MAX_QUERY = 4096;

export interface DnsProxyOptions {
  /** The name table of the current snapshot's `dns` listener (typed config; empty before it arrives). */
  readonly table: () => DnsTable;
  readonly logger: Logger;
  /** Upstream resolvers (`host:port` or host); default: `nameserver` lines of /etc/resolv.conf. */
  readonly upstreams?: readonly string[];
}

export interface DnsProxy {
  listen(host: string, port: number): Promise<number>;
  close(): Promise<void>;
}

/** `nameserver` addresses of a resolv.conf (resolv.conf(5)); none when unreadable. */
export function resolvConfNameservers(path = '/etc/resolv.conf'): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((line) => /^\s*nameserver\s+(\S+)/.exec(line)?.[1])
    .filter((ip): ip is string => ip !== undefined && net.isIP(ip.replace(/%.*$/, '')) !== 0);
}

function hostPort(upstream: string): { host: string; port: number } {
  if (net.isIP(upstream) !== 0) return { host: upstream, port: 53 };
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(upstream);
  return m === null ? { host: upstream, port: 53 } : { host: m[1] ?? '', port: Number(m[2]) };
}

/** A header-only response: same id, opcode and RD as the query (when readable), with `rcode`. */
function errorResponse(query: Buffer, rcode: number, extraFlags = 0): Buffer | undefined {
  if (query.length < 12) return undefined;
  const out = Buffer.alloc(12);
  query.copy(out, 0, 0, 2);
  const flags = query.readUInt16BE(2);
  out.writeUInt16BE(QR | (flags & 0x7900) | extraFlags | rcode, 2);
  return out;
}

/** The largest response a UDP client takes: 512, or its EDNS payload size (capped). */
function udpLimit(packet: dnsPacket.DecodedPacket): number {
  const opt = (packet.additionals ?? []).find((a) => a.type === 'OPT') as
    { udpPayloadSize?: number } | undefined;
  const size = opt?.udpPayloadSize ?? UDP_LIMIT;
  return Math.min(Math.max(size, UDP_LIMIT), EDNS_LIMIT);
}

type Answer = (response: Buffer) => void;

export function createDnsProxy(options: DnsProxyOptions): DnsProxy {
  const { logger } = options;
  const upstreams = (options.upstreams ?? resolvConfNameservers()).map(hostPort);
  let pending = 0;
  const udp = dgram.createSocket({ type: 'udp4', reuseAddr: false });
  const tcp = net.createServer();
  const sockets = new Set<net.Socket>();

  /**
   * Forwards a raw query to the first upstream over the transport it came on (a TCP query is
   * usually a retry of a truncated UDP answer); the answer, or SERVFAIL on error/timeout.
   */
  const forward = (
    query: Buffer,
    id: number,
    table: DnsTable,
    transport: 'udp' | 'tcp',
    reply: Answer,
  ): void => {
    const upstream = upstreams[0];
    if (upstream === undefined) {
      const refused = errorResponse(query, RCODE.REFUSED);
      if (refused !== undefined) reply(refused);
      return;
    }
    if (pending >= table.maxPendingLookups) {
      const busy = errorResponse(query, RCODE.SERVFAIL);
      if (busy !== undefined) reply(busy);
      return;
    }
    pending++;
    let close = (): void => undefined;
    let done = false;
    const finish = (response: Buffer | undefined): void => {
      if (done) return;
      done = true;
      pending--;
      clearTimeout(timer);
      close();
      // Only the upstream's answer to this very query (id) counts.
      const valid =
        response !== undefined && response.length >= 12 && response.readUInt16BE(0) === id;
      const out = valid ? response : errorResponse(query, RCODE.SERVFAIL);
      if (out !== undefined) reply(out);
    };
    const timer = setTimeout(() => {
      finish(undefined);
    }, table.resolverTimeoutMs);
    if (transport === 'tcp') {
      const conn = net.connect({ host: upstream.host, port: upstream.port });
      close = () => conn.destroy();
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16BE(query.length);
      conn.on('connect', () => conn.write(Buffer.concat([prefix, query])));
      let got = Buffer.alloc(0);
      conn.on('data', (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]);
        // RFC 1035 §4.2.2: a two-byte length, then the message (at most 64 KiB).
        if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0))
          finish(got.subarray(2, 2 + got.readUInt16BE(0)));
      });
      conn.on('error', () => {
        finish(undefined);
      });
      conn.on('close', () => {
        finish(undefined);
      });
      return;
    }
    const socket = dgram.createSocket(net.isIPv6(upstream.host) ? 'udp6' : 'udp4');
    close = () => socket.close();
    socket.on('error', () => {
      finish(undefined);
    });
    socket.on('message', (message, from) => {
      if (from.address !== upstream.host || message.length < 12 || message.readUInt16BE(0) !== id)
        return;
      finish(message);
    });
    socket.send(query, upstream.port, upstream.host, (error) => {
      if (error !== null) finish(undefined);
    });
  };

  /** Answers one query (UDP or TCP) through `reply`; `limit` bounds a UDP response. */
  const handle = (query: Buffer, limit: 'udp' | 'tcp', reply: Answer): void => {
    if (query.length < 12) return; // not even a header: nothing to answer to
    if (query.length > MAX_QUERY || (query.readUInt16BE(2) & QR) !== 0) {
      // Oversized, or a response sent to us (reflection attempts get nothing).
      if ((query.readUInt16BE(2) & QR) === 0) {
        const formerr = errorResponse(query, RCODE.FORMERR);
        if (formerr !== undefined) reply(formerr);
      }
      return;
    }
    let packet: dnsPacket.DecodedPacket;
    try {
      packet = dnsPacket.decode(query);
    } catch {
      const formerr = errorResponse(query, RCODE.FORMERR);
      if (formerr !== undefined) reply(formerr);
      return;
    }
    const opcode = (query.readUInt16BE(2) >> 11) & 0xf;
    if (opcode !== 0) {
      const notimp = errorResponse(query, RCODE.NOTIMP);
      if (notimp !== undefined) reply(notimp);
      return;
    }
    const questions = packet.questions ?? [];
    const [question] = questions;
    if (questions.length !== 1 || question === undefined) {
      const formerr = errorResponse(query, RCODE.FORMERR);
      if (formerr !== undefined) reply(formerr);
      return;
    }
    const table = options.table();
    const entry = (question.class ?? 'IN') === 'IN' ? table.lookup(question.name) : undefined;
    if (entry === undefined) {
      forward(query, packet.id ?? 0, table, limit, reply);
      return;
    }
    const answers: dnsPacket.Answer[] =
      question.type === 'A'
        ? entry.v4.map((data) => ({ type: 'A', name: question.name, ttl: entry.ttl, data }))
        : question.type === 'AAAA'
          ? entry.v6.map((data) => ({ type: 'AAAA', name: question.name, ttl: entry.ttl, data }))
          : [];
    const flags =
      dnsPacket.AUTHORITATIVE_ANSWER |
      dnsPacket.RECURSION_AVAILABLE |
      (packet.flag_rd ? dnsPacket.RECURSION_DESIRED : 0);
    const response = dnsPacket.encode({
      type: 'response',
      id: packet.id ?? 0,
      flags,
      questions: [question],
      answers,
    });
    if (limit === 'udp' && response.length > udpLimit(packet)) {
      // Too big for this client over UDP: truncated, so it asks again over TCP.
      const truncated = dnsPacket.encode({
        type: 'response',
        id: packet.id ?? 0,
        flags: flags | dnsPacket.TRUNCATED_RESPONSE,
        questions: [question],
      });
      reply(truncated);
      return;
    }
    reply(response);
  };

  udp.on('message', (message, rinfo) => {
    try {
      handle(message, 'udp', (response) => {
        // A forwarded answer is relayed only if it fits what the client can take over UDP.
        let out = response;
        if (out.length > EDNS_LIMIT) {
          const tc = errorResponse(message, 0, dnsPacket.TRUNCATED_RESPONSE);
          if (tc === undefined) return;
          out = tc;
        }
        udp.send(out, rinfo.port, rinfo.address);
      });
    } catch (error) {
      logger.warn({ err: error }, 'DNS query dropped');
    }
  });
  udp.on('error', (error) => {
    logger.warn({ err: error }, 'DNS proxy UDP socket error');
  });

  tcp.on('connection', (socket) => {
    sockets.add(socket);
    socket.setTimeout(10_000, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length > MAX_QUERY + 2) {
        socket.destroy();
        return;
      }
      // RFC 1035 §4.2.2: each message is prefixed by its two-byte length.
      while (buffered.length >= 2) {
        const length = buffered.readUInt16BE(0);
        if (length > MAX_QUERY) {
          socket.destroy();
          return;
        }
        if (buffered.length < 2 + length) break;
        const query = buffered.subarray(2, 2 + length);
        buffered = buffered.subarray(2 + length);
        try {
          handle(Buffer.from(query), 'tcp', (response) => {
            if (socket.destroyed) return;
            const prefix = Buffer.alloc(2);
            prefix.writeUInt16BE(response.length);
            socket.write(Buffer.concat([prefix, response]));
          });
        } catch (error) {
          logger.warn({ err: error }, 'DNS query dropped');
          socket.destroy();
          return;
        }
      }
    });
  });

  return {
    async listen(host, port) {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(port, host, () => {
          udp.removeListener('error', reject);
          resolve();
        });
      });
      const bound = udp.address().port;
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(bound, host, () => {
          tcp.removeListener('error', reject);
          resolve();
        });
      });
      logger.info({ port: bound, upstreams: upstreams.map((u) => u.host) }, 'DNS proxy listening');
      return bound;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => {
        udp.close();
        tcp.close(() => {
          resolve();
        });
      });
    },
  };
}
