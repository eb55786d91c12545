/**
 * TypeBox schemas for Istio's networking kinds (networking.istio.io v1,
 * v1beta1, v1alpha3): VirtualService, DestinationRule, Gateway,
 * ServiceEntry, Sidecar, WorkloadEntry — the fields of
 * istio.io/latest/docs/reference/config/networking/. Unknown fields are
 * rejected so a typo never silently changes routing or TLS.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

const strict = { additionalProperties: false } as const;
const Str = Type.String({ minLength: 1 });
const StrMap = Type.Record(Type.String(), Type.String());
const Duration = Type.String({ pattern: '^([0-9]+(\\.[0-9]+)?(h|m|s|ms|us|ns))+$' });
const Port = Type.Integer({ minimum: 0, maximum: 65535 });
const Percent = Type.Object({ value: Type.Number({ minimum: 0, maximum: 100 }) }, strict);
const opt = <T extends TSchema>(t: T) => Type.Optional(t);
const obj = <P extends Record<string, TSchema>>(p: P) => Type.Object(p, strict);
const oneOfStrings = (...xs: readonly string[]) => Type.Union(xs.map((x) => Type.Literal(x)));

export const NETWORKING_GROUP = 'networking.istio.io';
export const NETWORKING_VERSIONS = ['v1', 'v1beta1', 'v1alpha3'] as const;

export const StringMatchSchema = Type.Union([
  obj({ exact: Type.String() }),
  obj({ prefix: Type.String() }),
  obj({ regex: Type.String() }),
]);

const HeadersSchema = obj({
  request: opt(obj({ set: opt(StrMap), add: opt(StrMap), remove: opt(Type.Array(Str)) })),
  response: opt(obj({ set: opt(StrMap), add: opt(StrMap), remove: opt(Type.Array(Str)) })),
});

const DestinationSchema = obj({ host: Str, subset: opt(Str), port: opt(obj({ number: Port })) });

const HttpMatchSchema = obj({
  name: opt(Str),
  uri: opt(StringMatchSchema),
  scheme: opt(StringMatchSchema),
  method: opt(StringMatchSchema),
  authority: opt(StringMatchSchema),
  headers: opt(Type.Record(Type.String(), StringMatchSchema)),
  withoutHeaders: opt(Type.Record(Type.String(), StringMatchSchema)),
  queryParams: opt(Type.Record(Type.String(), StringMatchSchema)),
  port: opt(Port),
  sourceLabels: opt(StrMap),
  sourceNamespace: opt(Str),
  gateways: opt(Type.Array(Str)),
  ignoreUriCase: opt(Type.Boolean()),
  statPrefix: opt(Str),
});

const HttpRouteSchema = obj({
  name: opt(Str),
  match: opt(Type.Array(HttpMatchSchema)),
  route: opt(
    Type.Array(
      obj({
        destination: DestinationSchema,
        weight: opt(Type.Integer({ minimum: 0 })),
        headers: opt(HeadersSchema),
      }),
    ),
  ),
  redirect: opt(
    obj({
      uri: opt(Str),
      authority: opt(Str),
      port: opt(Port),
      derivePort: opt(oneOfStrings('FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT')),
      scheme: opt(Str),
      redirectCode: opt(Type.Integer({ minimum: 300, maximum: 399 })),
    }),
  ),
  directResponse: opt(
    obj({
      status: Type.Integer({ minimum: 100, maximum: 599 }),
      body: opt(obj({ string: opt(Type.String()), bytes: opt(Type.String()) })),
    }),
  ),
  delegate: opt(obj({ name: Str, namespace: opt(Str) })),
  rewrite: opt(
    obj({
      uri: opt(Type.String()),
      authority: opt(Str),
      uriRegexRewrite: opt(obj({ match: Str, rewrite: Type.String() })),
    }),
  ),
  timeout: opt(Duration),
  retries: opt(
    obj({
      attempts: opt(Type.Integer({ minimum: 0 })),
      perTryTimeout: opt(Duration),
      retryOn: opt(Str),
      retryRemoteLocalities: opt(Type.Boolean()),
    }),
  ),
  fault: opt(
    obj({
      delay: opt(
        obj({
          fixedDelay: opt(Duration),
          percentage: opt(Percent),
          percent: opt(Type.Integer({ minimum: 0, maximum: 100 })),
        }),
      ),
      abort: opt(
        obj({
          httpStatus: opt(Type.Integer({ minimum: 200, maximum: 599 })),
          grpcStatus: opt(Str),
          percentage: opt(Percent),
        }),
      ),
    }),
  ),
  mirror: opt(DestinationSchema),
  mirrors: opt(Type.Array(obj({ destination: DestinationSchema, percentage: opt(Percent) }))),
  mirrorPercentage: opt(Percent),
  corsPolicy: opt(
    obj({
      allowOrigins: opt(Type.Array(StringMatchSchema)),
      allowMethods: opt(Type.Array(Str)),
      allowHeaders: opt(Type.Array(Str)),
      exposeHeaders: opt(Type.Array(Str)),
      maxAge: opt(Duration),
      allowCredentials: opt(Type.Boolean()),
      unmatchedPreflights: opt(oneOfStrings('UNSPECIFIED', 'FORWARD', 'IGNORE')),
    }),
  ),
  headers: opt(HeadersSchema),
});

const L4MatchSchema = obj({
  destinationSubnets: opt(Type.Array(Str)),
  port: opt(Port),
  sourceLabels: opt(StrMap),
  gateways: opt(Type.Array(Str)),
  sourceNamespace: opt(Str),
});
const RouteDestinationSchema = obj({
  destination: DestinationSchema,
  weight: opt(Type.Integer({ minimum: 0 })),
});

export const VirtualServiceSpecSchema = obj({
  hosts: opt(Type.Array(Str)),
  gateways: opt(Type.Array(Str)),
  http: opt(Type.Array(HttpRouteSchema)),
  tls: opt(
    Type.Array(
      obj({
        match: Type.Array(
          obj({
            sniHosts: Type.Array(Str),
            destinationSubnets: opt(Type.Array(Str)),
            port: opt(Port),
            sourceLabels: opt(StrMap),
            gateways: opt(Type.Array(Str)),
            sourceNamespace: opt(Str),
          }),
        ),
        route: opt(Type.Array(RouteDestinationSchema)),
      }),
    ),
  ),
  tcp: opt(
    Type.Array(
      obj({
        match: opt(Type.Array(L4MatchSchema)),
        route: opt(Type.Array(RouteDestinationSchema)),
      }),
    ),
  ),
  exportTo: opt(Type.Array(Str)),
});

const LoadBalancerSchema = obj({
  simple: opt(
    oneOfStrings(
      'UNSPECIFIED',
      'LEAST_CONN',
      'RANDOM',
      'PASSTHROUGH',
      'ROUND_ROBIN',
      'LEAST_REQUEST',
    ),
  ),
  consistentHash: opt(
    obj({
      httpHeaderName: opt(Str),
      httpCookie: opt(obj({ name: Str, path: opt(Str), ttl: opt(Duration) })),
      useSourceIp: opt(Type.Boolean()),
      httpQueryParameterName: opt(Str),
      ringHash: opt(obj({ minimumRingSize: opt(Type.Integer({ minimum: 1 })) })),
      maglev: opt(obj({ tableSize: opt(Type.Integer({ minimum: 1 })) })),
      minimumRingSize: opt(Type.Integer({ minimum: 1 })),
    }),
  ),
  warmupDurationSecs: opt(Duration),
});

const TlsSettingsSchema = obj({
  mode: opt(oneOfStrings('DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL')),
  clientCertificate: opt(Str),
  privateKey: opt(Str),
  caCertificates: opt(Str),
  credentialName: opt(Str),
  subjectAltNames: opt(Type.Array(Str)),
  sni: opt(Str),
  insecureSkipVerify: opt(Type.Boolean()),
});

const TrafficPolicyCore = {
  loadBalancer: opt(LoadBalancerSchema),
  connectionPool: opt(
    obj({
      tcp: opt(
        obj({
          maxConnections: opt(Type.Integer({ minimum: 0 })),
          connectTimeout: opt(Duration),
          idleTimeout: opt(Duration),
          maxConnectionDuration: opt(Duration),
          tcpKeepalive: opt(
            obj({ probes: opt(Type.Integer()), time: opt(Duration), interval: opt(Duration) }),
          ),
        }),
      ),
      http: opt(
        obj({
          http1MaxPendingRequests: opt(Type.Integer({ minimum: 0 })),
          http2MaxRequests: opt(Type.Integer({ minimum: 0 })),
          maxRequestsPerConnection: opt(Type.Integer({ minimum: 0 })),
          maxRetries: opt(Type.Integer({ minimum: 0 })),
          idleTimeout: opt(Duration),
          h2UpgradePolicy: opt(oneOfStrings('DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE')),
          useClientProtocol: opt(Type.Boolean()),
          maxConcurrentStreams: opt(Type.Integer({ minimum: 0 })),
        }),
      ),
    }),
  ),
  outlierDetection: opt(
    obj({
      consecutiveErrors: opt(Type.Integer({ minimum: 0 })),
      consecutive5xxErrors: opt(Type.Integer({ minimum: 0 })),
      consecutiveGatewayErrors: opt(Type.Integer({ minimum: 0 })),
      consecutiveLocalOriginFailures: opt(Type.Integer({ minimum: 0 })),
      splitExternalLocalOriginErrors: opt(Type.Boolean()),
      interval: opt(Duration),
      baseEjectionTime: opt(Duration),
      maxEjectionPercent: opt(Type.Integer({ minimum: 0, maximum: 100 })),
      minHealthPercent: opt(Type.Integer({ minimum: 0, maximum: 100 })),
    }),
  ),
  tls: opt(TlsSettingsSchema),
};
const PortTrafficPolicySchema = obj({ port: opt(obj({ number: Port })), ...TrafficPolicyCore });
const TrafficPolicySchema = obj({
  ...TrafficPolicyCore,
  portLevelSettings: opt(Type.Array(PortTrafficPolicySchema)),
});

export const DestinationRuleSpecSchema = obj({
  host: Str,
  trafficPolicy: opt(TrafficPolicySchema),
  subsets: opt(
    Type.Array(obj({ name: Str, labels: opt(StrMap), trafficPolicy: opt(TrafficPolicySchema) })),
  ),
  exportTo: opt(Type.Array(Str)),
  workloadSelector: opt(obj({ matchLabels: StrMap })),
});

const PortSchema = obj({ number: Port, protocol: opt(Str), name: opt(Str), targetPort: opt(Port) });

export const GatewaySpecSchema = obj({
  selector: opt(StrMap),
  servers: Type.Array(
    obj({
      port: PortSchema,
      bind: opt(Str),
      hosts: Type.Array(Str, { minItems: 1 }),
      tls: opt(
        obj({
          httpsRedirect: opt(Type.Boolean()),
          mode: opt(
            oneOfStrings(
              'PASSTHROUGH',
              'SIMPLE',
              'MUTUAL',
              'AUTO_PASSTHROUGH',
              'ISTIO_MUTUAL',
              'OPTIONAL_MUTUAL',
            ),
          ),
          serverCertificate: opt(Str),
          privateKey: opt(Str),
          caCertificates: opt(Str),
          credentialName: opt(Str),
          subjectAltNames: opt(Type.Array(Str)),
          minProtocolVersion: opt(
            oneOfStrings('TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'),
          ),
          maxProtocolVersion: opt(
            oneOfStrings('TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'),
          ),
          cipherSuites: opt(Type.Array(Str)),
        }),
      ),
      name: opt(Str),
    }),
    { minItems: 1 },
  ),
});

const WorkloadEntrySpecCore = {
  address: opt(Str),
  ports: opt(Type.Record(Type.String(), Port)),
  labels: opt(StrMap),
  network: opt(Str),
  locality: opt(Str),
  weight: opt(Type.Integer({ minimum: 0 })),
  serviceAccount: opt(Str),
};
export const WorkloadEntrySpecSchema = obj(WorkloadEntrySpecCore);

export const ServiceEntrySpecSchema = obj({
  hosts: Type.Array(Str, { minItems: 1 }),
  addresses: opt(Type.Array(Str)),
  ports: opt(Type.Array(PortSchema)),
  location: opt(oneOfStrings('MESH_EXTERNAL', 'MESH_INTERNAL')),
  resolution: opt(oneOfStrings('NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN')),
  endpoints: opt(Type.Array(WorkloadEntrySpecSchema)),
  workloadSelector: opt(obj({ labels: StrMap })),
  exportTo: opt(Type.Array(Str)),
  subjectAltNames: opt(Type.Array(Str)),
});

export const SidecarSpecSchema = obj({
  workloadSelector: opt(obj({ labels: StrMap })),
  ingress: opt(
    Type.Array(
      obj({
        port: PortSchema,
        bind: opt(Str),
        defaultEndpoint: opt(Str),
        captureMode: opt(oneOfStrings('DEFAULT', 'IPTABLES', 'NONE')),
        tls: opt(Type.Unknown()),
      }),
    ),
  ),
  egress: opt(
    Type.Array(
      obj({
        port: opt(PortSchema),
        bind: opt(Str),
        captureMode: opt(oneOfStrings('DEFAULT', 'IPTABLES', 'NONE')),
        hosts: Type.Array(Str, { minItems: 1 }),
      }),
    ),
  ),
  outboundTrafficPolicy: opt(
    obj({
      mode: opt(oneOfStrings('ALLOW_ANY', 'REGISTRY_ONLY')),
      egressProxy: opt(DestinationSchema),
    }),
  ),
});

const MetadataSchema = Type.Object(
  {
    name: Str,
    namespace: opt(Str),
    labels: opt(StrMap),
    annotations: opt(StrMap),
    creationTimestamp: opt(Type.String()),
  },
  { additionalProperties: true },
);

const resource = <K extends string, S extends TSchema>(kind: K, spec: S) =>
  Type.Object(
    {
      apiVersion: Type.Union(
        NETWORKING_VERSIONS.map((v) => Type.Literal(`${NETWORKING_GROUP}/${v}`)),
      ),
      kind: Type.Literal(kind),
      metadata: MetadataSchema,
      spec,
      status: opt(Type.Unknown()),
    },
    strict,
  );

export const VirtualServiceSchema = resource('VirtualService', VirtualServiceSpecSchema);
export const DestinationRuleSchema = resource('DestinationRule', DestinationRuleSpecSchema);
export const GatewaySchema = resource('Gateway', GatewaySpecSchema);
export const ServiceEntrySchema = resource('ServiceEntry', ServiceEntrySpecSchema);
export const SidecarSchema = resource('Sidecar', SidecarSpecSchema);
export const WorkloadEntrySchema = resource('WorkloadEntry', WorkloadEntrySpecSchema);

export type VirtualService = Static<typeof VirtualServiceSchema>;
export type DestinationRule = Static<typeof DestinationRuleSchema>;
export type Gateway = Static<typeof GatewaySchema>;
export type ServiceEntry = Static<typeof ServiceEntrySchema>;
export type Sidecar = Static<typeof SidecarSchema>;
export type WorkloadEntry = Static<typeof WorkloadEntrySchema>;
export type HttpRoute = Static<typeof HttpRouteSchema>;
export type NetworkingResource =
  VirtualService | DestinationRule | Gateway | ServiceEntry | Sidecar | WorkloadEntry;
