/**
 * The compiled filter chains of a gateway listener (docs/xds-contract.md
 * "Gateways"): a TLS ClientHello is terminated by the chain whose
 * `server_names` match its SNI (SIMPLE: the server certificate from SDS
 * `kubernetes://<credentialName>` or files; MUTUAL: a client certificate
 * verified against the `-cacert` secret is required); plaintext takes the
 * chain without TLS; TLS PASSTHROUGH chains (no transport_socket, matched on
 * the SNI read from the ClientHello) relay the client's TLS untouched.
 *
 * A port whose TLS chains are all MUTUAL rejects a client without a
 * certificate in the handshake itself, as Envoy does.
 */
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import type { Logger } from '../../logging/index.js';
import {
  asListener,
  hcmOf,
  HCM_FILTER,
  list,
  rec,
  str,
  TCP_PROXY_FILTER,
  tcpProxyOf,
  type FilterChain,
} from '../../xds/index.js';
import {
  cipherList,
  DEFAULT_TLS12_CIPHER_SUITES,
  SERVER_TLS_DEFAULTS,
} from '../../identity/workload.js';
import { containSocket } from '../listeners/containment.js';
import { httpPolicyEvaluator, type PolicyEvaluator } from '../filters/authz/index.js';
import { compileHcm, type HcmConfig } from '../outbound/hcm-config.js';
import { compileTcpProxy, type TcpProxyConfig } from '../outbound/tcp-proxy-config.js';
import type { SecretStore } from '../tls/secrets.js';
import type { XdsResource } from '../xds-client/xds-resource.js';

interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ca?: string;
}

/** What a chain does with a connection: HTTP through its HttpConnectionManager, or tcp_proxy. */
export type ChainAction =
  HttpChainAction | { readonly kind: 'tcp'; readonly tcpProxy: TcpProxyConfig };

/**
 * An HTTP chain: its HttpConnectionManager and the policy filters it runs before routing
 * (RequestAuthentication/AuthorizationPolicy selecting the gateway), both compiled with
 * the chain before the ACK — a filter that does not compile throws, and the update is NACKed.
 */
export interface HttpChainAction {
  readonly kind: 'http';
  readonly hcm: HcmConfig;
  readonly policy: PolicyEvaluator;
}

export interface TlsChain {
  readonly names: readonly string[];
  readonly mutual: boolean;
  readonly context: tls.SecureContext | undefined;
  readonly material: TlsMaterial | undefined;
  readonly action: ChainAction;
  /** TLS 1.2 suites this server accepts (Gateway tls.cipherSuites; default AEAD only). */
  readonly suites: readonly string[];
}

/** A TLS PASSTHROUGH chain: SNI names and the tcp_proxy that relays the untouched TLS. */
export interface PassthroughChain {
  readonly names: readonly string[];
  readonly tcpProxy: TcpProxyConfig;
}

