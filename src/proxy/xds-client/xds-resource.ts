/**
 * A decoded xDS resource as the proxy holds it (google.protobuf.Any decoded to
 * JSON-shaped objects). Its own module, so the direction folders that read
 * resources need not import the validator that imports them (no cycle).
 */
import type { ResourceKind } from '../../xds/index.js';

export type XdsResource = Record<string, unknown>;

/** The accepted resources by kind and name: what every listener reads per request. */
export type XdsSnapshot = Readonly<Record<ResourceKind, ReadonlyMap<string, XdsResource>>>;
