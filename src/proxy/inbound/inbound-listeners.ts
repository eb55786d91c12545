/**
 * The sidecar's inbound side (docs/xds-contract.md "Sidecar listeners"): one
 * socket per `inbound|<port>` listener, bound at `<instance-ip>:<port>` by the
 * listener manager (src/proxy/listeners), or none for `bind_to_port: false`
 * listeners that virtualInbound hands connections to (src/proxy/capture).
 *
 * The stack, one file per layer (docs/proxy.md "Layers"):
 *   connection (inbound-connection.ts: chain by first byte, mTLS in
 *   inbound-tls.ts, network policy) → chain (inbound-chains.ts, compiled with
 *   the update) → HTTP (inbound-http.ts: request head → authz → local rate
 *   limit) → app (app-relay.ts) — or TCP (inbound-tcp.ts).
 *
 * This file owns only the update: compile every chain and bind every new or
 * moved listener before the ACK (any failure rejects the whole update), then
 * swap them in on commit; the manager drains what is replaced or removed.
 */
import type * as net from 'node:net';
import { asListener } from '../../xds/index.js';
import type { Logger } from '../../logging/index.js';
import type { SecretStore } from '../tls/secrets.js';
import type { XdsResource, XdsSnapshot } from '../xds-client/xds-resource.js';
import { bindsToPort } from '../capture/virtual-inbound.js';
import type { ListenerManager, ManagedListener } from '../listeners/listener-manager.js';
import type { InboundTelemetry } from './inbound-telemetry.js';
import { buildChains, closeChains, releaseChains, type ChainState } from './inbound-chains.js';
import {
  chainOf,
  type InboundContext,
  type InboundRecord,
  type ListenerState,
} from './inbound-context.js';
import { createInboundTls } from './inbound-tls.js';
import { createInboundHttp } from './inbound-http.js';
import { createAppRelay } from './app-relay.js';
import { createInboundConnections } from './inbound-connection.js';

export type { InboundRecord } from './inbound-context.js';

/** Options of {@link createInboundListeners}. */
export interface InboundListenersOptions {
  readonly secrets: SecretStore;
  readonly logger: Logger;
  /** Binds, replaces and drains the sockets. */
  readonly listeners: ListenerManager;
  /** Called once per finished request/connection. */
  readonly onRecord?: (record: InboundRecord) => void;
  /** Peer metadata exchange and server spans (inbound-telemetry.ts); absent = neither. */
  readonly telemetry?: InboundTelemetry;
}

/** A built update, not yet serving: {@link PreparedUpdate.commit} swaps it in, `abort` releases it. */
export interface PreparedUpdate {
  commit(): void;
  abort(): void;
}

/** The inbound listeners of one proxy. */
export interface InboundListeners {
  /**
   * Builds everything the snapshot's `inbound|*` listeners need (compiled filter chains,
   * bound sockets: a new or moved listener binds before the old one closes) without changing
   * what serves. Rejects with every problem, after releasing what it built, so the update can
   * be NACKed while the old config keeps serving (Envoy's listener manager: a listener is
   * only swapped in once it is ready).
   */
  prepare(snapshot: XdsSnapshot): Promise<PreparedUpdate>;
  /** {@link InboundListeners.prepare} then commit. */
  sync(snapshot: XdsSnapshot): Promise<void>;
  /** Bound listeners: name → port. */
  bound(): ReadonlyMap<string, number>;
  /** Stops accepting, waits up to `drainMs` for in-flight requests, then closes. */
  close(drainMs: number): Promise<void>;
}

const addressOf = (resource: XdsResource): { host: string; port: number } => {
  const address = asListener(resource).address?.socket_address;
  return { host: address?.address ?? '127.0.0.1', port: address?.port_value ?? 0 };
};
const message = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

