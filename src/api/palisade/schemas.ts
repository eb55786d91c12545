/**
 * Palisade's own kinds (`palisade.dev/v1alpha1`), used only where nothing
 * standard exists. `Workload` describes a local workload for `palisade up`:
 * the process to run (command, args, env), its pod labels, service account,
 * ports and replica count — the parts of a Deployment's pod template a
 * plain-process runtime can honour.
 */
import { Type, type Static } from '@sinclair/typebox';

const strict = { additionalProperties: false } as const;
const StrMap = Type.Record(Type.String(), Type.String());
const DnsLabel = Type.String({ pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$' });

export const WorkloadPortSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 15 })),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    /** Istio's protocol names; decides HTTP vs opaque TCP handling. */
    protocol: Type.Optional(
      Type.Union(['HTTP', 'HTTP2', 'GRPC', 'TCP'].map((p) => Type.Literal(p))),
    ),
  },
  strict,
);

export const WorkloadSchema = Type.Object(
  {
    apiVersion: Type.Literal('palisade.dev/v1alpha1'),
    kind: Type.Literal('Workload'),
    metadata: Type.Object(
      {
        name: DnsLabel,
        namespace: Type.Optional(DnsLabel),
        labels: Type.Optional(StrMap),
        annotations: Type.Optional(StrMap),
      },
      { additionalProperties: true },
    ),
    spec: Type.Object(
      {
        command: Type.String({ minLength: 1 }),
        args: Type.Optional(Type.Array(Type.String())),
        env: Type.Optional(
          Type.Array(
            Type.Object(
              { name: Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), value: Type.String() },
              strict,
            ),
          ),
        ),
        ports: Type.Array(WorkloadPortSchema, { minItems: 1 }),
        serviceAccount: Type.Optional(DnsLabel),
        labels: Type.Optional(StrMap),
        replicas: Type.Optional(Type.Integer({ minimum: 0, maximum: 254 })),
      },
      strict,
    ),
  },
  strict,
);

export type WorkloadPort = Static<typeof WorkloadPortSchema>;
export type Workload = Static<typeof WorkloadSchema>;
