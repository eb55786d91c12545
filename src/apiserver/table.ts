/**
 * Server-side printing (meta.k8s.io/v1 Table) for `kubectl get`: the
 * columns kube-apiserver's printers give each kind (pkg/printers/internalversion),
 * reduced to what the stored fields say. Rows carry PartialObjectMetadata, as
 * with `includeObject=Metadata` (the default).
 */
import type { KubeObject } from './store/types.js';
import type { ResourceType } from './resources.js';

interface Column {
  readonly name: string;
  readonly type: string;
  readonly format?: string;
  readonly description: string;
  readonly priority?: number;
  readonly cell: (o: KubeObject, now: number) => unknown;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function rec(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** kubectl's HumanDuration ("5s", "3m", "2d4h"). */
export function humanAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (d < 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (d < 365 * 2) return `${d}d`;
  return `${Math.floor(d / 365)}y`;
}

const NAME: Column = {
  name: 'Name',
  type: 'string',
  format: 'name',
  description: 'Name must be unique within a namespace.',
  cell: (o) => str(o.metadata?.name),
};

const AGE: Column = {
  name: 'Age',
  type: 'string',
  description:
    'CreationTimestamp is a timestamp representing the server time when this object was created.',
  cell: (o, now) => {
    const t = Date.parse(str(o.metadata?.creationTimestamp));
    return Number.isNaN(t) ? '<unknown>' : humanAge(now - t);
  },
};

function podStatus(o: KubeObject): string {
  if (o.metadata?.deletionTimestamp !== undefined) return 'Terminating';
  const status = rec(o.status);
  return str(status.reason) || str(status.phase) || 'Pending';
}

const COLUMNS: Readonly<Record<string, readonly Column[]>> = {
  Pod: [
    NAME,
    {
      name: 'Ready',
      type: 'string',
      description: 'The aggregate readiness state of this pod for accepting traffic.',
      cell: (o) => {
        const containers = arr(rec(o.spec).containers).length;
        const ready = arr(rec(o.status).containerStatuses).filter(
          (c) => rec(c).ready === true,
        ).length;
        return `${ready}/${containers}`;
      },
    },
    {
      name: 'Status',
      type: 'string',
      description: 'The aggregate status of the containers in this pod.',
      cell: podStatus,
    },
    {
      name: 'Restarts',
      type: 'string',
      description: 'The number of times the containers in this pod have been restarted.',
      cell: (o) =>
        String(
          arr(rec(o.status).containerStatuses).reduce<number>(
            (n, c) => n + (Number(rec(c).restartCount) || 0),
            0,
          ),
        ),
    },
    AGE,
  ],
  Namespace: [
    NAME,
    {
      name: 'Status',
      type: 'string',
      description: 'The status of the namespace',
      cell: (o) => str(rec(o.status).phase) || 'Active',
    },
    AGE,
  ],
  Service: [
    NAME,
    {
      name: 'Type',
      type: 'string',
      description: 'The type of the service.',
      cell: (o) => str(rec(o.spec).type) || 'ClusterIP',
    },
    {
      name: 'Cluster-IP',
      type: 'string',
      description: 'The cluster IP of the service.',
      cell: (o) => str(rec(o.spec).clusterIP) || '<none>',
    },
    {
      name: 'External-IP',
      type: 'string',
      description: 'The external IP of the service.',
      cell: (o) => arr(rec(o.spec).externalIPs).map(str).join(',') || '<none>',
    },
    {
      name: 'Port(s)',
      type: 'string',
      description: 'The ports of the service.',
      cell: (o) =>
        arr(rec(o.spec).ports)
          .map((p) => `${String(rec(p).port)}/${str(rec(p).protocol) || 'TCP'}`)
          .join(',') || '<none>',
    },
    AGE,
  ],
  ServiceAccount: [
    NAME,
    {
      name: 'Secrets',
      type: 'integer',
      description: 'Secrets',
      cell: (o) => arr(o.secrets).length,
    },
    AGE,
  ],
  ConfigMap: [
    NAME,
    {
      name: 'Data',
      type: 'integer',
      description: 'Number of data keys',
      cell: (o) => Object.keys(rec(o.data)).length + Object.keys(rec(o.binaryData)).length,
    },
    AGE,
  ],
  Secret: [
    NAME,
    {
      name: 'Type',
      type: 'string',
      description: 'The type of the secret',
      cell: (o) => str(o.type) || 'Opaque',
    },
    {
      name: 'Data',
      type: 'integer',
      description: 'Number of data keys',
      cell: (o) => Object.keys(rec(o.data)).length,
    },
    AGE,
  ],
  ClusterRoleBinding: [
    NAME,
    {
      name: 'Role',
      type: 'string',
      description: 'Role',
      cell: (o) => `${str(rec(o.roleRef).kind)}/${str(rec(o.roleRef).name)}`,
    },
    AGE,
  ],
  RoleBinding: [
    NAME,
    {
      name: 'Role',
      type: 'string',
      description: 'Role',
      cell: (o) => `${str(rec(o.roleRef).kind)}/${str(rec(o.roleRef).name)}`,
    },
    AGE,
  ],
  ClusterRole: [
    NAME,
    {
      name: 'Created At',
      type: 'date',
      description: 'Creation time',
      cell: (o) => str(o.metadata?.creationTimestamp),
    },
  ],
  Role: [
    NAME,
    {
      name: 'Created At',
      type: 'date',
      description: 'Creation time',
      cell: (o) => str(o.metadata?.creationTimestamp),
    },
  ],
};

function columnsFor(t: ResourceType): readonly Column[] {
  return COLUMNS[t.kind] ?? [NAME, AGE];
}

/** A Table of `items`; `withHeaders` false for watch events after the first (NoHeaders). */
export function toTable(
  t: ResourceType,
  items: readonly KubeObject[],
  listMeta: Record<string, unknown>,
  withHeaders = true,
  now = Date.now(),
): KubeObject {
  const cols = columnsFor(t);
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: listMeta,
    columnDefinitions: withHeaders
      ? cols.map((c) => ({
          name: c.name,
          type: c.type,
          format: c.format ?? '',
          description: c.description,
          priority: c.priority ?? 0,
        }))
      : [],
    rows: items.map((o) => ({
      cells: cols.map((c) => c.cell(o, now)),
      object: {
        kind: 'PartialObjectMetadata',
        apiVersion: 'meta.k8s.io/v1',
        metadata: o.metadata ?? {},
      },
    })),
  };
}

/** Does the Accept header ask for a Table (`as=Table;g=meta.k8s.io;v=v1`)? */
export function wantsTable(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  return accept.split(',').some((part) => {
    const params = part.split(';').map((p) => p.trim());
    return (
      params.includes('as=Table') &&
      params.includes('g=meta.k8s.io') &&
      params.some((p) => p === 'v=v1')
    );
  });
}
