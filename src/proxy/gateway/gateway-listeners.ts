/**
 * Gateway listeners (docs/xds-contract.md "Gateways"): one socket per
 * `0.0.0.0_<port>` listener. A TLS ClientHello is terminated by the chain
 * whose `server_names` match its SNI (SIMPLE: the server certificate from
 * SDS `kubernetes://<credentialName>` or files; MUTUAL: a client certificate
 * verified against the `-cacert` secret is required); plaintext takes the
 * chain without TLS. Each chain's HttpConnectionManager routes through the
 * same path as the outbound listener (RDS `http.<port>`).
 *
 * A port whose TLS chains are all MUTUAL rejects a client without a
 * certificate in the handshake itself, as Envoy does.
 *
 * HTTP chains speak HTTP/1.1 and HTTP/2 (ALPN `h2` after TLS, the h2c
 * preface in plaintext), so gRPC works through the ingress. A chain with a
 * tcp_proxy relays bytes instead: TLS PASSTHROUGH chains (no
 * transport_socket, matched on the SNI read from the ClientHello, the
 * client's TLS untouched), TCP servers, and TLS terminated in front of TCP.
 */
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../logging/index.js';
import { list, rec, str } from '../../xds/index.js';
import {
  denialBody,
  flatHeaders,
  httpPolicyEvaluator,
  type PolicyEvaluator,
} from '../inbound/inbound-policy.js';
import type { PreparedUpdate } from '../inbound/inbound-listeners.js';
import {
  createH2Downstream,
  isH2Preface,
  type AnyRequest,
  type AnyResponse,
} from '../h2-downstream.js';
import { MAX_CLIENT_HELLO_BYTES, readClientHello, type ClientHelloState } from './client-hello.js';
import { rejectUpgrade } from '../http-upgrade.js';
import { containRequest, containSocket } from '../containment.js';
import {
  answerParseError,
  checkRequestHead,
  enforceHeadersTimeout,
  CONNECTION_CHECK_INTERVAL_MS,
  MAX_REQUEST_HEADER_BYTES,
  REQUEST_HEADERS_TIMEOUT_MS,
  rejectionHeaders,
  rejectOnSocket,
  requestHeadPolicy,
} from '../request-head.js';
import type { OutboundProxy } from '../outbound/outbound-proxy.js';
import type { SecretStore } from '../tls/secrets.js';
import {
  cipherList,
  DEFAULT_TLS12_CIPHER_SUITES,
  SERVER_TLS_DEFAULTS,
} from '../../identity/workload.js';
import type { XdsResource, XdsSnapshot } from '../xds-client/xds-resource.js';

/** Options of {@link createGatewayListeners}. */
export interface GatewayListenersOptions {
  readonly secrets: SecretStore;
  readonly logger: Logger;
  readonly outbound: OutboundProxy;
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

interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ca?: string;
}

/** What a chain does with a connection: HTTP through its HttpConnectionManager, or tcp_proxy. */
type ChainAction =
  | { readonly kind: 'http'; readonly hcm: Record<string, unknown> }
  | { readonly kind: 'tcp'; readonly tcpProxy: Record<string, unknown> };

interface TlsChain {
  readonly names: readonly string[];
  readonly mutual: boolean;
  readonly context: tls.SecureContext | undefined;
  readonly material: TlsMaterial | undefined;
  readonly action: ChainAction;
  /** TLS 1.2 suites this server accepts (Gateway tls.cipherSuites; default AEAD only). */
  readonly suites: readonly string[];
}

/** A TLS PASSTHROUGH chain: SNI names and the tcp_proxy that relays the untouched TLS. */
interface PassthroughChain {
  readonly names: readonly string[];
  readonly tcpProxy: Record<string, unknown>;
}

interface ListenerState {
  resource: XdsResource;
  readonly server: net.Server;
  readonly port: number;
  plain: ChainAction | undefined;
  tlsChains: TlsChain[];
  passthrough: PassthroughChain[];
  tlsServer: tls.Server | undefined;
  generation: number;
}

/** PEM of a DataSource: inline, or a file (Gateway serverCertificate/privateKey paths). */
function dataSourcePem(value: unknown): string | undefined {
  const v = rec(value);
  if (typeof v['inline_string'] === 'string') return v['inline_string'];
  if (typeof v['filename'] === 'string') return readFileSync(v['filename'], 'utf8');
  return undefined;
}

/**
 * The chain for a ClientHello's SNI, by Envoy's `server_names` precedence: an exact name,
 * then the longest matching `*.suffix`, then a chain without names.
 */