export function createInboundListeners(options: InboundListenersOptions): InboundListeners {
  const { logger, listeners: manager } = options;
  const listeners = new Map<string, ListenerState>();
  /** Listeners bound by a prepared update not committed yet (connections may already arrive). */
  const staged = new Map<string, ListenerState>();
  let snapshot: XdsSnapshot | undefined;
  const context: InboundContext = {
    logger,
    secrets: options.secrets,
    telemetry: options.telemetry,
    lookup: (name) => listeners.get(name) ?? staged.get(name),
    snapshot: () => snapshot,
    principals: new WeakMap<net.Socket, string | null>(),
    record: (r) => {
      options.onRecord?.(r);
    },
  };
  const relay = createAppRelay();
  const handlers = createInboundHttp(context, relay);
  const onConnection = createInboundConnections(context, createInboundTls(context));
  /** The listener state each bound socket serves. */
  const owners = new WeakMap<ManagedListener, ListenerState>();
  const lookupChain = (listener: string, chain: string): ChainState | undefined =>
    chainOf(context, listener, chain);

  /** Binds through the manager; drain hooks release the chains the listener has then. */
  const bind = async (name: string, host: string, port: number): Promise<ManagedListener> => {
    const socket = await manager.bind({ name, kind: 'inbound', host, port }, (s) => {
      onConnection(name, s);
    });
    socket.onDrain(() => {
      // The chains of the listener this socket was bound for (a replaced listener's old ones);
      // virtualInbound's drain also lets go of the listeners it hands connections to.
      const state = owners.get(socket);
      if (state !== undefined) releaseChains(state.chains);
      if (name === 'virtualInbound')
        for (const s of listeners.values()) if (s.socket === undefined) releaseChains(s.chains);
    });
    return socket;
  };

  const prepare = async (next: XdsSnapshot): Promise<PreparedUpdate> => {
    const wanted = new Map<string, XdsResource>();
    for (const [name, resource] of next.listener)
      if (name.startsWith('inbound|') || name === 'virtualInbound') wanted.set(name, resource);
    /** Existing listeners on the same address whose chains were rebuilt. */
    const rebuilt = new Map<string, { resource: XdsResource; chains: ChainState[] }>();
    /** New listeners, and existing ones moved to another address, bound now. */
    const fresh: ListenerState[] = [];
    const problems: string[] = [];
    for (const [name, resource] of wanted) {
      const existing = listeners.get(name);
      if (existing?.resource === resource) continue;
      let chains: ChainState[];
      try {
        chains = buildChains(name, resource, logger, handlers, lookupChain);
      } catch (error) {
        problems.push(`listener ${JSON.stringify(name)}: ${message(error)}`);
        continue;
      }
      const { host, port } = addressOf(resource);
      const old = existing === undefined ? undefined : addressOf(existing.resource);
      const binds = bindsToPort(resource);
      if (
        existing !== undefined &&
        old?.host === host &&
        old.port === port &&
        (existing.socket !== undefined) === binds
      ) {
        rebuilt.set(name, { resource, chains });
        continue;
      }
      try {
        // bind_to_port false (capture): reached only through virtualInbound, never bound.
        const socket = binds ? await bind(name, host, port) : undefined;
        const state: ListenerState = {
          name,
          resource,
          socket,
          port: socket?.port ?? port,
          chains,
        };
        if (socket !== undefined) owners.set(socket, state);
        fresh.push(state);
        if (existing === undefined) staged.set(name, state);
      } catch (error) {
        closeChains(chains);
        problems.push(
          `listener ${JSON.stringify(name)}: cannot bind ${host}:${String(port)}: ${message(error)}`,
        );
      }
    }
    const release = (): void => {
      for (const state of fresh) {
        if (state.socket !== undefined) void manager.drain(state.socket, 0);
        closeChains(state.chains);
        if (staged.get(state.name) === state) staged.delete(state.name);
      }
      for (const { chains } of rebuilt.values()) closeChains(chains);
    };
    if (problems.length > 0) {
      release();
      throw new Error(problems.join('; '));
    }
    return {
      abort: release,
      commit() {
        snapshot = next;
        for (const [name, state] of listeners)
          if (!wanted.has(name)) {
            listeners.delete(name);
            releaseChains(state.chains);
            if (state.socket !== undefined) void manager.drain(state.socket);
          }
        for (const [name, { resource, chains }] of rebuilt) {
          const existing = listeners.get(name);
          if (existing === undefined) continue;
          // As Envoy drains connections of a replaced filter chain: idle keep-alive
          // connections close now, so the next request is decided by the new chain
          // (a connection-level policy such as NetworkPolicy applies to new connections).
          closeChains(existing.chains);
          existing.chains = chains;
          existing.resource = resource;
          logger.info(
            { listener: name, chains: chains.map((c) => c.name) },
            'inbound listener updated',
          );
        }
        for (const state of fresh) {
          const old = listeners.get(state.name);
          listeners.set(state.name, state);
          staged.delete(state.name);
          if (old !== undefined) {
            closeChains(old.chains);
            // Moved to bind_to_port false: the old socket is not replaced by one of its name.
            if (old.socket !== undefined && state.socket === undefined)
              void manager.drain(old.socket);
          }
          if (state.socket !== undefined) manager.activate(state.socket);
        }
      },
    };
  };

  return {
    prepare,
    async sync(next) {
      (await prepare(next)).commit();
    },
    bound() {
      return new Map([...listeners].map(([name, s]) => [name, s.port]));
    },
    async close(drainMs) {
      const all = [...listeners.values()];
      listeners.clear();
      await Promise.all(
        all.map(async (s) => {
          releaseChains(s.chains);
          if (s.socket !== undefined) await manager.drain(s.socket, drainMs);
          closeChains(s.chains);
        }),
      );
      await relay.close();
    },
  };
}
