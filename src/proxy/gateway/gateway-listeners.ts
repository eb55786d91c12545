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
 */
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../logging/index.js';
import { list, rec, str } from '../../xds/index.js';
import type { EnvoyPolicyEvaluator } from '../../policy/index.js';
import { flatHeaders, httpPolicyEvaluator } from '../inbound/inbound-policy.js';
import { rejectUpgrade } from '../http-upgrade.js';
import type { OutboundProxy } from '../outbound/outbound-proxy.js';
import type { SecretStore } from '../tls/secrets.js';
import type { XdsSnapshot } from '../xds-client/ads-client.js';
import type { XdsResource } from '../xds-client/resource-validation.js';

/** Options of {@link createGatewayListeners}. */
export interface GatewayListenersOptions {
  readonly secrets: SecretStore;
  readonly logger: Logger;
  readonly outbound: OutboundProxy;
}

/** The gateway listeners of one proxy. */
export interface GatewayListeners {
  sync(snapshot: XdsSnapshot): Promise<void>;
  bound(): ReadonlyMap<string, number>;
  close(drainMs: number): Promise<void>;
}

interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ca?: string;
}

interface TlsChain {
  readonly names: readonly string[];
  readonly mutual: boolean;
  readonly context: tls.SecureContext | undefined;
  readonly material: TlsMaterial | undefined;
  readonly hcm: Record<string, unknown>;
}

