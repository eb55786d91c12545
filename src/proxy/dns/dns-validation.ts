/**
 * What the DNS proxy implements of the `dns` listener (checked before a
 * snapshot is accepted, as every listener is): a UDP socket address, one
 * `envoy.filters.udp.dns_filter` listener filter with an inline DNS table of
 * `address_list` virtual domains, and `client_config` resolver_timeout /
 * max_pending_lookups. Anything else (external tables, service lists,
 * cluster-named endpoints, explicit resolvers) is NACKed rather than ignored.
 */
import { EXTENSION_TYPE_URLS } from '../../xds/index.js';
import { DNS_FILTER } from './dns-table.js';
import { checkFields } from '../config/fields.js';
import { fieldsOf, type Listener } from '../../xds/index.js';

type R = Record<string, unknown>;

function rec(value: unknown): R {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as R) : {};
}

export function dnsListenerProblems(listener: R): string[] {
  const problems: string[] = [];
  checkFields(
    listener,
    fieldsOf<Listener>()('@type', 'name', 'address', 'listener_filters'),
    'dns',
    problems,
  );
  const socket = rec(rec(listener['address'])['socket_address']);
  if (socket['protocol'] !== 'UDP' && socket['protocol'] !== 1)
    problems.push('dns.address: the DNS listener is a UDP socket address');
  const filters = Array.isArray(listener['listener_filters'])
    ? (listener['listener_filters'] as R[])
    : [];
  if (filters.length !== 1 || filters[0]?.['name'] !== DNS_FILTER) {
    problems.push(`dns.listener_filters: exactly one ${DNS_FILTER}`);
    return problems;
  }
  const config = rec(filters[0]['typed_config']);
  if (config['@type'] !== EXTENSION_TYPE_URLS.dnsFilter)
    problems.push(`dns_filter: typed_config is not ${EXTENSION_TYPE_URLS.dnsFilter}`);
  checkFields(
    config,
    ['@type', 'stat_prefix', 'server_config', 'client_config'],
    'dns_filter',
    problems,
  );
  const server = rec(config['server_config']);
  checkFields(server, ['inline_dns_table'], 'dns_filter.server_config', problems);
  const table = rec(server['inline_dns_table']);
  checkFields(
    table,
    ['virtual_domains', 'external_retry_count'],
    'dns_filter.inline_dns_table',
    problems,
  );
  const domains = Array.isArray(table['virtual_domains']) ? (table['virtual_domains'] as R[]) : [];
  domains.forEach((d, i) => {
    const at = `dns_filter.virtual_domains[${String(i)}]`;
    checkFields(d, ['name', 'endpoint', 'answer_ttl'], at, problems);
    checkFields(rec(d['endpoint']), ['address_list'], `${at}.endpoint`, problems);
  });
  checkFields(
    rec(config['client_config']),
    ['resolver_timeout', 'max_pending_lookups'],
    'dns_filter.client_config',
    problems,
  );
  return problems;
}
