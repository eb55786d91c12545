/**
 * Sidecar injection, as Istio's injector decides and does it: whether a pod
 * gets a sidecar (the `sidecar.istio.io/inject` label or annotation, host
 * network, already injected, system namespaces) and the containers, volumes,
 * labels and annotations it adds — the `istio-init` init container running
 * `palisade proxy-init` with istio-iptables' flags, the `istio-proxy`
 * container running `palisade proxy`, and the `sidecar.istio.io/status`
 * annotation — expressed as the JSONPatch an AdmissionReview answer carries.
 * Container and volume names are Istio's, so tooling that looks for
 * `istio-proxy` keeps working.
 *
 * Istio: "Installing the Sidecar" › "Controlling the injection policy";
 * "Sidecar injection, traffic redirection" annotations
 * (traffic.sidecar.istio.io/*).
 */

export interface InjectOptions {
  /** Image of both containers (`palisade` is its entrypoint). */
  readonly image: string;
  /** The control plane's xDS address the proxy dials. */
  readonly discoveryAddress: string;
  /** The CA's CSR service; without it the proxy gets no SVID from a CA. */
  readonly caAddress?: string;
  /** Proxy UID/GID: its own traffic is not redirected (istio-iptables `-u`). */
  readonly proxyUid?: number;
}

export type JsonPatchOp = { op: 'add'; path: string; value: unknown };

function rec(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}

const IGNORED_NAMESPACES = ['kube-system', 'kube-public'];
const YES = ['y', 'yes', 'true', 'on'];
const NO = ['n', 'no', 'false', 'off'];
export const STATUS_ANNOTATION = 'sidecar.istio.io/status';
export const INJECT_KEY = 'sidecar.istio.io/inject';

/** Istio's injectRequired: undefined means inject, else the reason it does not. */
export function skipReason(pod: Record<string, unknown>, namespace: string): string | undefined {
  const meta = rec(pod.metadata);
  const spec = rec(pod.spec);
  if (spec.hostNetwork === true) return 'hostNetwork';
  if (IGNORED_NAMESPACES.includes(namespace)) return `namespace ${namespace} is ignored`;
  const annotations = rec(meta.annotations);
  if (typeof annotations[STATUS_ANNOTATION] === 'string') return 'already injected';
  // The label wins over the annotation, as in Istio 1.x since the label became the documented way.
  const labels = rec(meta.labels);
  const raw = labels[INJECT_KEY] ?? annotations[INJECT_KEY];
  const value = typeof raw === 'string' ? raw.toLowerCase() : '';
  if (NO.includes(value)) return `${INJECT_KEY}=${value}`;
  if (value !== '' && !YES.includes(value)) return `${INJECT_KEY}=${value} is not a boolean`;
  return undefined;
}

/** istio-iptables arguments, honouring the traffic.sidecar.istio.io annotations. */
function iptablesArgs(annotations: Record<string, unknown>, uid: number): string[] {
  const a = (k: string): string | undefined => {
    const v = annotations[`traffic.sidecar.istio.io/${k}`];
    return typeof v === 'string' ? v : undefined;
  };
  const excludeInbound = ['15090', '15021', '15020', ...(a('excludeInboundPorts') ?? '').split(',')]
    .map((p) => p.trim())
    .filter((p) => p !== '');
  const out = [
    'proxy-init',
    '-p',
    '15001',
    '-z',
    '15006',
    '-u',
    String(uid),
    '-m',
    'REDIRECT',
    '-i',
    a('includeOutboundIPRanges') ?? '*',
    '-x',
    a('excludeOutboundIPRanges') ?? '',
    '-b',
    a('includeInboundPorts') ?? '*',
    '-d',
    [...new Set(excludeInbound)].join(','),
  ];
  const excludeOutboundPorts = a('excludeOutboundPorts');
  if (excludeOutboundPorts !== undefined) out.push('-o', excludeOutboundPorts);
  return out;
}

