/** Public surface of the shared xDS library: protos, type URLs, service definitions. */
export {
  adsClientConstructor,
  adsServiceDefinition,
  enumNumber,
  EXTENSION_TYPE_URLS,
  loadXdsProtos,
  PROTO_DIR,
  PROTO_LOADER_OPTIONS,
  TYPE_URLS,
  type ResourceKind,
} from './protos.js';
export { objectToStruct, structToObject } from './struct.js';
export { list, num, rec, str } from './decoded.js';
