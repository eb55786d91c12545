/**
 * `palisade inject webhook` — the sidecar injector as a mutating admission
 * webhook (AdmissionReview v1 over HTTPS on /inject), for `palisade
 * apiserver` or any kube-apiserver (docs/apiserver.md, "Sidecar injection").
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { PalisadeError } from '../../errors/index.js';
import { startInjectorWebhook } from '../../inject/index.js';
import { parseCommandArgs, requireOption } from '../args.js';
import type { Command } from '../command.js';

const USAGE = `Usage: palisade inject webhook --tls-cert FILE --tls-key FILE [--listen 127.0.0.1:9443]
       [--image IMAGE] [--discovery-address HOST:PORT] [--ca-address URL] [--proxy-uid 1337]

Serves the sidecar injector as a mutating admission webhook: POST /inject takes an
admission.k8s.io/v1 AdmissionReview and answers a JSONPatch adding the istio-init
container (palisade proxy-init) and the istio-proxy sidecar (palisade proxy), as
Istio's injector does. Register it with a MutatingWebhookConfiguration whose
namespaceSelector matches istio-injection=enabled; a pod labelled or annotated
sidecar.istio.io/inject=false is left alone. Prints
"Injector ready: https://HOST:PORT/inject" once it serves; stops on SIGINT/SIGTERM.

Options:
  --tls-cert FILE            PEM serving certificate (the webhook's caBundle must verify it)
  --tls-key FILE             PEM key of the certificate
  --listen HOST:PORT         address to serve on (default 127.0.0.1:9443; port 0 picks one)
  --image IMAGE              image of the injected containers (default palisade/palisade:latest)
  --discovery-address ADDR   control plane xDS address the proxy dials
                             (default palisade-control.palisade-system.svc:15012)
  --ca-address URL           CA CSR service the proxy gets its SVID from (default: none)
  --proxy-uid UID            the proxy's UID, excluded from redirection (default 1337)
`;

function read(flag: string, cwd: string, file: string): string {
  try {
    return readFileSync(resolve(cwd, file), 'utf8');
  } catch (cause) {
    throw new PalisadeError('PAL_ERR_FILE_READ', `${flag} ${file}: cannot read`, { cause });
  }
}

export const injectWebhookCommand: Command = {
  path: ['inject', 'webhook'],
  summary: 'Serve sidecar injection as a mutating admission webhook (AdmissionReview v1)',
  usage: USAGE,
  run: async (args, io) => {
    const { values } = parseCommandArgs(
      args,
      {
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        listen: { type: 'string' },
        image: { type: 'string' },
        'discovery-address': { type: 'string' },
        'ca-address': { type: 'string' },
        'proxy-uid': { type: 'string' },
      },
      false,
    );
    const listen = values.listen ?? '127.0.0.1:9443';
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
    const port = Number(m?.[3]);
    if (m === null || port > 65535)
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        `--listen ${JSON.stringify(listen)}: expected HOST:PORT`,
      );
    const uid = Number(values['proxy-uid'] ?? '1337');
    if (!Number.isInteger(uid) || uid < 1 || uid > 2 ** 31 - 1)
      throw new PalisadeError(
        'PAL_ERR_USAGE',
        `--proxy-uid ${String(values['proxy-uid'])}: not a UID`,
      );
    const caAddress = values['ca-address'];
    const server = await startInjectorWebhook({
      host: m[1] ?? m[2] ?? '127.0.0.1',
      port,
      certPem: read('--tls-cert', io.cwd, requireOption(values['tls-cert'], '--tls-cert')),
      keyPem: read('--tls-key', io.cwd, requireOption(values['tls-key'], '--tls-key')),
      image: values.image ?? 'palisade/palisade:latest',
      discoveryAddress: values['discovery-address'] ?? 'palisade-control.palisade-system.svc:15012',
      ...(caAddress === undefined ? {} : { caAddress }),
      proxyUid: uid,
    });
    io.stdout(`Injector ready: ${server.url}\n`);
    await new Promise<void>((done) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        done();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await server.close();
    return 0;
  },
};
