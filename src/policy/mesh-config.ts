/**
 * The part of Istio's MeshConfig (istio.io/latest/docs/reference/config/istio.mesh.v1alpha1/)
 * that decides security policy: `trustDomain`, `trustDomainAliases`,
 * `rootNamespace`, `defaultConfig.gatewayTopology.numTrustedProxies` and
 * `pathNormalization.normalization` (the path that routing, policy and the app see).
 *
 * Accepted shapes, as users hold them: the MeshConfig object itself, the
 * `istio` ConfigMap (`data.mesh` holds MeshConfig as YAML), or an
 * IstioOperator (`spec.meshConfig`). Other MeshConfig fields are not about
 * policy and are ignored; a policy field of the wrong type is an error naming
 * the file and the field.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { PalisadeError } from '../errors/index.js';
import { parseManifests, ValidationError, type ValidationIssue } from '../api/index.js';
import { PATH_NORMALIZATIONS, type PathNormalization } from './path-normalization.js';

/** The policy-relevant MeshConfig fields, defaulted as Istio does. */
export interface PolicyMeshConfig {
  /** Undefined when the file does not set it (Istio's default is `cluster.local`). */
  readonly trustDomain?: string;
  readonly trustDomainAliases: readonly string[];
  /** Istio's default root namespace is `istio-system`. */
  readonly rootNamespace?: string;
  /** `defaultConfig.gatewayTopology.numTrustedProxies`: gateways' xff_num_trusted_hops. */
  readonly numTrustedProxies?: number;
  /**
   * `pathNormalization.normalization`; undefined when the file does not set it
   * (Istio's default, `DEFAULT`, is BASE). `DEFAULT` is read as BASE.
   */
  readonly pathNormalization?: PathNormalization;
}

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The MeshConfig object inside one of the accepted shapes, with the path it was found at. */
function meshObject(doc: unknown, file: string): { mesh: unknown; at: string } {
  if (!isObj(doc)) return { mesh: doc, at: '' };
  if (doc['kind'] === 'ConfigMap') {
    const data = isObj(doc['data']) ? doc['data'] : {};
    const text = data['mesh'];
    if (typeof text !== 'string')
      throw new ValidationError(`${file}: ConfigMap`, [
        { path: 'data.mesh', message: 'must hold the MeshConfig as a YAML string' },
      ]);
    try {
      return { mesh: parse(text) as unknown, at: 'data.mesh.' };
    } catch (cause) {
      throw new ValidationError(`${file}: ConfigMap`, [
        {
          path: 'data.mesh',
          message: `not valid YAML: ${cause instanceof Error ? cause.message : String(cause)}`,
        },
      ]);
    }
  }
  if (doc['kind'] === 'IstioOperator') {
    const spec = isObj(doc['spec']) ? doc['spec'] : {};
    return { mesh: spec['meshConfig'] ?? {}, at: 'spec.meshConfig.' };
  }
  return { mesh: doc, at: '' };
}

/** Reads the policy part of a MeshConfig from the documents of one file. */
export function parsePolicyMeshConfig(text: string, file: string): PolicyMeshConfig {
  const docs = parseManifests(text, file);
  if (docs.length !== 1)
    throw new ValidationError(file, [
      { path: '', message: `must hold one MeshConfig document, found ${String(docs.length)}` },
    ]);
  const { mesh, at } = meshObject(docs[0]?.object, file);
  const issues: ValidationIssue[] = [];
  const m = isObj(mesh) ? mesh : {};
  if (!isObj(mesh) && mesh !== null && mesh !== undefined)
    issues.push({ path: at || '.', message: 'MeshConfig must be a mapping' });
  const str = (key: string): string | undefined => {
    const v = m[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '') {
      issues.push({ path: `${at}${key}`, message: 'must be a non-empty string' });
      return undefined;
    }
    return v;
  };
  const trustDomain = str('trustDomain');
  const rootNamespace = str('rootNamespace');
  const aliasesRaw = m['trustDomainAliases'] ?? [];
  let trustDomainAliases: string[] = [];
  if (!Array.isArray(aliasesRaw) || aliasesRaw.some((a) => typeof a !== 'string' || a === ''))
    issues.push({
      path: `${at}trustDomainAliases`,
      message: 'must be a list of non-empty strings',
    });
  else trustDomainAliases = aliasesRaw as string[];
  let numTrustedProxies: number | undefined;
  const defaultConfig = m['defaultConfig'];
  if (defaultConfig !== undefined) {
    const topology = isObj(defaultConfig) ? defaultConfig['gatewayTopology'] : undefined;
    const n = isObj(topology) ? topology['numTrustedProxies'] : undefined;
    if (n !== undefined) {
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0)
        issues.push({
          path: `${at}defaultConfig.gatewayTopology.numTrustedProxies`,
          message: 'must be a non-negative integer',
        });
      else numTrustedProxies = n;
    }
  }
  let pathNormalization: PathNormalization | undefined;
  const pn = m['pathNormalization'];
  if (pn !== undefined && pn !== null) {
    const level = isObj(pn) ? pn['normalization'] : pn;
    if (!isObj(pn)) issues.push({ path: `${at}pathNormalization`, message: 'must be a mapping' });
    else if (level === undefined || level === 'DEFAULT') pathNormalization = 'BASE';
    else if (
      typeof level === 'string' &&
      (PATH_NORMALIZATIONS as readonly string[]).includes(level)
    )
      pathNormalization = level as PathNormalization;
    else
      issues.push({
        path: `${at}pathNormalization.normalization`,
        message: `must be one of DEFAULT, ${PATH_NORMALIZATIONS.join(', ')}`,
      });
  }
  if (issues.length > 0) throw new ValidationError(`${file}: invalid MeshConfig`, issues);
  return {
    ...(trustDomain === undefined ? {} : { trustDomain }),
    trustDomainAliases,
    ...(rootNamespace === undefined ? {} : { rootNamespace }),
    ...(numTrustedProxies === undefined ? {} : { numTrustedProxies }),
    ...(pathNormalization === undefined ? {} : { pathNormalization }),
  };
}

/** Reads {@link parsePolicyMeshConfig} from a file. */
export function readPolicyMeshConfig(path: string): PolicyMeshConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new PalisadeError('PAL_ERR_FILE_READ', `${path}: cannot read`);
  }
  return parsePolicyMeshConfig(text, path);
}
