/**
 * Compiles an update into the typed config per-request code reads, before the
 * ADS client ACKs it (Envoy builds its typed config when a resource is
 * loaded, not when a request reads it). A resource that does not compile adds
 * a problem, which NACKs the whole update; the previous config keeps serving.
 */
import type { ResourceKind } from '../../xds/index.js';
import type { Endpoint } from '../outbound/load-balancer.js';
import type { ClusterConfig, TypedConfig, XdsResource } from '../xds-client/xds-resource.js';
import {
  compileListenerHcms,
  compileRouteConfig,
  type ListenerHcms,
  type RouteConfig,
} from '../outbound/route-table.js';
import { compileCaptureListener } from '../capture/capture-config.js';
import { compileDnsTable, DNS_LISTENER, EMPTY_DNS_TABLE } from '../dns/dns-table.js';
import { compileAssignment, compileCluster } from './cluster-config.js';

/** The typed config of an empty snapshot. */
export function emptyTypedConfig(): TypedConfig {
  return {
    clusters: new Map(),
    endpoints: new Map(),
    routes: new Map(),
    listeners: new Map(),
    virtualOutbound: undefined,
    dns: EMPTY_DNS_TABLE,
  };
}

/**
 * The typed config of `candidate` after an update of `kind`: that kind's typed maps rebuilt,
 * the others kept. Problems (each naming the resource) are pushed onto `problems`.
 */
export function compileTypedConfig(
  previous: TypedConfig,
  candidate: Readonly<Record<ResourceKind, ReadonlyMap<string, XdsResource>>>,
  kind: ResourceKind,
  problems: string[],
): TypedConfig {
  switch (kind) {
    case 'cluster': {
      const clusters = new Map<string, ClusterConfig>();
      for (const [name, resource] of candidate.cluster) {
        const compiled = compileCluster(name, resource);
        if (Array.isArray(compiled))
          problems.push(...compiled.map((p) => `cluster ${JSON.stringify(name)}: ${p}`));
        else clusters.set(name, compiled);
      }
      return { ...previous, clusters };
    }
    case 'endpoint': {
      const endpoints = new Map<string, readonly Endpoint[]>();
      for (const [name, resource] of candidate.endpoint)
        endpoints.set(name, compileAssignment(resource));
      return { ...previous, endpoints };
    }
    case 'route': {
      // A route configuration the response resent is rebuilt whole (as Envoy does); one the
      // update kept (the same accepted object) keeps its compiled form.
      const routes = new Map<string, RouteConfig>();
      for (const [name, resource] of candidate.route) {
        const kept = previous.routes.get(name);
        routes.set(name, kept?.source === resource ? kept : compileRouteConfig(resource));
      }
      return { ...previous, routes };
    }
    case 'listener': {
      const listeners = new Map<string, ListenerHcms>();
      for (const [name, resource] of candidate.listener)
        listeners.set(name, compileListenerHcms(resource));
      const capture = candidate.listener.get('virtualOutbound');
      const captureProblems: string[] = [];
      const virtualOutbound =
        capture === undefined ? undefined : compileCaptureListener(capture, captureProblems);
      problems.push(...captureProblems.map((p) => `listener "virtualOutbound": ${p}`));
      const dns = compileDnsTable(candidate.listener.get(DNS_LISTENER));
      return { ...previous, listeners, virtualOutbound, dns };
    }
    case 'secret':
      return previous;
  }
}
