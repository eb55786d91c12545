/**
 * Preloaded into Node apps by `palisade up` in loopback mode (NODE_OPTIONS
 * `--import`): makes the global `fetch` honour HTTP_PROXY/NO_PROXY, as curl
 * does, so an app written for transparent capture (plain
 * `fetch('http://details:9080/…')`) runs unchanged when there is no capture
 * and its sidecar is an explicit proxy. Node's own fetch ignores the proxy
 * variables; undici's EnvHttpProxyAgent reads them, and setGlobalDispatcher
 * installs it under the symbol Node's bundled fetch reads
 * (Symbol.for('undici.globalDispatcher.1')).
 *
 * proxyTunnel: false sends absolute-form requests (`GET http://details:9080/…`)
 * instead of CONNECT tunnels, so the sidecar sees and routes each request.
 * In netns mode nothing is preloaded: capture makes the sidecar transparent.
 */
import { EnvHttpProxyAgent, setGlobalDispatcher } from 'undici';

if ((process.env['HTTP_PROXY'] ?? process.env['http_proxy'] ?? '') !== '')
  setGlobalDispatcher(new EnvHttpProxyAgent({ proxyTunnel: false }));
