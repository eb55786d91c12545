// A gRPC echo service for tests, with JSON messages (no .proto needed):
// unary `Echo` answers `{server, headers}` (which backend answered, and the
// request metadata it saw) and server-streaming `Count` sends `n` messages
// then ends with trailing metadata. Backends can be told to fail every other
// call with UNAVAILABLE, or every call with a given status.
import * as grpc from '@grpc/grpc-js';

export interface EchoReply {
  readonly server: string;
  readonly headers?: Record<string, string>;
  readonly i?: number;
}

const json = {
  serialize: (value: unknown): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer): unknown => JSON.parse(bytes.toString('utf8')),
};
const codec = {
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
};

export const ECHO_SERVICE: grpc.ServiceDefinition = {
  Echo: { path: '/palisade.test.Echo/Echo', requestStream: false, responseStream: false, ...codec },
  Count: {
    path: '/palisade.test.Echo/Count',
    requestStream: false,
    responseStream: true,
    ...codec,
  },
};

export type EchoClient = grpc.Client & {
  Echo(
    request: object,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, reply?: EchoReply) => void,
  ): grpc.ClientUnaryCall;
  Count(request: { n: number }, metadata: grpc.Metadata): grpc.ClientReadableStream<EchoReply>;
};

export const EchoClientConstructor = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');

export interface EchoBackend {
  readonly name: string;
  readonly port: number;
  calls: number;
  close(): Promise<void>;
}

export interface EchoBackendOptions {
  /** Fail every other call (the first included) with UNAVAILABLE. */
  readonly flaky?: boolean;
  /** Fail every call with this status. */
  readonly failWith?: grpc.status;
  readonly host?: string;
}

/** A gRPC server (plaintext HTTP/2) answering as `name`. */
export async function startEchoBackend(
  name: string,
  options: EchoBackendOptions = {},
): Promise<EchoBackend> {
  const server = new grpc.Server();
  const backend = {
    name,
    port: 0,
    calls: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => {
          resolve();
        });
      }),
  };
  server.addService(ECHO_SERVICE, {
    Echo(call: grpc.ServerUnaryCall<unknown, EchoReply>, done: grpc.sendUnaryData<EchoReply>) {
      backend.calls += 1;
      if (options.failWith !== undefined) {
        done({ code: options.failWith, details: `${name} says no` });
        return;
      }
      if (options.flaky === true && backend.calls % 2 === 1) {
        done({ code: grpc.status.UNAVAILABLE, details: `${name} is flaky` });
        return;
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(call.metadata.getMap())) headers[k] = String(v);
      done(null, { server: name, headers });
    },
    Count(call: grpc.ServerWritableStream<{ n: number }, EchoReply>) {
      backend.calls += 1;
      for (let i = 0; i < call.request.n; i += 1) call.write({ server: name, i });
      const trailer = new grpc.Metadata();
      trailer.set('x-count', String(call.request.n));
      call.end(trailer);
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      `${options.host ?? '127.0.0.1'}:0`,
      grpc.ServerCredentials.createInsecure(),
      (error, p) => {
        if (error === null) resolve(p);
        else reject(error);
      },
    );
  });
  return Object.assign(backend, { port });
}

/** One unary call: the reply, or the status code (and details) it failed with. */
export function echoCall(
  client: EchoClient,
  headers: Record<string, string> = {},
  deadlineMs = 5000,
): Promise<{
  server?: string;
  reply?: EchoReply;
  code: grpc.status;
  details?: string;
  ms: number;
}> {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
  const started = Date.now();
  return new Promise((resolve) => {
    client.Echo({}, metadata, { deadline: Date.now() + deadlineMs }, (error, reply) => {
      const ms = Date.now() - started;
      if (error !== null) resolve({ code: error.code, details: error.details, ms });
      else
        resolve({
          code: grpc.status.OK,
          ms,
          ...(reply === undefined ? {} : { server: reply.server, reply }),
        });
    });
  });
}

/** `n` unary calls, 20 at a time: how many each backend (or `status:<code>`) answered. */
export async function echoCallMany(
  client: EchoClient,
  n: number,
  headers: Record<string, string> = {},
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i += 20) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(20, n - i) }, () => echoCall(client, headers)),
    );
    for (const r of batch) {
      const key = r.server ?? `status:${String(r.code)}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}
