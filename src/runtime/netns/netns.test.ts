// Pure parts of netns isolation and capture: CIDR arithmetic, ClusterIP
// allocation, a pod's hosts file, the clean script of proxy-init.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanScript, installScript, DEFAULT_CAPTURE } from '../capture/index.js';
import { cidrHost, parseCidr } from './cidr.js';
import { assignClusterIps, podHostsFile, withClusterIps } from './service-ips.js';

test('CIDRs: hosts by index, host bits and bad input refused with the flag', () => {
  const c = parseCidr('10.233.20.0/24', '--pod-cidr');
  assert.equal(cidrHost(c, 1), '10.233.20.1');
  assert.equal(cidrHost(c, 254), '10.233.20.254');
  assert.throws(() => cidrHost(c, 256), /outside a \/24/);
  assert.throws(
    () => parseCidr('10.233.20.5/24', '--pod-cidr'),
    /--pod-cidr: .*did you mean 10\.233\.20\.0\/24/,
  );
  assert.throws(
    () => parseCidr('10.233.20.0', '--service-cidr'),
    /--service-cidr: 10\.233\.20\.0 is not an IPv4 CIDR/,
  );
});

test('ClusterIPs: deterministic in namespace/name order, manifest ones kept', () => {
  const vips = assignClusterIps(
    [
      { namespace: 'default', name: 'reviews' },
      { namespace: 'default', name: 'details' },
      { namespace: 'db', name: 'mysql', clusterIP: '10.96.0.10' },
    ],
    '10.96.0.0/16',
  );
  assert.deepEqual(
    vips.map((v) => `${v.namespace}/${v.name}=${v.clusterIP}`),
    ['db/mysql=10.96.0.10', 'default/details=10.96.0.11', 'default/reviews=10.96.0.12'],
  );
  const hosts = podHostsFile(
    { name: 'productpage-v1-0', podIP: '10.244.0.5', namespace: 'default' },
    vips,
  );
  assert.match(
    hosts,
    /^10\.96\.0\.12\treviews reviews\.default reviews\.default\.svc reviews\.default\.svc\.cluster\.local$/m,
  );
  assert.match(
    hosts,
    /^10\.96\.0\.10\tmysql\.db mysql\.db\.svc mysql\.db\.svc\.cluster\.local$/m,
    'short names only in the own namespace',
  );
  assert.match(hosts, /^10\.244\.0\.5\tproductpage-v1-0$/m);
});

test('proxy-init: a second install adds no jump, clean removes only ours', () => {
  const fresh = installScript(DEFAULT_CAPTURE, '');
  assert.match(fresh, /^-A PREROUTING -p tcp -j PALISADE_INBOUND$/m);
  const installed = `*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:PALISADE_INBOUND - [0:0]\n:PALISADE_OUTPUT - [0:0]\n-A PREROUTING -p tcp -j PALISADE_INBOUND\n-A OUTPUT -p tcp --dport 2222 -j RETURN\n-A OUTPUT -p tcp -j PALISADE_OUTPUT\nCOMMIT\n`;
  assert.doesNotMatch(installScript(DEFAULT_CAPTURE, installed), /^-A (PREROUTING|OUTPUT) /m);
  assert.equal(
    cleanScript(installed),
    '*nat\n-D PREROUTING -p tcp -j PALISADE_INBOUND\n-D OUTPUT -p tcp -j PALISADE_OUTPUT\n-F PALISADE_INBOUND\n-F PALISADE_OUTPUT\n-X PALISADE_INBOUND\n-X PALISADE_OUTPUT\nCOMMIT\n',
  );
  assert.equal(cleanScript('*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n'), undefined);
});

test('apply in netns mode: a new Service gets the next free ClusterIP, an existing one keeps its own', () => {
  const svc = (name: string, clusterIP?: string) => ({
    kind: 'Service',
    namespace: 'default',
    name,
    resource: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'default' },
      spec: { ports: [{ port: 80 }], ...(clusterIP === undefined ? {} : { clusterIP }) },
    },
  });
  const current = [svc('reviews', '10.96.0.10'), svc('details', '10.96.0.12')].map((s) => ({
    object: s.resource,
  }));
  const out = withClusterIps(
    [
      svc('reviews'),
      svc('echo'),
      svc('fixed', '10.96.0.11'),
      svc('other'),
      { ...svc('x'), kind: 'Gateway' },
    ],
    current,
    '10.96.0.0/16',
  );
  const ips = out.map((o) => (o.resource as { spec: { clusterIP?: string } }).spec.clusterIP);
  assert.deepEqual(ips, ['10.96.0.10', '10.96.0.13', '10.96.0.11', '10.96.0.14', undefined]);
  assert.throws(
    () => withClusterIps([svc('a'), svc('b')], [], '10.96.0.0/29'),
    /PAL_ERR_RUNTIME_ADDRESS_SPACE|outside/,
  );
});
