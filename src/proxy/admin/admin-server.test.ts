// The admin root is an index of the endpoints, as Envoy's admin home page
// (`/`) and `/help` ("admin commands are:") are; an unknown path says where
// the list is. Real HTTP on an ephemeral loopback port.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { AdsClient } from '../xds-client/ads-client.js';
import type { Logger } from '../../logging/index.js';
import { createAdminServer } from './admin-server.js';

test('admin / and /help list every endpoint; unknown paths point at them', async (t) => {
  const ads = {
    versions: { listener: '' },
    snapshot: {},
    connected: false,
  } as unknown as AdsClient;
  const server = createAdminServer({ ads });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const base = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  const endpoints = ['/certs', '/config_dump', '/help', '/logging', '/ready', '/stats/prometheus'];

  const home = await fetch(`${base}/`);
  assert.equal(home.status, 200);
  assert.match(home.headers.get('content-type') ?? '', /^text\/html/);
  const page = await home.text();
  for (const e of endpoints) assert.ok(page.includes(`<a href=".${e}">${e}</a>`), e);

  const help = await fetch(`${base}/help`);
  assert.equal(help.status, 200);
  const text = await help.text();
  assert.match(text, /^admin commands are:\n {2}\/: Admin home page\n/);
  for (const e of endpoints) assert.match(text, new RegExp(`^ {2}${e}: \\S`, 'm'));

  const missing = await fetch(`${base}/nope`);
  assert.equal(missing.status, 404);
  assert.equal(
    await missing.text(),
    'not found: /nope (the admin endpoints are listed at / and /help)\n',
  );
});

test('/logging: level and logger names that are Object properties are unknown, and nothing changes', async (t) => {
  const ads = {
    versions: { listener: '' },
    snapshot: {},
    connected: false,
  } as unknown as AdsClient;
  const proxy = { level: 'info' } as unknown as Logger;
  const server = createAdminServer({ ads, loggers: { proxy } });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const base = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    const level = await fetch(`${base}/logging?level=${name}`, { method: 'POST' });
    assert.equal(level.status, 400, name);
    assert.match(await level.text(), /unknown logger level/, name);
    const logger = await fetch(`${base}/logging?${name}=debug`, { method: 'POST' });
    assert.equal(logger.status, 400, name);
    assert.match(await logger.text(), /unknown logger "/, name);
  }
  assert.equal(proxy.level, 'info');
  assert.equal((Object as unknown as { level?: unknown }).level, undefined);
  const ok = await fetch(`${base}/logging?proxy=debug`, { method: 'POST' });
  assert.equal(ok.status, 200);
  assert.equal(proxy.level, 'debug');
});
