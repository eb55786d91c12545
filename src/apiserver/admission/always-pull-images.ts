/**
 * AlwaysPullImages (opt-in through `--enable-admission-plugins`): every
 * container, init container and ephemeral container of a pod gets
 * `imagePullPolicy: Always`, so a pod cannot use an image another tenant
 * pulled onto the node without the credentials to pull it itself.
 *
 * Kubernetes: "Admission Controllers" › AlwaysPullImages.
 */
import type { KubeObject } from '../store/types.js';

function rec(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}

export function alwaysPullImages(pod: KubeObject): KubeObject {
  const spec = { ...rec(pod.spec) };
  for (const field of ['containers', 'initContainers', 'ephemeralContainers']) {
    const list = spec[field];
    if (Array.isArray(list))
      spec[field] = list.map((c) => ({ ...rec(c), imagePullPolicy: 'Always' }));
  }
  return { ...pod, spec };
}
