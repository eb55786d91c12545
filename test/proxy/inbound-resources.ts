/**
 * Hand-written inbound resources for proxy integration tests: an `inbound|<port>`
 * listener with one plaintext HTTP chain, its STATIC cluster, HTTP RBAC filters.
 */
import { EXTENSION_TYPE_URLS, TYPE_URLS } from '../../src/xds/index.js';

const RBAC_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';

/** An HTTP RBAC filter with one policy on a path prefix. */
export function rbac(
  action: 'ALLOW' | 'DENY' | 'LOG',
  prefix: string,
  principal: object = { any: true },
) {
  return {
    name: 'envoy.filters.http.rbac',
    typed_config: {
      '@type': RBAC_TYPE,
      rules: {
        action,
        policies: {
          [`ns.p-${action.toLowerCase()}-${prefix}`]: {
            permissions: [{ url_path: { path: { prefix } } }],
            principals: [principal],
          },
        },
      },
    },
  };
}

/** `inbound|<port>` on `address`: one plaintext HTTP chain running `filters` then the router. */
export function inboundListener(port: number, filters: readonly object[], address: string): object {
  const cluster = `inbound|${String(port)}||`;
  return {
    '@type': TYPE_URLS.listener,
    name: `inbound|${String(port)}`,
    address: { socket_address: { address, port_value: port } },
    filter_chains: [
      {
        name: `inbound|${String(port)}|plaintext`,
        filter_chain_match: { transport_protocol: 'raw_buffer' },
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': EXTENSION_TYPE_URLS.httpConnectionManager,
              stat_prefix: `inbound_${String(port)}`,
              route_config: {
                name: `inbound|${String(port)}`,
                virtual_hosts: [
                  {
                    name: 'inbound',
                    domains: ['*'],
                    routes: [{ match: { prefix: '/' }, route: { cluster } }],
                  },
                ],
              },
              http_filters: [
                ...filters,
                {
                  name: 'envoy.filters.http.router',
                  typed_config: { '@type': EXTENSION_TYPE_URLS.router },
                },
              ],
            },
          },
        ],
      },
    ],
  };
}

export function inboundCluster(port: number, appPort: number): object {
  const name = `inbound|${String(port)}||`;
  return {
    '@type': TYPE_URLS.cluster,
    name,
    type: 'STATIC',
    load_assignment: {
      cluster_name: name,
      endpoints: [
        {
          lb_endpoints: [
            {
              endpoint: {
                address: { socket_address: { address: '127.0.0.1', port_value: appPort } },
              },
            },
          ],
        },
      ],
    },
  };
}
