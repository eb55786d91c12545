/**
 * Loopback address allocation for the local runtime (`palisade up`).
 *
 * Each workload instance gets its own 127.x.y.z address, like a pod IP, so
 * every instance can listen on its service port (9080) and its sidecar on the
 * well-known ports (15001, 15006…) without clashing. Linux routes all of
 * 127.0.0.0/8 to `lo` (RFC 1122 §3.2.1.3 reserves the block for loopback),
 * so no interface setup is needed there.
 *
 * Layout: `127.<block>.<workload index + 1>.<replica index + 1>`; the block
 * (default 10) keeps Palisade clear of the addresses other tools use
 * (127.0.0.1, 127.0.1.1, 127.0.0.53).
 */
import { createServer } from 'node:net';
import { PalisadeError } from '../errors/index.js';

/** Options of {@link allocateAddresses}. */
export interface AddressAllocationOptions {
  /** Second octet of every address (1–254). Default 10. */
  readonly block?: number;
}

/** A workload to place: its name and how many replicas it runs. */
export interface WorkloadSlots {
  readonly name: string;
  readonly replicas: number;
}

/** One placed instance: `<workload>-<replica>` on its own loopback address. */
export interface InstanceAddress {
  readonly workload: string;
  readonly replica: number;
  readonly instance: string;
  readonly address: string;
}

const MAX_INDEX = 254;

/**
 * Gives every replica of every workload a distinct loopback address.
 * Workloads are placed in name order so the same mesh always gets the same
 * addresses. Throws `PAL_ERR_RUNTIME_ADDRESS_SPACE` when a mesh has more
 * than 254 workloads or a workload more than 254 replicas.
 */
export function allocateAddresses(
  workloads: readonly WorkloadSlots[],
  options: AddressAllocationOptions = {},
): InstanceAddress[] {
  const block = options.block ?? 10;
  if (!Number.isInteger(block) || block < 1 || block > MAX_INDEX) {
    throw new PalisadeError(
      'PAL_ERR_RUNTIME_ADDRESS_SPACE',
      `address block ${String(block)} is not in 1..254`,
    );
  }
  const sorted = [...workloads].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (sorted.length > MAX_INDEX) {
    throw new PalisadeError(
      'PAL_ERR_RUNTIME_ADDRESS_SPACE',
      `${String(sorted.length)} workloads do not fit in 127.${String(block)}.0.0/16 (at most 254)`,
    );
  }
  const out: InstanceAddress[] = [];
  const seen = new Set<string>();
  sorted.forEach((w, wi) => {
    if (seen.has(w.name)) {
      throw new PalisadeError(
        'PAL_ERR_RUNTIME_ADDRESS_SPACE',
        `workload ${w.name} is listed twice`,
      );
    }
    seen.add(w.name);
    if (!Number.isInteger(w.replicas) || w.replicas < 0 || w.replicas > MAX_INDEX) {
      throw new PalisadeError(
        'PAL_ERR_RUNTIME_ADDRESS_SPACE',
        `workload ${w.name}: replicas ${String(w.replicas)} is not in 0..254`,
      );
    }
    for (let r = 0; r < w.replicas; r++) {
      out.push({
        workload: w.name,
        replica: r,
        instance: `${w.name}-${String(r)}`,
        address: `127.${String(block)}.${String(wi + 1)}.${String(r + 1)}`,
      });
    }
  });
  return out;
}

/**
 * Checks that `host:port` can be bound, naming the process that wanted it
 * when it cannot: throws `PAL_ERR_RUNTIME_PORT_TAKEN` ("port 9080 on
 * 127.10.1.1, wanted by details-v1-0, is already in use").
 */
export async function assertPortFree(host: string, port: number, wantedBy: string): Promise<void> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (cause: NodeJS.ErrnoException) => {
      const taken = cause.code === 'EADDRINUSE';
      reject(
        new PalisadeError(
          taken ? 'PAL_ERR_RUNTIME_PORT_TAKEN' : 'PAL_ERR_RUNTIME_ADDRESS_SPACE',
          taken
            ? `port ${String(port)} on ${host}, wanted by ${wantedBy}, is already in use`
            : `cannot bind ${host}:${String(port)} for ${wantedBy}: ${cause.message}`,
          { cause },
        ),
      );
    });
    server.listen({ host, port, exclusive: true }, () => {
      server.close(() => {
        resolve();
      });
    });
  });
}
