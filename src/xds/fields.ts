/**
 * Field allow-lists tied to the shared xDS types: the proxy NACKs any field
 * outside its lists, and these helpers make the compiler check each list
 * against the type both ends build (envoy-cluster.ts, envoy-route.ts,
 * envoy-listener.ts). A name that is not a field of the type does not
 * compile; `allFieldsOf` also refuses a list that leaves out a field of the
 * type — so adding a field to a type without deciding whether the proxy
 * accepts it, or accepting a field the type does not have, is a build error.
 */

/** Keys of T (string keys only) that `keys` does not name. */
type Missing<T, K extends readonly unknown[]> = Exclude<keyof T & string, K[number]>;

/** Some of T's fields (a per-listener-kind subset, for instance); each must be one of T's. */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- T is the type the names are checked against, given explicitly
export function fieldsOf<T>(): <const K extends readonly (keyof T & string)[]>(
  ...keys: K
) => ReadonlySet<K[number]> {
  return (...keys) => new Set(keys);
}

/** Every one of T's fields: naming one T does not have, or leaving one out, does not compile. */
export function allFieldsOf<T>(): <const K extends readonly (keyof T & string)[]>(
  ...keys: [Missing<T, K>] extends [never] ? K : readonly [{ missing: Missing<T, K> }]
) => ReadonlySet<string> {
  return (...keys) => new Set<string>(keys as readonly string[]);
}
