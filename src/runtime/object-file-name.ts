/** The file name an object is stored under in the control plane's config dir. */
export function objectFileName(kind: string, namespace: string, name: string): string {
  return `${kind.toLowerCase()}.${namespace === '' ? '_cluster' : namespace}.${name}.yaml`;
}
