// A raw ADS stream for attack tests: the requests a hostile client with a
// (stolen) service-account token would send, and the responses it gets.
import * as grpc from '@grpc/grpc-js';
import { objectToStruct } from '../../src/xds/index.js';
import { adsClientConstructor } from '../../src/xds/protos.js';

export interface RawResponse {
  readonly version_info: string;
  readonly type_url: string;
  readonly nonce: string;
}

export interface RawAdsStream {
  readonly responses: RawResponse[];
  /** The stream's final status, once it ended. */
  status(): grpc.StatusObject | undefined;
  /** Sends a DiscoveryRequest for `typeUrl` (wildcard when `names` is empty). */
  send(typeUrl: string, names?: readonly string[]): void;
  close(): void;
}

/** Opens an ADS stream to `address` as `node`, with `token` as the bearer. */
export function openRawAdsStream(
  address: string,
  credentials: grpc.ChannelCredentials,
  token: string | undefined,
  node: { readonly id: string; readonly metadata: Readonly<Record<string, unknown>> },
): RawAdsStream {
  const Client = adsClientConstructor();
  const client = new Client(address, credentials);
  const metadata = new grpc.Metadata();
  if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
  const call = (
    client as unknown as {
      StreamAggregatedResources(m: grpc.Metadata): grpc.ClientDuplexStream<object, RawResponse>;
    }
  ).StreamAggregatedResources(metadata);
  const responses: RawResponse[] = [];
  let status: grpc.StatusObject | undefined;
  call.on('data', (r: RawResponse) => responses.push(r));
  call.on('status', (s: grpc.StatusObject) => {
    status = s;
  });
  call.on('error', () => undefined);
  return {
    responses,
    status: () => status,
    send(typeUrl, names = []) {
      call.write({
        node: { id: node.id, metadata: objectToStruct({ ...node.metadata }) },
        type_url: typeUrl,
        resource_names: [...names],
      });
    },
    close() {
      call.cancel();
      client.close();
    },
  };
}
