/**
 * HTTP/1.1 Upgrade (WebSocket, RFC 6455 §4; any `Upgrade` token, as Istio
 * enables websocket upgrades on every HTTP listener) relayed through the
 * proxy: the request goes upstream with its `Connection: upgrade` and
 * `Upgrade` headers (over the cluster's agent, so upstream mTLS and secure
 * naming apply as for any request); a `101 Switching Protocols` answer is
 * written back and the two sockets are spliced; any other answer is relayed
 * as a normal response and the downstream connection closed.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { Duplex } from 'node:stream';

/** Where and how to send the upgrade request. */
export interface UpgradeTarget {
  readonly host: string;
  readonly port: number;
  /** The cluster's agent (TLS: an https.Agent with the SVID and secure-naming check). */
  readonly agent?: http.Agent | undefined;
  readonly tls: boolean;
  readonly localAddress?: string | undefined;
}

/** Outcome of one relayed upgrade, for access logs and metrics. */
export interface UpgradeResult {
  readonly status: number;
  readonly flags: string;
}

function statusLine(status: number, message: string | undefined): string {
  return `HTTP/1.1 ${String(status)} ${message ?? http.STATUS_CODES[status] ?? ''}\r\n`;
}

/** Header lines from rawHeaders, without the names in `drop` (lower case). */
function headerLines(raw: readonly string[], drop: ReadonlySet<string> = new Set()): string {
  let out = '';
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? '';
    if (!drop.has(name.toLowerCase())) out += `${name}: ${raw[i + 1] ?? ''}\r\n`;
  }
  return out;
}

/** Framing headers of a relayed non-101 answer: its body is delimited by closing the connection. */
const FRAMING = new Set(['connection', 'transfer-encoding', 'keep-alive']);

/** Writes a short local answer on a raw socket and closes it. */
export function rejectUpgrade(socket: Duplex, status: number, body: string, flag?: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(
    statusLine(status, undefined) +
      `content-type: text/plain\r\ncontent-length: ${String(Buffer.byteLength(body))}\r\n` +
      (flag === undefined ? '' : `x-palisade-response-flags: ${flag}\r\n`) +
      `connection: close\r\n\r\n${body}`,
  );
}

/**
 * Sends `method path` with `headers` (already filtered; the upgrade headers
 * are set here) to `target` and splices the sockets on 101. Resolves when
 * the exchange ends (tunnel closed, or the non-101 answer relayed).
 */
export function relayUpgrade(
  downstream: Duplex,
  head: Buffer,
  method: string,
  path: string,
  headers: http.OutgoingHttpHeaders,
  upgrade: string,
  target: UpgradeTarget,
): Promise<UpgradeResult> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (result: UpgradeResult): void => {
      if (!settled) {
        settled = true;
        resolve(result);
      }
    };
    const request = (target.tls ? https : http).request({
      host: target.host,
      port: target.port,
      method,
      path,
      headers: { ...headers, connection: 'upgrade', upgrade },
      ...(target.agent === undefined ? {} : { agent: target.agent }),
      ...(target.localAddress === undefined ? {} : { localAddress: target.localAddress }),
    });
    request.on('upgrade', (response: http.IncomingMessage, upstream: Duplex, upstreamHead) => {
      downstream.write(
        statusLine(101, response.statusMessage) + headerLines(response.rawHeaders) + '\r\n',
      );
      if (upstreamHead.length > 0) downstream.write(upstreamHead);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(downstream);
      downstream.pipe(upstream);
      const close = (): void => {
        upstream.destroy();
        downstream.destroy();
        settle({ status: 101, flags: '-' });
      };
      upstream.on('error', close);
      downstream.on('error', close);
      // Servers keep half-open sockets (allowHalfOpen): a FIN from either side ends the tunnel
      // (pipe forwards it; ending our own side too lets both sockets close).
      upstream.on('end', () => {
        upstream.end();
      });
      downstream.on('end', () => {
        downstream.end();
      });
      upstream.on('close', close);
      downstream.on('close', close);
    });
    request.on('response', (response) => {
      // Not upgraded: relay the answer as is, then close (the connection was meant to switch).
      const status = response.statusCode ?? 502;
      downstream.write(
        statusLine(status, response.statusMessage) +
          headerLines(response.rawHeaders, FRAMING) +
          'connection: close\r\n\r\n',
      );
      response.pipe(downstream);
      response.on('end', () => {
        downstream.end();
        settle({ status, flags: '-' });
      });
      response.on('error', () => {
        downstream.destroy();
        settle({ status, flags: 'UPE' });
      });
    });
    request.on('error', (error) => {
      rejectUpgrade(
        downstream,
        503,
        `upstream connect error or disconnect/reset before headers. reset reason: ${error.message}`,
        'UF',
      );
      settle({ status: 503, flags: 'UF' });
    });
    downstream.on('error', () => request.destroy());
    request.end();
  });
}
