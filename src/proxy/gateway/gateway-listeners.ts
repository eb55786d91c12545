/**
 * Gateway listeners (docs/xds-contract.md "Gateways"): one socket per
 * `0.0.0.0_<port>` listener, bound by the listener manager
 * (src/proxy/listeners). The stack (docs/proxy.md "Layers"):
 *   connection (here: the first bytes pick plaintext, TLS PASSTHROUGH by the
 *   ClientHello's SNI, or TLS termination) → chain (gateway-chains.ts:
 *   SNI → certificate, MUTUAL) → HTTP (gateway-http.ts: request head → authz
 *   → the outbound router) — or tcp_proxy through the outbound cluster layer
 *   (TLS PASSTHROUGH chains, TCP servers, TLS terminated in front of TCP).
 *
 * This file owns the update: chains compiled and sockets bound before the ACK
 * (any failure rejects the whole update), swapped in on commit; the manager
 * drains what is replaced or removed.
 */
import type * as net from 'node:net';
import type { Logger } from '../../logging/index.js';
import { asListener } from '../../xds/index.js';
import type { PreparedUpdate } from '../inbound/inbound-listeners.js';
import { isH2Preface } from '../h2-downstream.js';
import { MAX_CLIENT_HELLO_BYTES, readClientHello, type ClientHelloState } from './client-hello.js';
import { containSocket } from '../listeners/containment.js';
import type { OutboundProxy } from '../outbound/outbound-proxy.js';
import type { SecretStore } from '../tls/secrets.js';
import type { XdsResource, XdsSnapshot } from '../xds-client/xds-resource.js';
import type { ListenerManager, ManagedListener } from '../listeners/listener-manager.js';
import {
  buildGatewayChains,
  chainForSni,
  type ChainAction,
  type GatewayChains,
  type PassthroughChain,
} from './gateway-chains.js';
import { createGatewayHttp, type GatewayHttpSide } from './gateway-http.js';

export { chainForSni } from './gateway-chains.js';

/** Options of {@link createGatewayListeners}. */
export interface GatewayListenersOptions {
  readonly secrets: SecretStore;
  readonly logger: Logger;
  readonly outbound: OutboundProxy;
  /** Binds, replaces and drains the sockets. */
  readonly listeners: ListenerManager;
}

/** The gateway listeners of one proxy. */
export interface GatewayListeners {
  /**
   * Builds the snapshot's gateway listeners (policy filters compiled, TLS material loaded,
   * sockets bound: a new or moved listener binds before the old one closes) without changing
   * what serves; rejects with every problem after releasing what it built (NACK).
   */
  prepare(snapshot: XdsSnapshot): Promise<PreparedUpdate>;
  /** {@link GatewayListeners.prepare} then commit. */
  sync(snapshot: XdsSnapshot): Promise<void>;
  bound(): ReadonlyMap<string, number>;
  close(drainMs: number): Promise<void>;
}

interface ListenerState extends GatewayChains {
  resource: XdsResource;
  readonly socket: ManagedListener;
  readonly side: GatewayHttpSide;
}

const addressOf = (resource: XdsResource): { host: string; port: number } => {
  const address = asListener(resource).address?.socket_address;
  return { host: address?.address ?? '0.0.0.0', port: address?.port_value ?? 0 };
};
const message = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

/** True for the listeners this module serves (not sidecar or capture listeners). */
function isGatewayListener(name: string): boolean {
  return (
    name !== 'outbound' &&
    !name.startsWith('inbound|') &&
    // Capture listeners are served by src/proxy/capture and the inbound side.
    name !== 'virtualOutbound' &&
    name !== 'virtualInbound' &&
    // The DNS proxy's table (src/proxy/dns).
    name !== 'dns'
  );
}

