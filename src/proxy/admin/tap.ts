/**
 * Live requests through one proxy (Linkerd's `tap`), on the admin endpoint:
 * `GET /tap` streams one JSON line per finished request (inbound and
 * outbound: method, path, status, latency, peer identity, the deciding policy
 * of a denial) until the client goes away; `GET /tap?recent=1` answers the
 * last requests as one JSON array, and `GET /tap/denies` the policy denials
 * of the last minutes (each with Envoy's `rbac_access_denied_matched_policy`
 * detail), which the dashboard's security view reads.
 *
 * The admin endpoint binds 127.0.0.1 and refuses non-loopback Host headers,
 * so only the local operator can tap. Memory is bounded: fixed-size rings and
 * a cap on concurrent subscribers; a subscriber whose socket does not drain is
 * skipped rather than buffered (a tap is a sample, not a log).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** One finished request as the tap reports it. */
export interface TapEvent {
  /** ISO time the request finished. */
  readonly time: string;
  readonly direction: 'inbound' | 'outbound';
  readonly method: string;
  readonly path: string;
  /** Outbound: the authority the app asked for. */
  readonly authority?: string;
  /** HTTP status sent downstream; 0 when none was sent. */
  readonly status: number;
  readonly durationMs: number;
  /** Inbound: the caller's SPIFFE ID (`null` for a plaintext peer). Outbound: this proxy's own. */
  readonly sourcePrincipal: string | null;
  /** Outbound: the cluster (`outbound|port|subset|host`); inbound: the listener. */
  readonly destination: string;
  readonly mtls: boolean;
  /** Inbound denials: `ns/name` of the policy that decided. */
  readonly policy?: string;
  /** Envoy's response code details, e.g. `rbac_access_denied_matched_policy[ns[default]-policy[deny-ratings]]`. */
  readonly details?: string;
}

/**
 * What the proxy hands the tap per request: a TapEvent whose `time` may be left out and given as
 * `timeMs` (epoch ms) instead; the ISO string is built only when someone reads the event, so an
 * unread tap costs a ring slot per request, not a date format.
 */
export type TapInput = Omit<TapEvent, 'time'> & {
  readonly time?: string;
  readonly timeMs?: number;
};

/** The tap of one proxy. */
export interface ProxyTap {
  record(event: TapInput): void;
  /** The last requests, oldest first. */
  recent(): readonly TapEvent[];
  /** Denials (status 401/403 or a refused connection) of the last `windowMs`, oldest first. */
  denies(windowMs?: number): readonly TapEvent[];
  /** Serves `/tap` and `/tap/denies` (the admin server has already checked the Host). */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): void;
  close(): void;
}

/** Bounds: requests kept for `?recent=1`, denials kept, concurrent streams. */
export const TAP_RECENT = 200;
export const TAP_DENIES = 200;
export const TAP_MAX_SUBSCRIBERS = 8;
/** How far back `/tap/denies` looks by default ("denies in the last minutes"). */
export const TAP_DENY_WINDOW_MS = 10 * 60_000;

const isDenial = (e: TapInput): boolean =>
  e.direction === 'inbound' && (e.status === 403 || e.status === 401 || e.policy !== undefined);

/** A fixed-size ring of inputs (no array shifting per request), oldest first when read. */
class Ring {
  private readonly slots: (TapInput | undefined)[];
  private next = 0;
  private size = 0;
  constructor(private readonly max: number) {
    this.slots = new Array<TapInput | undefined>(max).fill(undefined);
  }
  push(e: TapInput): void {
    this.slots[this.next] = e;
    this.next = (this.next + 1) % this.max;
    if (this.size < this.max) this.size += 1;
  }
  values(): TapInput[] {
    const out: TapInput[] = [];
    for (let i = 0; i < this.size; i++) {
      const e = this.slots[(this.next - this.size + i + this.max) % this.max];
      if (e !== undefined) out.push(e);
    }
    return out;
  }
}

/** The event as served: `time` built from `timeMs` when the hook left it out. */
function materialize(e: TapInput): TapEvent {
  if (e.time !== undefined && e.timeMs === undefined) return e as TapEvent;
  const { timeMs, ...rest } = e;
  return { ...rest, time: e.time ?? new Date(timeMs ?? Date.now()).toISOString() };
}

/** Creates an empty tap. */
export function createProxyTap(): ProxyTap {
  const recent = new Ring(TAP_RECENT);
  const denies = new Ring(TAP_DENIES);
  const subscribers = new Set<ServerResponse>();
  const at = (e: TapInput): number => e.timeMs ?? Date.parse(e.time ?? '');
  return {
    record(event) {
      recent.push(event);
      if (isDenial(event)) denies.push(event);
      if (subscribers.size === 0) return;
      const line = `${JSON.stringify(materialize(event))}\n`;
      for (const res of subscribers) {
        // A slow reader loses events instead of growing the proxy's memory.
        if (res.writableNeedDrain) continue;
        res.write(line);
      }
    },
    recent: () => recent.values().map(materialize),
    denies(windowMs = TAP_DENY_WINDOW_MS) {
      const since = Date.now() - windowMs;
      return denies
        .values()
        .filter((e) => at(e) >= since)
        .map(materialize);
    },
    handle(req, res, url) {
      if (req.method !== 'GET') {
        res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET' });
        res.end('error: /tap takes GET\n');
        return;
      }
      if (url.pathname === '/tap/denies') {
        const minutes = Number(url.searchParams.get('minutes') ?? '10');
        const windowMs =
          Number.isFinite(minutes) && minutes > 0 ? Math.min(minutes, 60) * 60_000 : undefined;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ denies: this.denies(windowMs) }));
        return;
      }
      if (url.searchParams.get('recent') === '1') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ requests: this.recent() }));
        return;
      }
      if (subscribers.size >= TAP_MAX_SUBSCRIBERS) {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end(`error: at most ${String(TAP_MAX_SUBSCRIBERS)} taps at a time\n`);
        return;
      }
      res.writeHead(200, {
        'content-type': 'application/x-ndjson',
        'cache-control': 'no-store',
      });
      res.flushHeaders();
      subscribers.add(res);
      res.on('close', () => subscribers.delete(res));
    },
    close() {
      for (const res of subscribers) res.end();
      subscribers.clear();
    },
  };
}
