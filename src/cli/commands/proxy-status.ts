/**
 * `palisade proxy-status` and `palisade proxy-config` — what the control plane
 * sent each proxy and whether the proxy accepted it (istioctl's
 * proxy-status/proxy-config), read from the control plane's debug API.
 */
import { stringify } from 'yaml';
import { num, parseNodeId, str } from '../../xds/index.js';
import { readConfig } from '../../config/index.js';
import { callDebug, type ProxyConfigReply, type SyncStatusReply } from '../../control/index.js';
import { PalisadeError } from '../../errors/index.js';
import { parseCommandArgs } from '../args.js';
import { debugAccessAt, permissionDeniedError, type ResolvedDebugAccess } from './debug-access.js';
import type { Command } from '../command.js';
import { describeControlError } from '../control-errors.js';

/** `instance.ns` from `sidecar~ip~instance.ns~ns.svc.cluster.local`. */
export function proxyName(id: string): string {
  return parseNodeId(id).id;
}

/** Renders rows as a left-aligned table with a header, like istioctl. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd((widths[i] ?? 0) + 3)))
      .join('')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

function syncCell(
  row: { sent: string | null; acked: string | null; nack: string | null } | undefined,
): string {
  if (row === undefined || row.sent === null) return 'NOT SENT';
  if (row.nack !== null) return `NACKED (${row.nack})`;
  return row.acked === row.sent ? 'SYNCED' : 'STALE';
}

async function debug<T>(
  address: string,
  name: 'SyncStatus' | 'ProxyConfig',
  request: unknown,
  access: ResolvedDebugAccess,
): Promise<T> {
  try {
    return await callDebug<T>(address, name, request, access);
  } catch (error) {
    const e = error as { code?: number; details?: string };
    if (e.code === 5) throw new PalisadeError('PAL_ERR_USAGE', e.details ?? 'no such proxy');
    if (e.code === 7) throw permissionDeniedError(access, e.details ?? 'permission denied');
    throw new PalisadeError(
      'PAL_ERR_CONTROL_UNREACHABLE',
      `cannot reach the control plane at ${address} (${describeControlError(error)}): is the mesh running? Start it with npm start (palisade up -f examples/bookinfo), or pass --control ADDR`,
      { cause: error },
    );
  }
}

export const proxyStatusCommand: Command = {
  path: ['proxy-status'],
  summary: 'Show each connected proxy and whether its config is in sync',
  usage: `Usage: palisade proxy-status [--control ADDR] [--state-dir DIR] [--xds-insecure] [-o json]

Asks the control plane at ADDR (its xDS address, default $PALISADE_CONTROL_ADDRESS
or 127.0.0.1:15010) for every connected proxy and prints, per xDS type:
SYNCED (the proxy ACKed the last config sent), NOT SENT (nothing of that type
to send, e.g. RDS to a gateway no Gateway selects, as in Istio), STALE (sent,
not yet ACKed) or NACKED with the proxy's error.

The debug API answers only the operator: the CLI sends the token the control
plane wrote to DIR/debug-token and verifies its TLS certificate with
DIR/ca/root-cert.pem. DIR is --state-dir, else the running mesh under
.palisade/ (palisade up), else $PALISADE_STATE_DIR (default .palisade).
--xds-insecure talks plaintext to a control plane started with it.`,
  run: async (args, io) => {
    const { values } = parseCommandArgs(
      args,
      {
        control: { type: 'string' },
        output: { type: 'string', short: 'o' },
        'state-dir': { type: 'string' },
        'xds-insecure': { type: 'boolean' },
      },
      false,
    );
    const address = values.control ?? readConfig().controlAddress;
    const access = debugAccessAt(values['state-dir'], io.cwd, values['xds-insecure'] === true);
    const status = await debug<SyncStatusReply>(address, 'SyncStatus', {}, access);
    if (values.output === 'json') {
      io.stdout(`${JSON.stringify(status, null, 2)}\n`);
      return 0;
    }
    const rows = [...status.proxies]
      .sort((a, b) => proxyName(a.id).localeCompare(proxyName(b.id)))
      .map((p) => [
        proxyName(p.id),
        syncCell(p.types['cluster']),
        syncCell(p.types['listener']),
        syncCell(p.types['endpoint']),
        syncCell(p.types['route']),
        syncCell(p.types['secret']),
        String(status.configVersion),
      ]);
    io.stdout(table(['NAME', 'CDS', 'LDS', 'EDS', 'RDS', 'SDS', 'VERSION'], rows));
    for (const problem of status.configProblems) io.stderr(`config change rejected: ${problem}\n`);
    return 0;
  },
};

type Kind = 'cluster' | 'listener' | 'route' | 'endpoint' | 'secret';
const KINDS: readonly Kind[] = ['cluster', 'listener', 'route', 'endpoint', 'secret'];

type R = Record<string, unknown>;
const rec = (v: unknown): R => (typeof v === 'object' && v !== null ? (v as R) : {});
const list = (v: unknown): R[] => (Array.isArray(v) ? v.map(rec) : []);

function clusterRows(resources: readonly R[]): string[][] {
  return resources.map((c) => {
    const name = String(c['name']);
    const [direction, port, subset, fqdn] = name.split('|');
    if (fqdn === undefined) return [name, '-', '-', '-', str(c['type']), '-'];
    const tls = rec(rec(c['transport_socket'])['typed_config']);
    return [
      fqdn === '' ? '' : fqdn,
      port ?? '',
      subset === '' ? '-' : (subset ?? '-'),
      (direction ?? '').toUpperCase(),
      str(c['type']),
      'sni' in tls ? 'mTLS' : '-',
    ];
  });
}

function listenerRows(resources: readonly R[]): string[][] {
  const rows: string[][] = [];
  for (const l of resources) {
    const address = rec(rec(l['address'])['socket_address']);
    for (const chain of list(l['filter_chains'])) {
      const match = rec(chain['filter_chain_match']);
      const port = rec(match['destination_port'])['value'];
      const filter = rec(list(chain['filters'])[0]);
      const config = rec(filter['typed_config']);
      const rds = rec(config['rds'])['route_config_name'];
      const destination =
        typeof rds === 'string'
          ? `Route: ${rds}`
          : 'route_config' in config
            ? 'Inline Route'
            : typeof config['cluster'] === 'string'
              ? `Cluster: ${config['cluster']}`
              : str(filter['name']);
      const matchText = [
        port === undefined ? '' : `port ${String(num(port))}`,
        typeof match['transport_protocol'] === 'string'
          ? `transport ${match['transport_protocol']}`
          : '',
        Array.isArray(match['server_names']) ? `SNI ${match['server_names'].join(',')}` : '',
      ]
        .filter((s) => s !== '')
        .join('; ');
      rows.push([
        String(l['name']),
        str(address['address']),
        String(num(address['port_value'])),
        matchText === '' ? 'ALL' : matchText,
        destination,
      ]);
    }
  }
  return rows;
}

function routeRows(resources: readonly R[]): string[][] {
  const rows: string[][] = [];
  for (const rc of resources)
    for (const vh of list(rc['virtual_hosts']))
      for (const route of list(vh['routes'])) {
        const match = rec(route['match']);
        const m =
          typeof match['path'] === 'string'
            ? match['path']
            : typeof match['prefix'] === 'string'
              ? `${match['prefix']}*`
              : typeof rec(match['safe_regex'])['regex'] === 'string'
                ? String(rec(match['safe_regex'])['regex'])
                : '*';
        const domains = Array.isArray(vh['domains'])
          ? (vh['domains'] as unknown[]).map(String)
          : [];
        rows.push([
          String(rc['name']),
          String(vh['name']),
          domains
            .filter((d) => !d.includes(':'))
            .slice(0, 3)
            .join(',') + (domains.length > 3 ? ' +' : ''),
          m,
          str(route['name']),
        ]);
      }
  return rows;
}

function endpointRows(resources: readonly R[]): string[][] {
  const rows: string[][] = [];
  for (const cla of resources)
    for (const locality of list(cla['endpoints']))
      for (const lb of list(locality['lb_endpoints'])) {
        const address = rec(rec(rec(lb['endpoint'])['address'])['socket_address']);
        rows.push([
          `${str(address['address'])}:${String(num(address['port_value']))}`,
          str(lb['health_status'], 'HEALTHY'),
          String(cla['cluster_name']),
        ]);
      }
  return rows;
}

function secretRows(resources: readonly R[]): string[][] {
  return resources.map((s) => [
    String(s['name']),
    'tls_certificate' in s ? 'Cert Chain' : 'CA',
    'ACTIVE',
  ]);
}

export const proxyConfigCommand: Command = {
  path: ['proxy-config'],
  summary: 'Show the clusters, listeners, routes, endpoints or secrets sent to a proxy',
  usage: `Usage: palisade proxy-config cluster|listener|route|endpoint|secret NODE [--control ADDR]
                     [--state-dir DIR] [--xds-insecure] [-o json|yaml]

NODE is a proxy's name as proxy-status prints it (instance.namespace), its
instance name, its instance IP, or its full node id. Credentials as for
proxy-status.`,
  run: async (args, io) => {
    const { values, positionals } = parseCommandArgs(args, {
      control: { type: 'string' },
      output: { type: 'string', short: 'o' },
      'state-dir': { type: 'string' },
      'xds-insecure': { type: 'boolean' },
    });
    const [kind, node] = positionals;
    if (kind === undefined || !(KINDS as readonly string[]).includes(kind))
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        `expected one of ${KINDS.join(', ')} as the first argument`,
      );
    if (node === undefined) throw new PalisadeError('PAL_ERR_USAGE', 'missing NODE');
    if (values.output !== undefined && values.output !== 'json' && values.output !== 'yaml')
      throw new PalisadeError('PAL_ERR_USAGE', `-o ${values.output}: expected json or yaml`);
    const address = values.control ?? readConfig().controlAddress;
    const access = debugAccessAt(values['state-dir'], io.cwd, values['xds-insecure'] === true);
    const reply = await debug<ProxyConfigReply>(address, 'ProxyConfig', { id: node }, access);
    const resources = reply.resources[kind] ?? [];
    if (values.output === 'json') {
      io.stdout(`${JSON.stringify(resources, null, 2)}\n`);
      return 0;
    }
    if (values.output === 'yaml') {
      io.stdout(stringify(resources));
      return 0;
    }
    const k = kind as Kind;
    switch (k) {
      case 'cluster':
        io.stdout(
          table(
            ['SERVICE FQDN', 'PORT', 'SUBSET', 'DIRECTION', 'TYPE', 'TLS'],
            clusterRows(resources),
          ),
        );
        break;
      case 'listener':
        io.stdout(
          table(['NAME', 'ADDRESS', 'PORT', 'MATCH', 'DESTINATION'], listenerRows(resources)),
        );
        break;
      case 'route':
        io.stdout(table(['NAME', 'VHOST NAME', 'DOMAINS', 'MATCH', 'ROUTE'], routeRows(resources)));
        break;
      case 'endpoint':
        io.stdout(table(['ENDPOINT', 'STATUS', 'CLUSTER'], endpointRows(resources)));
        break;
      case 'secret':
        io.stdout(table(['RESOURCE NAME', 'TYPE', 'STATUS'], secretRows(resources)));
        break;
    }
    return 0;
  },
};
