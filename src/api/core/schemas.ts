/**
 * TypeBox schemas for the Kubernetes core kinds the mesh reads (`v1`):
 * Namespace, Service and ServiceAccount. Only what the mesh uses is typed;
 * the spec fields Palisade does not implement (e.g. `externalTrafficPolicy`)
 * are rejected rather than ignored, because a user relying on them would get
 * a different behaviour than Kubernetes gives.
 *
 * Field names follow the Kubernetes API reference (core/v1).
 */
import { Type, type Static } from '@sinclair/typebox';

const strict = { additionalProperties: false } as const;
const StrMap = Type.Record(Type.String(), Type.String());
/** RFC 1123 label, as Kubernetes requires for names of these kinds. */
const DnsLabel = Type.String({ pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$' });

const Metadata = Type.Object(
  {
    name: DnsLabel,
    namespace: Type.Optional(DnsLabel),
    labels: Type.Optional(StrMap),
    annotations: Type.Optional(StrMap),
  },
  { additionalProperties: true },
);

const Port = Type.Integer({ minimum: 1, maximum: 65535 });

export const ServicePortSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 })),
    port: Port,
    targetPort: Type.Optional(Type.Union([Port, Type.String({ minLength: 1, maxLength: 15 })])),
    protocol: Type.Optional(
      Type.Union([Type.Literal('TCP'), Type.Literal('UDP'), Type.Literal('SCTP')]),
    ),
    appProtocol: Type.Optional(Type.String()),
  },
  strict,
);

export const ServiceSchema = Type.Object(
  {
    apiVersion: Type.Literal('v1'),
    kind: Type.Literal('Service'),
    metadata: Metadata,
    spec: Type.Object(
      {
        selector: Type.Optional(StrMap),
        ports: Type.Array(ServicePortSchema, { minItems: 1 }),
        type: Type.Optional(
          Type.Union([
            Type.Literal('ClusterIP'),
            Type.Literal('NodePort'),
            Type.Literal('LoadBalancer'),
          ]),
        ),
        // The service's VIP (an IPv4 or IPv6 address) or `None` (headless), as in Kubernetes.
        clusterIP: Type.Optional(
          Type.String({
            pattern: '^(None|(\\d{1,3}\\.){3}\\d{1,3}|[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f]{0,4}){2,7})$',
          }),
        ),
      },
      strict,
    ),
    status: Type.Optional(Type.Unknown()),
  },
  strict,
);

export const ServiceAccountSchema = Type.Object(
  {
    apiVersion: Type.Literal('v1'),
    kind: Type.Literal('ServiceAccount'),
    metadata: Metadata,
    automountServiceAccountToken: Type.Optional(Type.Boolean()),
  },
  strict,
);

export const NamespaceSchema = Type.Object(
  {
    apiVersion: Type.Literal('v1'),
    kind: Type.Literal('Namespace'),
    metadata: Metadata,
    spec: Type.Optional(
      Type.Object({ finalizers: Type.Optional(Type.Array(Type.String())) }, strict),
    ),
    status: Type.Optional(Type.Unknown()),
  },
  strict,
);

/**
 * A Secret; the mesh reads `kubernetes.io/tls` Secrets as gateway
 * credentials (`credentialName`): `tls.crt`, `tls.key` and optionally
 * `ca.crt`, base64 in `data` or plain in `stringData`, as Kubernetes defines.
 */
export const SecretSchema = Type.Object(
  {
    apiVersion: Type.Literal('v1'),
    kind: Type.Literal('Secret'),
    metadata: Metadata,
    type: Type.Optional(Type.String()),
    data: Type.Optional(
      Type.Record(Type.String(), Type.String({ pattern: '^[A-Za-z0-9+/\\r\\n]*={0,2}$' })),
    ),
    stringData: Type.Optional(StrMap),
    immutable: Type.Optional(Type.Boolean()),
  },
  strict,
);

export type ServicePort = Static<typeof ServicePortSchema>;
export type Service = Static<typeof ServiceSchema>;
export type ServiceAccount = Static<typeof ServiceAccountSchema>;
export type Namespace = Static<typeof NamespaceSchema>;
export type Secret = Static<typeof SecretSchema>;
export type CoreResource = Service | ServiceAccount | Namespace | Secret;
