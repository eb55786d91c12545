/**
 * The proxy's one listener manager (Envoy's ListenerManager, docs/proxy.md
 * "Listeners"): every socket the proxy accepts on — inbound, outbound,
 * gateway, capture and admin — is bound, replaced, drained and closed here.
 *
 * - **Bind before close.** {@link ListenerManager.bind} binds a new socket
 *   without touching the listener of the same name; only
 *   {@link ListenerManager.activate} makes it the serving one, and only then
 *   does the old one drain. A bind failure therefore leaves the old listener
 *   serving (the xDS update is NACKed).
 * - **Bounded drain.** A drained listener stops accepting at once, asks its
 *   protocol layers to let connections go (the `onDrain` hooks: idle HTTP/1.1
 *   keep-alive connections close, HTTP/2 sessions get GOAWAY; repeated while
 *   draining so a connection that finishes its request closes too), and
 *   after the drain time closes whatever is left — Envoy's listener drain
 *   (`--drain-time-s`) with the proxy's `drainMs` as the bound.
 * - **Connection tracking.** Every accepted socket is tracked per listener
 *   until it closes; that is what the bound closes, whatever protocol layer
 *   (TLS, HTTP/1.1, HTTP/2, tcp_proxy) the socket was handed to.
 */
import * as net from 'node:net';
import type { Logger } from '../../logging/index.js';

/** Which side of the proxy a listener belongs to (logs, {@link ListenerManager.bound}). */
export type ListenerKind = 'inbound' | 'outbound' | 'gateway' | 'capture' | 'admin';

/** Where and as what a listener binds. */
export interface ListenerSpec {
  /** The xDS listener name (`inbound|8080`, `0.0.0.0_443`), or `outbound` / `admin`. */
  readonly name: string;
  readonly kind: ListenerKind;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
}

/** A bound socket owned by the manager. */
export interface ManagedListener {
  readonly spec: ListenerSpec;
  /** The bound port (the picked one when the spec asked for 0). */
  readonly port: number;
  readonly server: net.Server;
  /** Open accepted connections (tests, admin). */
  connections(): number;
  /**
   * Adds what the listener's protocol layers do when it drains: close idle keep-alive
   * connections, send GOAWAY. Called when the drain starts and again while it lasts.
   */
  onDrain(hook: () => void): void;
  /** True once the listener stopped accepting. */
  readonly draining: boolean;
}

/** Options of {@link createListenerManager}. */
export interface ListenerManagerOptions {
  readonly logger: Logger;
  /** The drain bound for replaced and removed listeners (default 5000 ms). */
  readonly drainMs?: number;
}

/** The one owner of the proxy's listening sockets. */
export interface ListenerManager {
  /**
   * Binds a new socket for `spec`; connections go to `onConnection`. The listener serves
   * from now on, but is not the active one of its name until {@link activate}.
   */
  bind(spec: ListenerSpec, onConnection: (socket: net.Socket) => void): Promise<ManagedListener>;
  /** Binds a server built elsewhere (the outbound http.Server, the admin server, capture). */
  listen(spec: ListenerSpec, server: net.Server): Promise<ManagedListener>;
  /** Makes `listener` the active one of its name; the one it replaces drains (bounded). */
  activate(listener: ManagedListener): void;
  /** Stops accepting and drains within `drainMs` (default: the manager's bound). */
  drain(listener: ManagedListener, drainMs?: number): Promise<void>;
  /** Drains the active listener of `name`, if any. */
  remove(name: string): Promise<void>;
  /** The active listener of `name`. */
  active(name: string): ManagedListener | undefined;
  /** Active listeners (of one kind): name → bound port. */
  bound(kind?: ListenerKind): ReadonlyMap<string, number>;
  /** Drains every listener, active or not, within `drainMs`. */
  close(drainMs: number): Promise<void>;
}

/** How often a draining listener's hooks run again (connections that became idle close). */
export const DRAIN_POLL_MS = 100;

interface Entry extends ManagedListener {
  draining: boolean;
  readonly sockets: Set<net.Socket>;
  readonly hooks: (() => void)[];
  done: Promise<void> | undefined;
  /** When the running drain closes what is left (epoch ms), and how. */
  deadline: number;
  cut: (() => void) | undefined;
}