/** A listener's compiled chains and the TLS server that terminates its TLS chains. */
export interface GatewayChains {
  plain: ChainAction | undefined;
  tlsChains: TlsChain[];
  passthrough: PassthroughChain[];
  tlsServer: tls.Server | undefined;
  /** The secret store generation the TLS material was read at. */
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
export function actionOf(chain: FilterChain): ChainAction {
  const filters = chain.filters ?? [];
  const tcp = filters.find((f) => f.name === TCP_PROXY_FILTER);
  if (tcp !== undefined) return { kind: 'tcp', tcpProxy: compileTcpProxy(tcpProxyOf(tcp)) };
  const hcm = hcmOf(filters.find((f) => f.name === HCM_FILTER));
  return { kind: 'http', hcm: compileHcm(hcm), policy: httpPolicyEvaluator(hcm) };
}

/** A chain's TLS context from SDS secrets or files; undefined while material is missing. */
function contextOf(
  secrets: SecretStore,
  chain: FilterChain,
): {
  context: tls.SecureContext | undefined;
  material: TlsMaterial | undefined;
  mutual: boolean;
  suites: readonly string[];
} {
  const config = rec(chain.transport_socket?.typed_config);
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
}

/** What the chains need from their listener. */
export interface GatewayChainOptions {
  readonly secrets: SecretStore;
  readonly logger: Logger;
  /** A terminated TLS connection and the chain its SNI picked (verified: suite, MUTUAL). */
  secured(socket: tls.TLSSocket, action: ChainAction): void;
}

/** A listener's chains from its resource; `strict` (an xDS update) throws on unusable TLS material. */
export function buildGatewayChains(
  options: GatewayChainOptions,
  resource: XdsResource,
  name: string,
  strict: boolean,
): GatewayChains {
  const { secrets, logger } = options;
  const state: GatewayChains = {
    plain: undefined,
    tlsChains: [],
    passthrough: [],
    tlsServer: undefined,
    generation: secrets.generation,
  };
  const listener = asListener(resource);
  for (const chain of listener.filter_chains ?? []) {
    const action = actionOf(chain);
    const match = chain.filter_chain_match ?? {};
    const names = match.server_names ?? [];
    if (chain.transport_socket === undefined) {
      if (match.transport_protocol === 'tls' && action.kind === 'tcp')
        state.passthrough.push({ names, tcpProxy: action.tcpProxy });
      else state.plain = action;
      continue;
    }
    let built: ReturnType<typeof contextOf>;
    try {
      built = contextOf(secrets, chain);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (strict)
        throw new Error(
          `chain ${JSON.stringify(chain.name ?? '')}: TLS material unusable: ${reason}`,
          { cause: error },
        );
      logger.error({ listener: name, err: reason }, 'gateway TLS material unusable');
      built = {
        context: undefined,
        material: undefined,
        mutual: true,
        suites: DEFAULT_TLS12_CIPHER_SUITES,
      };
    }
    state.tlsChains.push({ names, ...built, action });
  }
  const chains = state.tlsChains;
  if (chains.length === 0) return state;
  const allMutual = chains.every((c) => c.mutual);
  const offersH2 = (listener.filter_chains ?? []).some((c) => {
    const common = rec(rec(c.transport_socket?.typed_config)['common_tls_context']);
    return Array.isArray(common['alpn_protocols']) && common['alpn_protocols'].includes('h2');
  });
  const server = tls.createServer({
    requestCert: chains.some((c) => c.mutual),
    rejectUnauthorized: allMutual,
    ALPNProtocols: offersH2 ? ['h2', 'http/1.1'] : ['http/1.1'],
    handshakeTimeout: 10_000,
    SNICallback: (servername, callback) => {
      const chain = chainForSni(chains, servername);
      if (chain?.context === undefined) callback(new Error(`no certificate for ${servername}`));
      else callback(null, chain.context);
    },
    // The certificate for clients that send no SNI (e.g. a request to the IP): tls.Server takes
    // material, not a SecureContext, for its default.
    ...((chainForSni(chains, undefined) ?? chains[0])?.material ?? {}),
    // OpenSSL keeps the cipher list of the first context across an SNI switch: offer the union
    // here and check the chain's own list after the handshake.
    ...SERVER_TLS_DEFAULTS,
    ciphers: cipherList([...new Set(chains.flatMap((c) => c.suites))]),
  });
  const secureConnection = (socket: tls.TLSSocket): void => {
    const servername = typeof socket.servername === 'string' ? socket.servername : undefined;
    const chain = chainForSni(chains, servername);
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
    options.secured(socket, chain.action);
  };
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    containSocket(socket, logger, 'gateway TLS connection', () => {
      secureConnection(socket);
    });
  });
  server.on('tlsClientError', (error) => {
    logger.info({ listener: name, err: error.message }, 'gateway TLS handshake failed');
  });
  state.tlsServer = server;
  return state;
}