/** The JSONPatch that injects the sidecar into `pod` (created in `namespace`). */
export function injectionPatch(
  pod: Record<string, unknown>,
  namespace: string,
  options: InjectOptions,
): JsonPatchOp[] {
  const meta = rec(pod.metadata);
  const spec = rec(pod.spec);
  const uid = options.proxyUid ?? 1337;
  const annotations = { ...rec(meta.annotations) } as Record<string, unknown>;
  const labels = { ...rec(meta.labels) } as Record<string, unknown>;
  const containers = Array.isArray(spec.containers) ? spec.containers.map(rec) : [];
  const inits = Array.isArray(spec.initContainers) ? spec.initContainers.map(rec) : [];
  const volumes = Array.isArray(spec.volumes) ? spec.volumes.map(rec) : [];
  const init = {
    name: 'istio-init',
    image: options.image,
    imagePullPolicy: 'IfNotPresent',
    command: ['palisade'],
    args: iptablesArgs(annotations, uid),
    resources: { requests: { cpu: '10m', memory: '40Mi' }, limits: { cpu: '2', memory: '1Gi' } },
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: false,
      runAsGroup: 0,
      runAsNonRoot: false,
      runAsUser: 0,
    },
  };
  const fieldEnv = (name: string, fieldPath: string): Record<string, unknown> => ({
    name,
    valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } },
  });
  const proxy = {
    name: 'istio-proxy',
    image: options.image,
    imagePullPolicy: 'IfNotPresent',
    command: ['palisade'],
    args: [
      'proxy',
      '--xds',
      options.discoveryAddress,
      // Kubernetes expands $(VAR) from the container's env.
      '--node-id',
      'sidecar~$(INSTANCE_IP)~$(POD_NAME).$(POD_NAMESPACE)~$(POD_NAMESPACE).svc.cluster.local',
      '--token-file',
      '/var/run/secrets/tokens/istio-token',
      '--xds-root-cert',
      '/var/run/secrets/istio/root-cert.pem',
      ...(options.caAddress === undefined
        ? []
        : [
            '--ca-url',
            options.caAddress,
            '--ca-root-cert',
            '/var/run/secrets/istio/root-cert.pem',
          ]),
    ],
    env: [
      fieldEnv('POD_NAME', 'metadata.name'),
      fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
      fieldEnv('INSTANCE_IP', 'status.podIP'),
      fieldEnv('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
      fieldEnv('HOST_IP', 'status.hostIP'),
    ],
    ports: [{ containerPort: 15090, name: 'http-envoy-prom', protocol: 'TCP' }],
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '2', memory: '1Gi' } },
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsGroup: uid,
      runAsNonRoot: true,
      runAsUser: uid,
    },
    volumeMounts: [
      { name: 'istio-envoy', mountPath: '/etc/istio/proxy' },
      { name: 'istio-data', mountPath: '/var/lib/istio/data' },
      { name: 'istio-token', mountPath: '/var/run/secrets/tokens' },
      { name: 'istiod-ca-cert', mountPath: '/var/run/secrets/istio' },
    ],
  };
  const newVolumes = [
    { name: 'istio-envoy', emptyDir: { medium: 'Memory' } },
    { name: 'istio-data', emptyDir: {} },
    {
      name: 'istio-token',
      projected: {
        sources: [
          {
            serviceAccountToken: {
              audience: 'istio-ca',
              expirationSeconds: 43200,
              path: 'istio-token',
            },
          },
        ],
      },
    },
    { name: 'istiod-ca-cert', configMap: { name: 'istio-ca-root-cert' } },
  ];
  const firstApp = typeof containers[0]?.name === 'string' ? containers[0].name : undefined;
  const status = {
    initContainers: ['istio-init'],
    containers: ['istio-proxy'],
    volumes: newVolumes.map((v) => v.name),
    imagePullSecrets: null,
    revision: 'default',
  };
  annotations[STATUS_ANNOTATION] = JSON.stringify(status);
  if (
    firstApp !== undefined &&
    annotations['kubectl.kubernetes.io/default-container'] === undefined
  )
    annotations['kubectl.kubernetes.io/default-container'] = firstApp;
  const podName = typeof meta.name === 'string' ? meta.name : '';
  labels['security.istio.io/tlsMode'] = 'istio';
  labels['service.istio.io/canonical-name'] ??=
    labels['app.kubernetes.io/name'] ?? labels.app ?? (podName === '' ? namespace : podName);
  labels['service.istio.io/canonical-revision'] ??=
    labels['app.kubernetes.io/version'] ?? labels.version ?? 'latest';
  // "add" on an existing member replaces it (RFC 6902 §4.1): whole lists and maps, in one order.
  return [
    { op: 'add', path: '/metadata/labels', value: labels },
    { op: 'add', path: '/metadata/annotations', value: annotations },
    { op: 'add', path: '/spec/initContainers', value: [init, ...inits] },
    { op: 'add', path: '/spec/containers', value: [...containers, proxy] },
    { op: 'add', path: '/spec/volumes', value: [...volumes, ...newVolumes] },
  ];
}
