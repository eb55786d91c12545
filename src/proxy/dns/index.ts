/**
 * The sidecar's DNS proxy (Istio's DNS proxying) for captured pods: a name
 * table from the control plane's `dns` listener, served on UDP and TCP.
 */
export {
  createDnsProxy,
  resolvConfNameservers,
  type DnsProxy,
  type DnsProxyOptions,
} from './dns-server.js';
export {
  canonicalName,
  compileDnsTable,
  DNS_FILTER,
  DNS_LISTENER,
  type DnsEntry,
  type DnsTable,
} from './dns-table.js';
export { dnsListenerProblems } from './dns-validation.js';
