/**
 * The one interface the control plane reads its desired state through. Two
 * implementations: a watched directory of YAML (`--config-dir`,
 * config-dir-source.ts) and the Kubernetes API (`--kubeconfig`,
 * api-source.ts: informers on a Palisade API server or a real
 * kube-apiserver). Both feed the same validation (`validateManifests`): a
 * change that fails is rejected whole and reported in `problems`, and the last
 * good snapshot keeps serving.
 */
import type { ConfigProblem, ConfigSnapshot } from './config-snapshot.js';

export interface ConfigSource {
  /** Where the config comes from (a directory or the API server's URL), for logs and the CLI. */
  readonly origin: string;
  /** The last accepted snapshot. */
  readonly current: ConfigSnapshot;
  /** Problems of the last rejected change (empty after a good one). */
  readonly problems: readonly ConfigProblem[];
  close(): void;
}
