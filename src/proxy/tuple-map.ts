/**
 * A Map keyed by a tuple of a fixed length, one nested Map per position:
 * each part is compared as a Map key is (strings by value, objects by
 * identity, numbers and booleans as themselves), and no key string is built
 * and hashed per lookup. The per-request lookups of the proxy (label sets,
 * upstream pools) use it: a key string concatenated from a request's parts
 * was a new string to flatten and hash on every request.
 */
export class TupleMap<V> {
  readonly #depth: number;
  #root = new Map<unknown, unknown>();
  #size = 0;

  /** `depth`: the number of parts of every key. */
  constructor(depth: number) {
    if (!Number.isInteger(depth) || depth < 1)
      throw new RangeError(`TupleMap depth ${String(depth)}`);
    this.#depth = depth;
  }

  /** Number of values held. */
  get size(): number {
    return this.#size;
  }

  get(parts: readonly unknown[]): V | undefined {
    this.#check(parts);
    let level: Map<unknown, unknown> | undefined = this.#root;
    const last = this.#depth - 1;
    for (let i = 0; i < last && level !== undefined; i += 1)
      level = level.get(parts[i]) as Map<unknown, unknown> | undefined;
    return level?.get(parts[last]) as V | undefined;
  }

  set(parts: readonly unknown[], value: V): void {
    this.#check(parts);
    let level = this.#root;
    const last = this.#depth - 1;
    for (let i = 0; i < last; i += 1) {
      let next = level.get(parts[i]) as Map<unknown, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(parts[i], next);
      }
      level = next;
    }
    if (!level.has(parts[last])) this.#size += 1;
    level.set(parts[last], value);
  }

  /** Every value, in insertion order per level. */
  *values(): IterableIterator<V> {
    const walk = function* (level: Map<unknown, unknown>, depth: number): IterableIterator<V> {
      for (const v of level.values())
        if (depth === 1) yield v as V;
        else yield* walk(v as Map<unknown, unknown>, depth - 1);
    };
    yield* walk(this.#root, this.#depth);
  }

  clear(): void {
    this.#root = new Map();
    this.#size = 0;
  }

  #check(parts: readonly unknown[]): void {
    if (parts.length !== this.#depth)
      throw new RangeError(
        `TupleMap key of ${String(parts.length)} parts, not ${String(this.#depth)}`,
      );
  }
}
