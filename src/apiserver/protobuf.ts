/**
 * Decoding of Kubernetes' protobuf request bodies. kubectl's typed clients
 * (`auth can-i`, `auth whoami`, `create token`, `create namespace|configmap|
 * secret|serviceaccount|role|rolebinding|clusterrole|clusterrolebinding`)
 * send `application/vnd.kubernetes.protobuf` and do not fall back to JSON, so
 * the server reads that encoding for the kinds those commands send; responses
 * are JSON (their Accept lists it). Kubernetes: "API Concepts — Protobuf
 * encoding": the 4-byte prefix `k8s\0`, then a runtime.Unknown whose `raw`
 * holds the object. Field numbers are those of the k8s.io/api
 * `generated.proto` files (the wire contract).
 */
import protobuf from 'protobufjs';
import { ApiError } from './status.js';

const PROTO = `
syntax = "proto2";
package k8s;
message TypeMeta { optional string apiVersion = 1; optional string kind = 2; }
message Unknown { optional TypeMeta typeMeta = 1; optional bytes raw = 2; optional string contentEncoding = 3; optional string contentType = 4; }
message Time { optional int64 seconds = 1; optional int32 nanos = 2; }
message OwnerReference { optional string kind = 1; optional string name = 3; optional string uid = 4; optional string apiVersion = 5; optional bool controller = 6; optional bool blockOwnerDeletion = 7; }
message ObjectMeta {
  optional string name = 1; optional string generateName = 2; optional string namespace = 3; optional string selfLink = 4;
  optional string uid = 5; optional string resourceVersion = 6; optional int64 generation = 7;
  optional Time creationTimestamp = 8; optional Time deletionTimestamp = 9; optional int64 deletionGracePeriodSeconds = 10;
  map<string, string> labels = 11; map<string, string> annotations = 12; repeated OwnerReference ownerReferences = 13;
  repeated string finalizers = 14;
}
message LabelSelectorRequirement { optional string key = 1; optional string operator = 2; repeated string values = 3; }
message LabelSelector { map<string, string> matchLabels = 1; repeated LabelSelectorRequirement matchExpressions = 2; }
message NamespaceSpec { repeated string finalizers = 1; }
message NamespaceStatus { optional string phase = 1; }
message Namespace { optional ObjectMeta metadata = 1; optional NamespaceSpec spec = 2; optional NamespaceStatus status = 3; }
message ConfigMap { optional ObjectMeta metadata = 1; map<string, string> data = 2; map<string, bytes> binaryData = 3; optional bool immutable = 4; }
message Secret { optional ObjectMeta metadata = 1; map<string, bytes> data = 2; optional string type = 3; map<string, string> stringData = 4; optional bool immutable = 5; }
message ObjectReference { optional string kind = 1; optional string namespace = 2; optional string name = 3; optional string uid = 4; optional string apiVersion = 5; optional string resourceVersion = 6; optional string fieldPath = 7; }
message LocalObjectReference { optional string name = 1; }
message ServiceAccount { optional ObjectMeta metadata = 1; repeated ObjectReference secrets = 2; repeated LocalObjectReference imagePullSecrets = 3; optional bool automountServiceAccountToken = 4; }
message PolicyRule { repeated string verbs = 1; repeated string apiGroups = 2; repeated string resources = 3; repeated string resourceNames = 4; repeated string nonResourceURLs = 5; }
message AggregationRule { repeated LabelSelector clusterRoleSelectors = 1; }
message Role { optional ObjectMeta metadata = 1; repeated PolicyRule rules = 2; }
message ClusterRole { optional ObjectMeta metadata = 1; repeated PolicyRule rules = 2; optional AggregationRule aggregationRule = 3; }
message Subject { optional string kind = 1; optional string apiGroup = 2; optional string name = 3; optional string namespace = 4; }
message RoleRef { optional string apiGroup = 1; optional string kind = 2; optional string name = 3; }
message RoleBinding { optional ObjectMeta metadata = 1; repeated Subject subjects = 2; optional RoleRef roleRef = 3; }
message ResourceAttributes { optional string namespace = 1; optional string verb = 2; optional string group = 3; optional string version = 4; optional string resource = 5; optional string subresource = 6; optional string name = 7; }
message NonResourceAttributes { optional string path = 1; optional string verb = 2; }
message ExtraValue { repeated string items = 1; }
message SubjectAccessReviewSpec { optional ResourceAttributes resourceAttributes = 1; optional NonResourceAttributes nonResourceAttributes = 2; optional string user = 3; repeated string groups = 4; map<string, ExtraValue> extra = 5; optional string uid = 6; }
message SelfSubjectAccessReviewSpec { optional ResourceAttributes resourceAttributes = 1; optional NonResourceAttributes nonResourceAttributes = 2; }
message SelfSubjectAccessReview { optional ObjectMeta metadata = 1; optional SelfSubjectAccessReviewSpec spec = 2; }
message SubjectAccessReview { optional ObjectMeta metadata = 1; optional SubjectAccessReviewSpec spec = 2; }
message SelfSubjectRulesReviewSpec { optional string namespace = 1; }
message SelfSubjectRulesReview { optional ObjectMeta metadata = 1; optional SelfSubjectRulesReviewSpec spec = 2; }
message SelfSubjectReview { optional ObjectMeta metadata = 1; }
message BoundObjectReference { optional string kind = 1; optional string apiVersion = 2; optional string name = 3; optional string uid = 4; }
message TokenRequestSpec { repeated string audiences = 1; optional BoundObjectReference boundObjectRef = 3; optional int64 expirationSeconds = 4; }
message TokenRequest { optional ObjectMeta metadata = 1; optional TokenRequestSpec spec = 2; }
message TokenReviewSpec { optional string token = 1; repeated string audiences = 2; }
message TokenReview { optional ObjectMeta metadata = 1; optional TokenReviewSpec spec = 2; }
`;

