/** Reads security policies from manifests, validating every object; other kinds are ignored. */
import { describeObject, readManifests, ValidationError, type Manifest } from '../api/index.js';
import {
  isSecurityObject,
  validateSecurityResource,
  type AuthorizationPolicy,
  type PeerAuthentication,
  type RequestAuthentication,
} from '../api/security/index.js';
import type { SecurityPolicies } from './workload-authorizer.js';

/** Loads PeerAuthentication, RequestAuthentication and AuthorizationPolicy objects; throws one error listing every invalid object. */
export function loadSecurityPolicies(
  paths: readonly string[] | readonly Manifest[],
): SecurityPolicies {
  const manifests: readonly Manifest[] =
    typeof paths[0] === 'string' || paths.length === 0
      ? readManifests(paths as readonly string[])
      : (paths as readonly Manifest[]);
  const peer: PeerAuthentication[] = [];
  const request: RequestAuthentication[] = [];
  const authz: AuthorizationPolicy[] = [];
  const problems: { path: string; message: string }[] = [];
  for (const m of manifests) {
    if (!isSecurityObject(m.object)) continue;
    const r = validateSecurityResource(m.object);
    if (!r.ok) {
      for (const issue of r.issues)
        problems.push({
          path: `${m.file}: ${describeObject(m.object)}: ${issue.path}`,
          message: issue.message,
        });
      continue;
    }
    const v = r.value;
    if (v.kind === 'PeerAuthentication') peer.push(v);
    else if (v.kind === 'RequestAuthentication') request.push(v);
    else authz.push(v);
  }
  if (problems.length > 0) {
    throw new ValidationError(
      `invalid security policy`,
      problems.map((p) => ({ path: p.path, message: p.message })),
    );
  }
  return {
    peerAuthentications: peer,
    requestAuthentications: request,
    authorizationPolicies: authz,
  };
}