function track(server: net.Server, spec: ListenerSpec): Entry {
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const address = server.address();
  const hooks: (() => void)[] = [];
  return {
    spec,
    port: typeof address === 'object' && address !== null ? address.port : spec.port,
    server,
    sockets,
    hooks,
    draining: false,
    done: undefined,
    deadline: Infinity,
    cut: undefined,
    connections: () => sockets.size,
    onDrain(hook) {
      hooks.push(hook);
    },
  };
}

async function listenOn(server: net.Server, spec: ListenerSpec): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const failed = (error: Error): void => {
      reject(error);
    };
    server.once('error', failed);
    // exclusive: a cluster worker never shares a port another listener already owns.
    server.listen({ host: spec.host, port: spec.port, exclusive: true }, () => {
      server.removeListener('error', failed);
      resolve();
    });
  });
}

/** Creates the manager; nothing is bound until {@link ListenerManager.bind}. */
export function createListenerManager(options: ListenerManagerOptions): ListenerManager {
  const { logger } = options;
  const defaultDrainMs = options.drainMs ?? 5_000;
  const active = new Map<string, Entry>();
  /** Every listener not closed yet: active, bound but not activated, draining. */
  const live = new Set<Entry>();

  const runHooks = (entry: Entry): void => {
    for (const hook of entry.hooks)
      try {
        hook();
      } catch (error) {
        logger.warn({ listener: entry.spec.name, err: error }, 'listener drain hook failed');
      }
  };

  const drain = (listener: ManagedListener, drainMs = defaultDrainMs): Promise<void> => {
    const entry = listener as Entry;
    if (entry.done !== undefined) {
      // Already draining: a shorter bound (e.g. shutdown during a replacement's drain) wins.
      const cut = entry.cut;
      if (cut !== undefined && Date.now() + drainMs < entry.deadline) {
        entry.deadline = Date.now() + drainMs;
        setTimeout(cut, drainMs);
      }
      return entry.done;
    }
    entry.draining = true;
    if (active.get(entry.spec.name) === entry) active.delete(entry.spec.name);
    entry.done = new Promise<void>((resolve) => {
      let closed = false;
      let poll: NodeJS.Timeout | undefined;
      const finish = (): void => {
        if (!closed || entry.sockets.size > 0) return;
        clearTimeout(bound);
        clearInterval(poll);
        entry.cut = undefined;
        live.delete(entry);
        resolve();
      };
      const cut = (): void => {
        if (entry.sockets.size > 0)
          logger.info(
            { listener: entry.spec.name, connections: entry.sockets.size },
            'drain time over: closing the connections left',
          );
        for (const socket of entry.sockets) socket.destroy();
        entry.sockets.clear();
        closed = true;
        finish();
      };
      entry.cut = cut;
      entry.deadline = Date.now() + drainMs;
      const bound = setTimeout(cut, drainMs);
      // A server that never listened (bind_to_port false) has nothing to stop.
      if (entry.server.listening)
        entry.server.close(() => {
          closed = true;
          finish();
        });
      else closed = true;
      runHooks(entry);
      for (const socket of entry.sockets)
        socket.once('close', () => {
          setImmediate(finish);
        });
      if (entry.sockets.size > 0)
        poll = setInterval(() => {
          runHooks(entry);
        }, DRAIN_POLL_MS);
      finish();
    });
    return entry.done;
  };

  const adopt = (entry: Entry): ManagedListener => {
    live.add(entry);
    return entry;
  };

  return {
    async bind(spec, onConnection) {
      const server = net.createServer(onConnection);
      await listenOn(server, spec);
      return adopt(track(server, spec));
    },
    async listen(spec, server) {
      await listenOn(server, spec);
      return adopt(track(server, spec));
    },
    activate(listener) {
      const entry = listener as Entry;
      const old = active.get(entry.spec.name);
      active.set(entry.spec.name, entry);
      if (old !== undefined && old !== entry) void drain(old);
      logger.info(
        {
          listener: entry.spec.name,
          kind: entry.spec.kind,
          address: `${entry.spec.host}:${String(entry.port)}`,
        },
        old === undefined ? 'listener bound' : 'listener replaced (old one draining)',
      );
    },
    drain,
    async remove(name) {
      const entry = active.get(name);
      if (entry !== undefined) await drain(entry);
    },
    active: (name) => active.get(name),
    bound(kind) {
      const out = new Map<string, number>();
      for (const [name, entry] of active)
        if (kind === undefined || entry.spec.kind === kind) out.set(name, entry.port);
      return out;
    },
    async close(drainMs) {
      await Promise.all([...live].map((entry) => drain(entry, drainMs)));
    },
  };
}