const root = protobuf.parse(PROTO, { keepCase: true }).root;
const unknownType = root.lookupType('k8s.Unknown');

/** kind → message type (the kinds kubectl's typed clients send). */
const KINDS: Readonly<Record<string, string>> = {
  Namespace: 'Namespace',
  ConfigMap: 'ConfigMap',
  Secret: 'Secret',
  ServiceAccount: 'ServiceAccount',
  Role: 'Role',
  ClusterRole: 'ClusterRole',
  RoleBinding: 'RoleBinding',
  ClusterRoleBinding: 'RoleBinding',
  SelfSubjectAccessReview: 'SelfSubjectAccessReview',
  SubjectAccessReview: 'SubjectAccessReview',
  LocalSubjectAccessReview: 'SubjectAccessReview',
  SelfSubjectRulesReview: 'SelfSubjectRulesReview',
  SelfSubjectReview: 'SelfSubjectReview',
  TokenRequest: 'TokenRequest',
  TokenReview: 'TokenReview',
};

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** Time messages become RFC 3339 strings, as in JSON. */
function fixTimes(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(fixTimes);
  if (typeof v !== 'object' || v === null) return v;
  const o = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, e] of Object.entries(o)) {
    if (/Timestamp$/.test(k) && typeof e === 'object' && e !== null && 'seconds' in e) {
      const secs = Number(e.seconds);
      out[k] = `${new Date(secs * 1000).toISOString().slice(0, 19)}Z`;
    } else out[k] = fixTimes(e);
  }
  return out;
}

/** Decodes a `k8s\0`-prefixed protobuf body to the object's JSON form. */
export function decodeKubernetesProtobuf(body: Buffer): Record<string, unknown> {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC))
    throw new ApiError('BadRequest', 'the protobuf body lacks the k8s\\0 prefix');
  let apiVersion: string;
  let kind: string;
  let raw: Uint8Array;
  try {
    const unknown = unknownType.toObject(unknownType.decode(body.subarray(4)), {
      defaults: false,
    }) as {
      typeMeta?: { apiVersion?: string; kind?: string };
      raw?: Uint8Array;
    };
    apiVersion = unknown.typeMeta?.apiVersion ?? '';
    kind = unknown.typeMeta?.kind ?? '';
    raw = unknown.raw ?? new Uint8Array();
  } catch {
    throw new ApiError('BadRequest', 'the protobuf body could not be decoded');
  }
  const typeName = Object.hasOwn(KINDS, kind) ? KINDS[kind] : undefined;
  if (typeName === undefined)
    throw new ApiError(
      'UnsupportedMediaType',
      `protobuf is not supported for ${apiVersion}/${kind}; send application/json`,
    );
  const type = root.lookupType(`k8s.${typeName}`);
  let decoded: Record<string, unknown>;
  try {
    decoded = type.toObject(type.decode(raw), {
      longs: Number,
      bytes: String,
      defaults: false,
      arrays: false,
    });
  } catch {
    throw new ApiError('BadRequest', `the protobuf ${kind} could not be decoded`);
  }
  return { apiVersion, kind, ...(fixTimes(decoded) as Record<string, unknown>) };
}