/** Creates the gateway side; listeners are bound by {@link GatewayListeners.sync}. */
export function createGatewayListeners(options: GatewayListenersOptions): GatewayListeners {
  const { secrets, logger, outbound, listeners: manager } = options;
  const listeners = new Map<string, ListenerState>();
  /** Listeners bound by a prepared update not committed yet (connections may already arrive). */
  const staged = new Map<string, ListenerState>();
  const gatewayHttp = createGatewayHttp(logger, outbound);

  /** Serves a connection with a chain's action: HTTP/1.1, HTTP/2 or bytes relayed. */
  const serveAction = (
    side: GatewayHttpSide,
    socket: net.Socket,
    action: ChainAction,
    first: Buffer,
    /** After TLS termination: whether ALPN chose h2; undefined for plaintext. */
    alpnH2: boolean | undefined,
  ): void => {
    if (action.kind === 'tcp') {
      outbound.handleTcp(socket, action.tcpProxy, first);
      return;
    }
    if (alpnH2 !== undefined) {
      if (alpnH2) side.h2(socket, action, false);
      else side.http1(socket, action);
      return;
    }
    socket.unshift(first);
    if (isH2Preface(first)) {
      side.h2(socket, action, true);
      return;
    }
    side.http1(socket, action);
    socket.resume();
  };

  const compute = (
    resource: XdsResource,
    name: string,
    side: GatewayHttpSide,
    strict: boolean,
  ): GatewayChains =>
    buildGatewayChains(
      {
        secrets,
        logger,
        secured(socket, action) {
          serveAction(side, socket, action, Buffer.alloc(0), socket.alpnProtocol === 'h2');
        },
      },
      resource,
      name,
      strict,
    );

  /** TLS: PASSTHROUGH when the SNI picks such a chain (the ClientHello is read first), else terminated. */
  const serveTls = (
    state: ListenerState,
    socket: net.Socket,
    hello: Buffer,
    read: ClientHelloState | undefined,
  ): void => {
    let servername: string | undefined;
    if (state.passthrough.length > 0) {
      const parsed = read ?? readClientHello(hello);
      servername = parsed.kind === 'hello' ? parsed.serverName : undefined;
      const candidates: { names: readonly string[]; passthrough?: PassthroughChain }[] = [
        ...state.tlsChains,
        ...state.passthrough.map((p) => ({ names: p.names, passthrough: p })),
      ];
      const picked = chainForSni(candidates, servername)?.passthrough;
      if (picked !== undefined) {
        outbound.handleTcp(socket, picked.tcpProxy, hello);
        return;
      }
    }
    if (state.tlsServer === undefined) {
      logger.info({ servername }, 'gateway has no chain for this TLS client');
      socket.destroy();
      return;
    }
    socket.unshift(hello);
    state.tlsServer.emit('connection', socket);
  };

  const onConnection = (name: string, socket: net.Socket): void => {
    socket.on('error', () => socket.destroy());
    socket.setTimeout(15_000, () => socket.destroy());
    let buffered: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      containSocket(socket, logger, 'gateway first bytes', () => {
        firstBytes(chunk);
      });
    };
    const firstBytes = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const state = listeners.get(name) ?? staged.get(name);
      if (state === undefined) {
        socket.destroy();
        return;
      }
      // A passthrough listener needs the whole ClientHello (its SNI) before it can choose.
      const read =
        buffered[0] === 0x16 && state.passthrough.length > 0
          ? readClientHello(buffered)
          : undefined;
      if (read?.kind === 'incomplete') {
        if (buffered.length > MAX_CLIENT_HELLO_BYTES) socket.destroy();
        return;
      }
      socket.removeListener('data', onData);
      socket.pause();
      socket.setTimeout(0);
      // TLS material changed in the secret store: rebuild the serving listener's chains.
      if (state.generation !== secrets.generation)
        Object.assign(state, compute(state.resource, name, state.side, false));
      if (buffered[0] === 0x16) serveTls(state, socket, buffered, read);
      else if (state.plain === undefined) socket.destroy();
      else serveAction(state.side, socket, state.plain, buffered, undefined);
    };
    socket.on('data', onData);
  };

  const prepare = async (snapshot: XdsSnapshot): Promise<PreparedUpdate> => {
    const wanted = new Map<string, XdsResource>();
    for (const [name, resource] of snapshot.listener)
      if (isGatewayListener(name)) wanted.set(name, resource);
    const rebuilt = new Map<string, { resource: XdsResource; built: GatewayChains }>();
    const fresh: { name: string; state: ListenerState }[] = [];
    const problems: string[] = [];
    for (const [name, resource] of wanted) {
      const existing = listeners.get(name);
      if (existing?.resource === resource) continue;
      const { host, port } = addressOf(resource);
      const old = existing === undefined ? undefined : addressOf(existing.resource);
      const moved = existing === undefined || old?.host !== host || old.port !== port;
      const side = moved ? gatewayHttp.side() : existing.side;
      let built: GatewayChains;
      try {
        built = compute(resource, name, side, true);
      } catch (error) {
        problems.push(`listener ${JSON.stringify(name)}: ${message(error)}`);
        continue;
      }
      if (!moved) {
        rebuilt.set(name, { resource, built });
        continue;
      }
      let socket: ManagedListener;
      try {
        socket = await manager.bind({ name, kind: 'gateway', host, port }, (s) => {
          containSocket(s, logger, 'gateway connection', () => {
            onConnection(name, s);
          });
        });
      } catch (error) {
        problems.push(
          `listener ${JSON.stringify(name)}: cannot bind ${host}:${String(port)}: ${message(error)}`,
        );
        continue;
      }
      socket.onDrain(() => {
        side.release();
      });
      const state: ListenerState = { resource, socket, side, ...built };
      fresh.push({ name, state });
      if (existing === undefined) staged.set(name, state);
    }
    const release = (): void => {
      for (const { name, state } of fresh) {
        void manager.drain(state.socket, 0).then(() => {
          state.side.destroy();
        });
        if (staged.get(name) === state) staged.delete(name);
      }
    };
    if (problems.length > 0) {
      release();
      throw new Error(problems.join('; '));
    }
    return {
      abort: release,
      commit() {
        for (const [name, state] of listeners)
          if (!wanted.has(name)) {
            listeners.delete(name);
            void manager.drain(state.socket);
          }
        for (const [name, { resource, built }] of rebuilt) {
          const existing = listeners.get(name);
          if (existing === undefined) continue;
          existing.resource = resource;
          Object.assign(existing, built);
        }
        for (const { name, state } of fresh) {
          listeners.set(name, state);
          staged.delete(name);
          manager.activate(state.socket);
        }
      },
    };
  };

  return {
    prepare,
    async sync(snapshot) {
      (await prepare(snapshot)).commit();
    },
    bound() {
      return new Map([...listeners].map(([name, s]) => [name, s.socket.port]));
    },
    async close(drainMs) {
      const all = [...listeners.values()];
      listeners.clear();
      await Promise.all(
        all.map(async (s) => {
          await manager.drain(s.socket, drainMs);
          s.side.destroy();
        }),
      );
    },
  };
}