interface ListenerState {
  resource: XdsResource;
  readonly server: net.Server;
  readonly port: number;
  plain: Record<string, unknown> | undefined;
  tlsChains: TlsChain[];
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

function sniMatches(pattern: string, name: string): boolean {
  if (pattern === name) return true;
  return pattern.startsWith('*.') && name.endsWith(pattern.slice(1));
}

/** Creates the gateway side; listeners are bound by {@link GatewayListeners.sync}. */
export function createGatewayListeners(options: GatewayListenersOptions): GatewayListeners {
  const { secrets, logger, outbound } = options;
  const listeners = new Map<string, ListenerState>();
  const http1 = http.createServer({
    headersTimeout: 15_000,
    requestTimeout: 0,
    maxHeaderSize: 16_384,
  });
  const hcmOf = new WeakMap<net.Socket, Record<string, unknown>>();
  // Never listens (connections are handed to it): start Node's connection tracking and timeouts.
  http1.emit('listening');
  const evaluators = new WeakMap<object, EnvoyPolicyEvaluator>();
  /**
   * RequestAuthentication / AuthorizationPolicy selecting the gateway, run before routing
   * (Istio) for requests and upgrades alike: the denial to send, or undefined when allowed
   * (the policy's header changes are then applied to `req`). Fails closed.
   */
  const authorize = async (
    req: http.IncomingMessage,
    hcm: Record<string, unknown>,
  ): Promise<{ status: number; body: string } | undefined> => {
    let evaluator = evaluators.get(hcm);
    if (evaluator === undefined) {
      evaluator = httpPolicyEvaluator(list(hcm['http_filters']));
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
        const body =
          status === 403
            ? 'RBAC: access denied'
            : status === 401
              ? decision.reason.replace(/^invalid JWT: /, '')
              : 'Bad Request';
        return { status, body };
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

  http1.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const hcm = hcmOf.get(req.socket);
    if (hcm === undefined) {
      res.writeHead(404).end();
      return;
    }
    if (req.socket instanceof tls.TLSSocket) req.headers['x-forwarded-proto'] = 'https';
    void authorize(req, hcm).then((denied) => {
      if (denied === undefined) {
        outbound.handle(req, res, hcm);
        return;
      }
      if (res.headersSent) return;
      res.writeHead(denied.status, {
        'content-type': 'text/plain',
        'content-length': Buffer.byteLength(denied.body),
      });
      res.end(denied.body);
    });
  });

  // WebSocket/Upgrade through the gateway: the same policy first, then routed like a request.
  http1.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const hcm = hcmOf.get(req.socket);
    if (hcm === undefined) {
      rejectUpgrade(socket, 404, '');
      return;
    }
    if (req.socket instanceof tls.TLSSocket) req.headers['x-forwarded-proto'] = 'https';
    void authorize(req, hcm).then((denied) => {
      if (denied === undefined) outbound.handleUpgrade(req, socket, head, hcm);
      else rejectUpgrade(socket, denied.status, denied.body);
    });
  });

  /** Builds a chain's TLS context from SDS secrets or files; undefined while material is missing. */
  const contextOf = (
    chain: Record<string, unknown>,
  ): {
    context: tls.SecureContext | undefined;
    material: TlsMaterial | undefined;
    mutual: boolean;
  } => {
    const config = rec(rec(chain['transport_socket'])['typed_config']);
    const common = rec(config['common_tls_context']);
    const mutual = rec(config['require_client_certificate'])['value'] === true;
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
      return { context: undefined, material: undefined, mutual };
    const material: TlsMaterial = { cert, key, ...(ca === undefined ? {} : { ca }) };
    return {
      context: tls.createSecureContext({ ...material, minVersion: 'TLSv1.2' }),
      material,
      mutual,
    };
  };

  const build = (state: ListenerState, name: string): void => {
    state.plain = undefined;
    state.tlsChains = [];
    for (const chain of list(state.resource['filter_chains'])) {
      const hcmFilter = list(chain['filters']).find(
        (f) => f['name'] === 'envoy.filters.network.http_connection_manager',
      );
      const hcm = rec(hcmFilter?.['typed_config']);
      if (chain['transport_socket'] === undefined) {
        state.plain = hcm;
        continue;
      }
      let built: ReturnType<typeof contextOf>;
      try {
        built = contextOf(chain);
      } catch (error) {
        logger.error(
          { listener: name, err: error instanceof Error ? error.message : String(error) },
          'gateway TLS material unusable',
        );
        built = { context: undefined, material: undefined, mutual: true };
      }
      const match = rec(chain['filter_chain_match']);
      state.tlsChains.push({
        names: Array.isArray(match['server_names'])
          ? (match['server_names'] as unknown[]).map((n) => str(n))
          : [],
        mutual: built.mutual,
        context: built.context,
        material: built.material,
        hcm,
      });
    }
    state.generation = secrets.generation;
    const chains = state.tlsChains;
    if (chains.length === 0) {
      state.tlsServer = undefined;
      return;
    }
    const pickChain = (servername: string | undefined): TlsChain | undefined =>
      chains.find(
        (c) => servername !== undefined && c.names.some((n) => sniMatches(n, servername)),
      ) ?? chains.find((c) => c.names.length === 0);
    const allMutual = chains.every((c) => c.mutual);
    const server = tls.createServer({
      requestCert: chains.some((c) => c.mutual),
      rejectUnauthorized: allMutual,
      ALPNProtocols: ['http/1.1'],
      handshakeTimeout: 10_000,
      SNICallback: (servername, callback) => {
        const chain = pickChain(servername);
        if (chain?.context === undefined) callback(new Error(`no certificate for ${servername}`));
        else callback(null, chain.context);
      },
      // The certificate for clients that send no SNI (e.g. a request to the IP): tls.Server takes
      // material, not a SecureContext, for its default.
      ...((pickChain(undefined) ?? chains[0])?.material ?? {}),
      minVersion: 'TLSv1.2',
    });
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      const servername = typeof socket.servername === 'string' ? socket.servername : undefined;
      const chain = pickChain(servername);
      if (chain === undefined || (chain.mutual && !socket.authorized)) {
        logger.info(
          { listener: name, servername },
          'gateway refused a TLS client without a valid certificate (MUTUAL)',
        );
        socket.destroy();
        return;
      }
      hcmOf.set(socket, chain.hcm);
      http1.emit('connection', socket);
    });
    server.on('tlsClientError', (error) => {
      logger.info({ listener: name, err: error.message }, 'gateway TLS handshake failed');
    });
    state.tlsServer = server;
  };

  const onConnection = (name: string, socket: net.Socket): void => {
    socket.on('error', () => socket.destroy());
    socket.setTimeout(15_000, () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      socket.setTimeout(0);
      const state = listeners.get(name);
      if (state === undefined) {
        socket.destroy();
        return;
      }
      if (state.generation !== secrets.generation) build(state, name);
      if (first[0] === 0x16) {
        if (state.tlsServer === undefined) {
          socket.destroy();
          return;
        }
        state.tlsServer.emit('connection', socket);
        return;
      }
      if (state.plain === undefined) {
        socket.destroy();
        return;
      }
      hcmOf.set(socket, state.plain);
      http1.emit('connection', socket);
      socket.resume();
    });
    socket.resume();
  };

  return {
    async sync(snapshot) {
      const wanted = new Map<string, XdsResource>();
      for (const [name, resource] of snapshot.listener)
        if (name !== 'outbound' && !name.startsWith('inbound|')) wanted.set(name, resource);
      for (const [name, state] of listeners)
        if (!wanted.has(name)) {
          state.server.close();
          listeners.delete(name);
        }
      for (const [name, resource] of wanted) {
        const existing = listeners.get(name);
        if (existing !== undefined) {
          if (existing.resource !== resource) {
            existing.resource = resource;
            build(existing, name);
          }
          continue;
        }
        const address = rec(rec(resource['address'])['socket_address']);
        const host = str(address['address'], '0.0.0.0');
        const port = Number(address['port_value'] ?? 0);
        const server = net.createServer((socket) => {
          onConnection(name, socket);
        });
        try {
          await new Promise<void>((resolve, reject) => {
            server.once('error', reject);
            server.listen({ host, port, exclusive: true }, resolve);
          });
        } catch (error) {
          logger.error(
            {
              listener: name,
              host,
              port,
              err: error instanceof Error ? error.message : String(error),
            },
            'cannot bind gateway listener',
          );
          continue;
        }
        const state: ListenerState = {
          resource,
          server,
          port: (server.address() as net.AddressInfo).port,
          plain: undefined,
          tlsChains: [],
          tlsServer: undefined,
          generation: -1,
        };
        build(state, name);
        listeners.set(name, state);
        logger.info(
          { listener: name, address: `${host}:${String(state.port)}` },
          'gateway listener bound',
        );
      }
    },
    bound() {
      return new Map([...listeners].map(([name, s]) => [name, s.port]));
    },
    async close(drainMs) {
      const all = [...listeners.values()];
      listeners.clear();
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
