/**
 * An HttpConnectionManager as the outbound and gateway stacks read it per
 * request, compiled when its listener (or gateway chain) is accepted: the RDS
 * route configuration it names, its request-head policy, which HTTP filters
 * it runs (CORS, fault), its local rate limit filter config and its upgrade
 * types. Nothing per request reads the resource itself (the gateway's
 * RBAC/JWT filters are compiled beside it, src/proxy/gateway/gateway-chains.ts).
 */
import type { HttpConnectionManager } from '../../xds/index.js';
import { hcmRateLimit, type RateLimitConfig } from '../local-rate-limit.js';
import {
  compileHcmUpgrades,
  compileRequestHeadPolicy,
  type RequestHeadPolicy,
} from '../request-head.js';

export interface HcmConfig {
  /** `rds.route_config_name`, or undefined (no RDS: nothing routes). */
  readonly routeConfigName: string | undefined;
  readonly requestHead: RequestHeadPolicy;
  /** The HCM runs envoy.filters.http.cors (a route's CORS policy applies). */
  readonly cors: boolean;
  /** The HCM runs envoy.filters.http.fault (a route's fault config applies). */
  readonly fault: boolean;
  /** The local rate limit filter's config, when the HCM runs it (keys its token buckets). */
  readonly rateLimit: RateLimitConfig | undefined;
  /** `upgrade_configs`: the enabled upgrade types, or undefined (websocket only). */
  readonly upgrades: ReadonlySet<string> | undefined;
}

/** Compiles an accepted HCM's typed_config. */
export function compileHcm(hcm: HttpConnectionManager): HcmConfig {
  const filters = hcm.http_filters ?? [];
  return {
    routeConfigName: hcm.rds?.route_config_name,
    requestHead: compileRequestHeadPolicy(hcm),
    cors: filters.some((f) => f.name === 'envoy.filters.http.cors'),
    fault: filters.some((f) => f.name === 'envoy.filters.http.fault'),
    rateLimit: hcmRateLimit(hcm),
    upgrades: compileHcmUpgrades(hcm.upgrade_configs),
  };
}
