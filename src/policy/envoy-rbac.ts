/**
 * The subset of Envoy's RBAC filter config (envoy.config.rbac.v3) Palisade
 * generates and evaluates, in the plain-object shape protobufjs decodes (proto field names)
 * (snake_case, enums as strings). The HTTP and network RBAC filters
 * (envoy.extensions.filters.{http,network}.rbac.v3.RBAC) wrap it.
 */

export type StringMatcher =
  | { readonly exact: string; readonly ignore_case?: boolean }
  | { readonly prefix: string; readonly ignore_case?: boolean }
  | { readonly suffix: string; readonly ignore_case?: boolean }
  | { readonly contains: string; readonly ignore_case?: boolean }
  | { readonly safe_regex: { readonly regex: string }; readonly ignore_case?: boolean };

export interface CidrRange {
  readonly address_prefix: string;
  /** google.protobuf.UInt32Value on the wire (`{ value }`); a bare number is accepted when reading. */
  readonly prefix_len: { readonly value: number } | number;
}

export interface MetadataMatcher {
  readonly filter: string;
  readonly path: readonly { readonly key: string }[];
  readonly value: ValueMatcher;
}

export type ValueMatcher =
  | { readonly string_match: StringMatcher }
  | { readonly list_match: { readonly one_of: ValueMatcher } }
  | { readonly present_match: boolean };

export interface HeaderMatcher {
  readonly name: string;
  readonly string_match?: StringMatcher;
  readonly present_match?: boolean;
  readonly invert_match?: boolean;
}

export type Permission =
  | { readonly any: true }
  | { readonly and_rules: { readonly rules: readonly Permission[] } }
  | { readonly or_rules: { readonly rules: readonly Permission[] } }
  | { readonly not_rule: Permission }
  | { readonly header: HeaderMatcher }
  | { readonly url_path: { readonly path: StringMatcher } }
  | { readonly destination_ip: CidrRange }
  | { readonly destination_port: number }
  /** Envoy's Int32Range, half-open: [start, end). */
  | { readonly destination_port_range: { readonly start?: number; readonly end?: number } }
  | { readonly requested_server_name: StringMatcher }
  | { readonly metadata: MetadataMatcher };

export type Principal =
  | { readonly any: true }
  | { readonly and_ids: { readonly ids: readonly Principal[] } }
  | { readonly or_ids: { readonly ids: readonly Principal[] } }
  | { readonly not_id: Principal }
  | { readonly authenticated: { readonly principal_name: StringMatcher } }
  | { readonly direct_remote_ip: CidrRange }
  | { readonly remote_ip: CidrRange }
  | { readonly header: HeaderMatcher }
  | { readonly metadata: MetadataMatcher };

export interface RbacPolicy {
  readonly permissions: readonly Permission[];
  readonly principals: readonly Principal[];
}

export interface Rbac {
  readonly action: 'ALLOW' | 'DENY' | 'LOG';
  readonly policies: Readonly<Record<string, RbacPolicy>>;
}

/** envoy.extensions.filters.http.rbac.v3.RBAC (also the network filter's rule fields). */
export interface RbacFilterConfig {
  readonly rules?: Rbac;
  readonly shadow_rules?: Rbac;
  readonly shadow_rules_stat_prefix?: string;
}
