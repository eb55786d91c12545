/**
 * TypeBox schemas for Istio's security kinds (security.istio.io v1 and
 * v1beta1): PeerAuthentication, RequestAuthentication, AuthorizationPolicy.
 * Every spec object is strict: an unknown or unsupported field is a
 * validation error, never ignored (a security field silently dropped would
 * fail open). Field names follow istio.io/latest/docs/reference/config/security/.
 */
import { Type, type Static } from '@sinclair/typebox';

const strict = { additionalProperties: false } as const;
const Strings = Type.Array(Type.String({ minLength: 1 }), { minItems: 1 });

export const SECURITY_GROUP = 'security.istio.io';
export const SECURITY_VERSIONS = ['v1', 'v1beta1'] as const;

const MetadataSchema = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    namespace: Type.Optional(Type.String({ minLength: 1 })),
    labels: Type.Optional(Type.Record(Type.String(), Type.String())),
    annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
    creationTimestamp: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

const WorkloadSelectorSchema = Type.Object(
  { matchLabels: Type.Record(Type.String(), Type.String()) },
  strict,
);

// --- PeerAuthentication ----------------------------------------------------

export const MTLS_MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] as const;
export type MtlsMode = (typeof MTLS_MODES)[number];
const MtlsSchema = Type.Object(
  { mode: Type.Optional(Type.Union(MTLS_MODES.map((m) => Type.Literal(m)))) },
  strict,
);

export const PeerAuthenticationSpecSchema = Type.Object(
  {
    selector: Type.Optional(WorkloadSelectorSchema),
    mtls: Type.Optional(MtlsSchema),
    portLevelMtls: Type.Optional(Type.Record(Type.String({ pattern: '^[0-9]+$' }), MtlsSchema)),
  },
  strict,
);

// --- RequestAuthentication -------------------------------------------------

export const JwtRuleSchema = Type.Object(
  {
    issuer: Type.String({ minLength: 1 }),
    audiences: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    jwksUri: Type.Optional(Type.String({ minLength: 1 })),
    jwks: Type.Optional(Type.String({ minLength: 1 })),
    fromHeaders: Type.Optional(
      Type.Array(
        Type.Object(
          { name: Type.String({ minLength: 1 }), prefix: Type.Optional(Type.String()) },
          strict,
        ),
      ),
    ),
    fromParams: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    fromCookies: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    outputPayloadToHeader: Type.Optional(Type.String({ minLength: 1 })),
    forwardOriginalToken: Type.Optional(Type.Boolean()),
    outputClaimToHeaders: Type.Optional(
      Type.Array(
        Type.Object(
          { header: Type.String({ minLength: 1 }), claim: Type.String({ minLength: 1 }) },
          strict,
        ),
      ),
    ),
    timeout: Type.Optional(Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$' })),
    spaceDelimitedClaims: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
  },
  strict,
);

export const RequestAuthenticationSpecSchema = Type.Object(
  {
    selector: Type.Optional(WorkloadSelectorSchema),
    jwtRules: Type.Optional(Type.Array(JwtRuleSchema)),
  },
  strict,
);

// --- AuthorizationPolicy ---------------------------------------------------

const SOURCE_FIELDS = [
  'principals',
  'requestPrincipals',
  'namespaces',
  'serviceAccounts',
  'trustDomains',
  'ipBlocks',
  'remoteIpBlocks',
] as const;
const OPERATION_FIELDS = ['hosts', 'ports', 'methods', 'paths'] as const;
const notName = (f: string): string => `not${f[0]?.toUpperCase() ?? ''}${f.slice(1)}`;

export const SourceSchema = Type.Object(
  Object.fromEntries(
    SOURCE_FIELDS.flatMap((f) => [
      [f, Type.Optional(Strings)],
      [notName(f), Type.Optional(Strings)],
    ]),
  ),
  strict,
);
export const OperationSchema = Type.Object(
  Object.fromEntries(
    OPERATION_FIELDS.flatMap((f) => [
      [f, Type.Optional(Strings)],
      [notName(f), Type.Optional(Strings)],
    ]),
  ),
  strict,
);
export const ConditionSchema = Type.Object(
  {
    key: Type.String({ minLength: 1 }),
    values: Type.Optional(Type.Array(Type.String())),
    notValues: Type.Optional(Type.Array(Type.String())),
  },
  strict,
);
export const RuleSchema = Type.Object(
  {
    from: Type.Optional(Type.Array(Type.Object({ source: SourceSchema }, strict))),
    to: Type.Optional(Type.Array(Type.Object({ operation: OperationSchema }, strict))),
    when: Type.Optional(Type.Array(ConditionSchema)),
  },
  strict,
);

export const AUTHZ_ACTIONS = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] as const;
export type AuthzAction = (typeof AUTHZ_ACTIONS)[number];

export const AuthorizationPolicySpecSchema = Type.Object(
  {
    selector: Type.Optional(WorkloadSelectorSchema),
    action: Type.Optional(Type.Union(AUTHZ_ACTIONS.map((a) => Type.Literal(a)))),
    provider: Type.Optional(Type.Object({ name: Type.String({ minLength: 1 }) }, strict)),
    rules: Type.Optional(Type.Array(RuleSchema)),
  },
  strict,
);

const resource = <K extends string, S extends ReturnType<typeof Type.Object>>(kind: K, spec: S) =>
  Type.Object(
    {
      apiVersion: Type.Union(SECURITY_VERSIONS.map((v) => Type.Literal(`${SECURITY_GROUP}/${v}`))),
      kind: Type.Literal(kind),
      metadata: MetadataSchema,
      spec: Type.Optional(spec),
      status: Type.Optional(Type.Unknown()),
    },
    strict,
  );

export const PeerAuthenticationSchema = resource(
  'PeerAuthentication',
  PeerAuthenticationSpecSchema,
);
export const RequestAuthenticationSchema = resource(
  'RequestAuthentication',
  RequestAuthenticationSpecSchema,
);
export const AuthorizationPolicySchema = resource(
  'AuthorizationPolicy',
  AuthorizationPolicySpecSchema,
);

export type PeerAuthentication = Static<typeof PeerAuthenticationSchema>;
export type RequestAuthentication = Static<typeof RequestAuthenticationSchema>;
export type AuthorizationPolicy = Static<typeof AuthorizationPolicySchema>;
export type JwtRule = Static<typeof JwtRuleSchema>;
export type AuthzRule = Static<typeof RuleSchema>;
export type AuthzSource = Static<typeof SourceSchema>;
export type AuthzOperation = Static<typeof OperationSchema>;
export type AuthzCondition = Static<typeof ConditionSchema>;
export type SecurityResource = PeerAuthentication | RequestAuthentication | AuthorizationPolicy;