export function chainForSni<T extends { readonly names: readonly string[] }>(
  chains: readonly T[],
  servername: string | undefined,
): T | undefined {
  if (servername !== undefined && servername !== '') {
    const exact = chains.find((c) => c.names.includes(servername));
    if (exact !== undefined) return exact;
    let best: T | undefined;
    let bestLength = 0;
    for (const c of chains)
      for (const n of c.names)
        if (n.startsWith('*.') && servername.endsWith(n.slice(1)) && n.length > bestLength) {
          best = c;
          bestLength = n.length;
        }
    if (best !== undefined) return best;
  }
  return chains.find((c) => c.names.length === 0);
}

/** The HCM or tcp_proxy of a chain's filters. */
function actionOf(chain: Record<string, unknown>): ChainAction {
  const filters = list(chain['filters']);
  const tcp = filters.find((f) => f['name'] === 'envoy.filters.network.tcp_proxy');
  if (tcp !== undefined) return { kind: 'tcp', tcpProxy: rec(tcp['typed_config']) };
  const hcm = filters.find((f) => f['name'] === 'envoy.filters.network.http_connection_manager');
  return { kind: 'http', hcm: rec(hcm?.['typed_config']) };
}

/** Creates the gateway side; listeners are bound by {@link GatewayListeners.sync}. */
export function createGatewayListeners(options: GatewayListenersOptions): GatewayListeners {
  const { secrets, logger, outbound } = options;
  const listeners = new Map<string, ListenerState>();
  /** Listeners bound by a prepared update not committed yet (connections may already arrive). */
  const staged = new Map<string, ListenerState>();
  const http1 = http.createServer({
    headersTimeout: REQUEST_HEADERS_TIMEOUT_MS,
    requestTimeout: 0,
    maxHeaderSize: MAX_REQUEST_HEADER_BYTES,
    connectionsCheckingInterval: CONNECTION_CHECK_INTERVAL_MS,
  });
  http1.on('clientError', (error: Error & { code?: string }, socket: Duplex) => {
    answerParseError(error, socket);
  });
  enforceHeadersTimeout(http1, REQUEST_HEADERS_TIMEOUT_MS);
  const hcmOf = new WeakMap<net.Socket, Record<string, unknown>>();
  const h2 = createH2Downstream<Record<string, unknown>>((req, res) => {
    containRequest(req, res, logger, 'gateway request', () => serve(req, res, h2.contextOf(req)));
  });
  // Never listens (connections are handed to it): start Node's connection tracking and timeouts.
  http1.emit('listening');
  const evaluators = new WeakMap<object, PolicyEvaluator>();
  /**
   * RequestAuthentication / AuthorizationPolicy selecting the gateway, run before routing
   * (Istio) for requests and upgrades alike: the denial to send, or undefined when allowed
   * (the policy's header changes are then applied to `req`). Fails closed.
   */
  const authorize = async (
    req: AnyRequest,
    hcm: Record<string, unknown>,
  ): Promise<
    { status: number; body: string; headers?: Readonly<Record<string, string>> } | undefined
  > => {
    let evaluator = evaluators.get(hcm);
    if (evaluator === undefined) {
      evaluator = httpPolicyEvaluator(hcm);
      evaluators.set(hcm, evaluator);
    }
    try {
      const decision = await evaluator.decide({
        principal: null,
        ...(req.socket.remoteAddress === undefined ? {} : { sourceIp: req.socket.remoteAddress }),
        destinationPort: req.socket.localPort ?? 0,
        protocol: 'http',
        method: req.method ?? 'GET',
        ...(req.headers.host === undefined ? {} : { host: req.headers.host }),
        path: req.url ?? '/',
        headers: flatHeaders(req.headers),
      });
      if (decision.status !== 200) {
        const status = typeof decision.status === 'number' ? decision.status : 403;
        logger.info(
          { path: req.url, status, policy: decision.policy, reason: decision.reason },
          'gateway request denied',
        );
        // An external authorizer's denial is relayed as it answered (status, body, headers).
        return decision.localReply ?? { status, body: denialBody(status, decision.reason) };
      }
      for (const h of decision.headersToRemove ?? [])
        Reflect.deleteProperty(req.headers, h.toLowerCase());
      for (const [k, v] of Object.entries(decision.headersToSet ?? {})) req.headers[k] = v;
      return undefined;
    } catch (error) {
      logger.error({ err: error }, 'gateway policy evaluation failed: denying');
      return { status: 403, body: 'RBAC: access denied' };
    }
  };

  const serve = (
    req: AnyRequest,
    res: AnyResponse,
    hcm: Record<string, unknown> | undefined,
  ): Promise<void> | undefined => {
    if (hcm === undefined) {
      res.writeHead(404).end();
      return;
    }
    // The request head is checked and its path normalised before policy and routing see it.
    const rejected = checkRequestHead(req, requestHeadPolicy(hcm));
    if (rejected !== undefined) {
      res.writeHead(rejected.status, rejectionHeaders(req, rejected));
      res.end(rejected.body);
      return;
    }
    if (req.socket instanceof tls.TLSSocket) req.headers['x-forwarded-proto'] = 'https';
    return authorize(req, hcm).then((denied) => {
      if (denied === undefined) {
        outbound.handle(req, res, hcm);
        return;
      }
      if (res.headersSent) return;
      res.writeHead(denied.status, {
        ...denied.headers,
        'content-type': 'text/plain',
        'content-length': Buffer.byteLength(denied.body),
      });
      res.end(denied.body);
    });
  };
  http1.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    containRequest(req, res, logger, 'gateway request', () =>
      serve(req, res, hcmOf.get(req.socket)),
    );
  });

  // WebSocket/Upgrade through the gateway: the same policy first, then routed like a request.
  http1.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    containSocket(socket, logger, 'gateway upgrade', () => {
      const hcm = hcmOf.get(req.socket);
      if (hcm === undefined) {
        rejectUpgrade(socket, 404, '');
        return;
      }
      const rejected = checkRequestHead(req, requestHeadPolicy(hcm));
      if (rejected !== undefined) {
        rejectOnSocket(socket, rejected);
        return;
      }
      if (req.socket instanceof tls.TLSSocket) req.headers['x-forwarded-proto'] = 'https';
      return authorize(req, hcm).then((denied) => {
        if (denied === undefined) outbound.handleUpgrade(req, socket, head, hcm);
        else rejectUpgrade(socket, denied.status, denied.body);
      });
    });
  });

  /** Builds a chain's TLS context from SDS secrets or files; undefined while material is missing. */
  const contextOf = (
    chain: Record<string, unknown>,
  ): {
    context: tls.SecureContext | undefined;
    material: TlsMaterial | undefined;
    mutual: boolean;
    suites: readonly string[];
  } => {
    const config = rec(rec(chain['transport_socket'])['typed_config']);
    const common = rec(config['common_tls_context']);
    const mutual = rec(config['require_client_certificate'])['value'] === true;
    const asked = rec(common['tls_params'])['cipher_suites'];
    const suites =
      Array.isArray(asked) && asked.length > 0
        ? asked.map((c) => str(c))
        : DEFAULT_TLS12_CIPHER_SUITES;
    let cert: string | undefined;
    let key: string | undefined;
    let ca: string | undefined;
    const sdsCert = str(list(common['tls_certificate_sds_secret_configs'])[0]?.['name']);
    if (sdsCert !== '') {
      const material = secrets.get(sdsCert)?.tlsCertificate;
      cert = material?.certChainPem;
      key = material?.privateKeyPem;
    } else {
      const files = list(common['tls_certificates'])[0];
      cert = dataSourcePem(files?.['certificate_chain']);
      key = dataSourcePem(files?.['private_key']);
    }
    const sdsCa = str(rec(common['validation_context_sds_secret_config'])['name']);
    if (sdsCa !== '') ca = secrets.get(sdsCa)?.validationContext?.trustedCaPem;
    else ca = dataSourcePem(rec(common['validation_context'])['trusted_ca']);
    if (cert === undefined || key === undefined || (mutual && ca === undefined))
      return { context: undefined, material: undefined, mutual, suites };
    const material: TlsMaterial = { cert, key, ...(ca === undefined ? {} : { ca }) };
    return {
      context: tls.createSecureContext({
        ...material,
        ...SERVER_TLS_DEFAULTS,
        ciphers: cipherList(suites),
      }),
      material,
      mutual,
      suites,
    };
  };

  type Built = Pick<
    ListenerState,
    'plain' | 'tlsChains' | 'passthrough' | 'tlsServer' | 'generation'
  >;
  /** A listener's chains from its resource; `strict` (an xDS update) throws on unusable TLS material. */
  const compute = (resource: XdsResource, name: string, strict: boolean): Built => {
    const state: Built = {
      plain: undefined,
      tlsChains: [],
      passthrough: [],
      tlsServer: undefined,
      generation: secrets.generation,
    };
    for (const chain of list(resource['filter_chains'])) {
      const action = actionOf(chain);
      // The policy filters are compiled with the update, so a bad one is NACKed, not met per request.
      if (action.kind === 'http' && !evaluators.has(action.hcm))
        evaluators.set(action.hcm, httpPolicyEvaluator(action.hcm));
      const match = rec(chain['filter_chain_match']);
      const names = Array.isArray(match['server_names'])
        ? (match['server_names'] as unknown[]).map((n) => str(n))
        : [];
      if (chain['transport_socket'] === undefined) {
        if (match['transport_protocol'] === 'tls' && action.kind === 'tcp')
          state.passthrough.push({ names, tcpProxy: action.tcpProxy });
        else state.plain = action;
        continue;
      }
      let built: ReturnType<typeof contextOf>;
      try {
        built = contextOf(chain);
      } catch (error) {
        if (strict)
          throw new Error(
            `chain ${JSON.stringify(str(chain['name']))}: TLS material unusable: ${error instanceof Error ? error.message : String(error)}`,
            { cause: error },
          );
        logger.error(
          { listener: name, err: error instanceof Error ? error.message : String(error) },
          'gateway TLS material unusable',
        );
        built = {
          context: undefined,
          material: undefined,
          mutual: true,
          suites: DEFAULT_TLS12_CIPHER_SUITES,
        };
      }
      state.tlsChains.push({
        names,
        mutual: built.mutual,
        context: built.context,
        material: built.material,
        action,
        suites: built.suites,
      });
    }
    const chains = state.tlsChains;
    if (chains.length === 0) return state;
    const pickChain = (servername: string | undefined): TlsChain | undefined =>
      chainForSni(chains, servername);
    const allMutual = chains.every((c) => c.mutual);
    const offersH2 = list(resource['filter_chains']).some((c) => {
      const common = rec(rec(rec(c['transport_socket'])['typed_config'])['common_tls_context']);
      return Array.isArray(common['alpn_protocols']) && common['alpn_protocols'].includes('h2');
    });
    const server = tls.createServer({
      requestCert: chains.some((c) => c.mutual),
      rejectUnauthorized: allMutual,
      ALPNProtocols: offersH2 ? ['h2', 'http/1.1'] : ['http/1.1'],
      handshakeTimeout: 10_000,
      SNICallback: (servername, callback) => {
        const chain = pickChain(servername);
        if (chain?.context === undefined) callback(new Error(`no certificate for ${servername}`));
        else callback(null, chain.context);
      },
      // The certificate for clients that send no SNI (e.g. a request to the IP): tls.Server takes
      // material, not a SecureContext, for its default.
      ...((pickChain(undefined) ?? chains[0])?.material ?? {}),
      // OpenSSL keeps the cipher list of the first context across an SNI switch: offer the union
      // here and check the chain's own list after the handshake.
      ...SERVER_TLS_DEFAULTS,
      ciphers: cipherList([...new Set(chains.flatMap((c) => c.suites))]),
    });
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      containSocket(socket, logger, 'gateway TLS connection', () => {
        secureConnection(socket);
      });
    });
    const secureConnection = (socket: tls.TLSSocket): void => {
      const servername = typeof socket.servername === 'string' ? socket.servername : undefined;
      const chain = pickChain(servername);
      const cipher = socket.getCipher();
      if (
        chain !== undefined &&
        socket.getProtocol() !== 'TLSv1.3' &&
        !chain.suites.includes(cipher.name)
      ) {
        logger.info(
          { listener: name, servername, cipher: cipher.name },
          'gateway refused a TLS cipher suite its server does not allow',
        );
        socket.destroy();
        return;
      }
      if (chain === undefined || (chain.mutual && !socket.authorized)) {
        logger.info(
          { listener: name, servername },
          'gateway refused a TLS client without a valid certificate (MUTUAL)',
        );
        socket.destroy();
        return;
      }
      if (chain.action.kind === 'tcp')
        outbound.handleTcp(socket, chain.action.tcpProxy, Buffer.alloc(0));
      else if (socket.alpnProtocol === 'h2') h2.accept(socket, chain.action.hcm, false);
      else {
        hcmOf.set(socket, chain.action.hcm);
        http1.emit('connection', socket);
      }
    };
    server.on('tlsClientError', (error) => {
      logger.info({ listener: name, err: error.message }, 'gateway TLS handshake failed');
    });
    state.tlsServer = server;
    return state;
  };
  /** Rebuilds a serving listener (its TLS material changed in the secret store). */
  const build = (state: ListenerState, name: string): void => {
    Object.assign(state, compute(state.resource, name, false));
  };

  /** Plaintext: the h2c preface or HTTP/1.1 for an HTTP chain, bytes relayed for a TCP one. */
  const servePlain = (socket: net.Socket, action: ChainAction, first: Buffer): void => {
    if (action.kind === 'tcp') {
      outbound.handleTcp(socket, action.tcpProxy, first);
      return;
    }
    socket.unshift(first);
    if (isH2Preface(first)) {
      h2.accept(socket, action.hcm, true);
      return;
    }
    hcmOf.set(socket, action.hcm);
    http1.emit('connection', socket);
    socket.resume();
  };

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
      if (state.generation !== secrets.generation) build(state, name);
      if (buffered[0] === 0x16) serveTls(state, socket, buffered, read);
      else if (state.plain === undefined) socket.destroy();
      else servePlain(socket, state.plain, buffered);
    };
    socket.on('data', onData);
  };

  const addressOf = (resource: XdsResource): { host: string; port: number } => {
    const address = rec(rec(resource['address'])['socket_address']);
    return { host: str(address['address'], '0.0.0.0'), port: Number(address['port_value'] ?? 0) };
  };
  const message = (error: unknown): string =>
    error instanceof Error ? error.message : String(error);

  const prepare = async (snapshot: XdsSnapshot): Promise<PreparedUpdate> => {
    const wanted = new Map<string, XdsResource>();
    for (const [name, resource] of snapshot.listener)
      if (
        name !== 'outbound' &&
        !name.startsWith('inbound|') &&
        // Capture listeners are served by src/proxy/capture and the inbound side.
        name !== 'virtualOutbound' &&
        name !== 'virtualInbound' &&
        // The DNS proxy's table (src/proxy/dns).
        name !== 'dns'
      )
        wanted.set(name, resource);
    const rebuilt = new Map<string, { resource: XdsResource; built: Built }>();
    const fresh: { name: string; state: ListenerState }[] = [];
    const problems: string[] = [];
    for (const [name, resource] of wanted) {
      const existing = listeners.get(name);
      if (existing?.resource === resource) continue;
      let built: Built;
      try {
        built = compute(resource, name, true);
      } catch (error) {
        problems.push(`listener ${JSON.stringify(name)}: ${message(error)}`);
        continue;
      }
      const { host, port } = addressOf(resource);
      const old = existing === undefined ? undefined : addressOf(existing.resource);
      if (existing !== undefined && old?.host === host && old.port === port) {
        rebuilt.set(name, { resource, built });
        continue;
      }
      const server = net.createServer((socket) => {
        containSocket(socket, logger, 'gateway connection', () => {
          onConnection(name, socket);
        });
      });
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host, port, exclusive: true }, resolve);
        });
      } catch (error) {
        problems.push(
          `listener ${JSON.stringify(name)}: cannot bind ${host}:${String(port)}: ${message(error)}`,
        );
        continue;
      }
      const state: ListenerState = {
        resource,
        server,
        port: (server.address() as net.AddressInfo).port,
        ...built,
      };
      fresh.push({ name, state });
      if (existing === undefined) staged.set(name, state);
    }
    const release = (): void => {
      for (const { name, state } of fresh) {
        state.server.close();
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
            state.server.close();
            listeners.delete(name);
          }
        for (const [name, { resource, built }] of rebuilt) {
          const existing = listeners.get(name);
          if (existing === undefined) continue;
          existing.resource = resource;
          Object.assign(existing, built);
        }
        for (const { name, state } of fresh) {
          listeners.get(name)?.server.close();
          listeners.set(name, state);
          staged.delete(name);
          logger.info(
            { listener: name, address: `${addressOf(state.resource).host}:${String(state.port)}` },
            'gateway listener bound',
          );
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
      return new Map([...listeners].map(([name, s]) => [name, s.port]));
    },
    async close(drainMs) {
      const all = [...listeners.values()];
      listeners.clear();
      h2.close();
      http1.closeIdleConnections();
      await Promise.all(
        all.map(
          (s) =>
            new Promise<void>((resolve) => {
              const timer = setTimeout(() => {
                http1.closeAllConnections();
                resolve();
              }, drainMs);
              s.server.close(() => {
                clearTimeout(timer);
                resolve();
              });
            }),
        ),
      );
    },
  };
}
