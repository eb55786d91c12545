// A WebSocket opening handshake (RFC 6455 §4) on both ends, for upgrade tests:
// an app that answers 101 with the Sec-WebSocket-Accept computed from the
// client's key and then echoes every byte (prefixed by its name), and a raw
// client that sends the upgrade request over any socket, checks the accept
// value and exchanges bytes. Framing is not needed to prove the relay: after
// 101 the proxies must carry bytes both ways, untouched.
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function acceptFor(key: string): string {
  return createHash('sha1')
    .update(key + GUID)
    .digest('base64');
}

/** Makes `server` answer WebSocket upgrades and echo `<name>:<bytes>`; records the upgrade requests. */
export function echoUpgrades(server: Server, name: string): IncomingMessage[] {
  const seen: IncomingMessage[] = [];
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    seen.push(req);
    const key = req.headers['sec-websocket-key'];
    if (req.headers.upgrade?.toLowerCase() !== 'websocket' || typeof key !== 'string') {
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    if (req.url?.includes('refuse') === true) {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 7\r\n\r\nrefused');
      return;
    }
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`,
    );
    socket.on('data', (chunk: Buffer) => socket.write(`${name}:${chunk.toString('utf8')}`));
    socket.on('error', () => socket.destroy());
  });
  return seen;
}

export interface UpgradeReply {
  readonly status: number;
  readonly head: string;
  /** After a 101: sends `text` and resolves with what comes back (first chunk). */
  exchange(text: string): Promise<string>;
  close(): void;
}

/** Sends a WebSocket upgrade request (`target` is the request-target: absolute or origin form). */
export function upgradeOver(socket: Duplex, target: string, host: string): Promise<UpgradeReply> {
  const key = randomBytes(16).toString('base64');
  socket.write(
    `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`,
  );
  return new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no upgrade answer; got ${JSON.stringify(buffer)}`));
    }, 5000);
    const onData = (chunk: Buffer): void => {
      buffer += chunk.toString('utf8');
      const end = buffer.indexOf('\r\n\r\n');
      if (end === -1) return;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      const head = buffer.slice(0, end);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      if (status === 101 && !head.includes(`Sec-WebSocket-Accept: ${acceptFor(key)}`)) {
        reject(new Error(`101 without the right accept value: ${head}`));
        return;
      }
      if (status !== 101) {
        // A refusal ends the connection: its body may arrive in later chunks,
        // so the whole answer is what came before the close.
        let rest = buffer.slice(end);
        socket.on('data', (more: Buffer) => (rest += more.toString('utf8')));
        const unclosed = setTimeout(() => {
          socket.destroy();
          reject(new Error(`connection left open after ${head}`));
        }, 5000);
        socket.once('close', () => {
          clearTimeout(unclosed);
          resolve({
            status,
            head: head + rest,
            exchange: () => Promise.reject(new Error(`no tunnel after ${String(status)}`)),
            close: () => undefined,
          });
        });
        socket.resume();
        return;
      }
      resolve({
        status,
        head: head + buffer.slice(end),
        exchange: (text) =>
          new Promise((done, fail) => {
            const t = setTimeout(() => {
              fail(new Error('no echo'));
            }, 5000);
            socket.once('data', (reply: Buffer) => {
              clearTimeout(t);
              done(reply.toString('utf8'));
            });
            socket.write(text);
          }),
        close: () => {
          socket.destroy();
        },
      });
    };
    socket.on('data', onData);
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
