/** Public surface of the API layer: validation conventions and manifest reading. */
export {
  createValidator,
  formatIssue,
  joinPath,
  pointerToPath,
  ValidationError,
  type ValidationIssue,
  type ValidationResult,
  type Validator,
} from './validation.js';
export {
  describeObject,
  listManifestFiles,
  objectHeader,
  parseManifests,
  readManifests,
  type Manifest,
  type ObjectHeader,
} from './manifests.js';
export {
  validateMeshObject,
  type KubernetesObject,
  type MeshObjectResult,
  type MeshResource,
} from './mesh-objects.js';
export {
  asManifestObject,
  basePath,
  WATCHED_KINDS,
  type ApiMetadata,
  type WatchedKind,
} from './watched-kinds.js';
