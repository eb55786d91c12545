/**
 * A minimal ADS server for proxy integration tests: holds one state of the
 * world per type URL, sends it to every stream (current and future), and
 * records every request (ACKs, NACKs, subscriptions) for assertions.
 */
import * as grpc from '@grpc/grpc-js';
import { adsServiceDefinition } from '../../src/xds/index.js';

export interface AdsRequest {
  version_info?: string;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

export interface TestAdsServer {
  readonly port: number;
  readonly requests: AdsRequest[];
  set(typeUrl: string, version: string, resources: object[]): void;
  stop(): void;
}

/** Starts the server on 127.0.0.1:`port` (0 = any free port). */
export async function startTestAdsServer(port = 0): Promise<TestAdsServer> {
  const server = new grpc.Server();
  const requests: AdsRequest[] = [];
  const state = new Map<string, { version: string; resources: object[] }>();
  const calls = new Set<grpc.ServerDuplexStream<AdsRequest, object>>();
  let nonce = 0;
  const sendTo = (call: grpc.ServerDuplexStream<AdsRequest, object>, typeUrl: string): void => {
    const entry = state.get(typeUrl);
    if (entry === undefined) return;
    nonce += 1;
    call.write({
      version_info: entry.version,
      type_url: typeUrl,
      nonce: `n${String(nonce)}`,
      resources: entry.resources,
    });
  };
  server.addService(adsServiceDefinition(), {
    StreamAggregatedResources(call: grpc.ServerDuplexStream<AdsRequest, object>) {
      calls.add(call);
      const sent = new Set<string>();
      call.on('data', (request: AdsRequest) => {
        requests.push(request);
        const typeUrl = request.type_url ?? '';
        if (!sent.has(typeUrl)) {
          sent.add(typeUrl);
          sendTo(call, typeUrl);
        }
      });
      call.on('end', () => {
        calls.delete(call);
        call.end();
      });
      call.on('error', () => calls.delete(call));
    },
  });
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      `127.0.0.1:${String(port)}`,
      grpc.ServerCredentials.createInsecure(),
      (error, p) => {
        if (error) reject(error);
        else resolve(p);
      },
    );
  });
  return {
    port: bound,
    requests,
    set(typeUrl, version, resources) {
      state.set(typeUrl, { version, resources });
      for (const call of calls) sendTo(call, typeUrl);
    },
    stop() {
      server.forceShutdown();
    },
  };
}
