/**
 * Answers that are a function of one string, kept: a per-request lookup whose
 * input repeats (a Host, an absolute-form target, a listener name) is computed
 * once. Bounded against hostile input: at most `entries` answers (a full memo
 * is cleared, so invented keys cost a recomputation, never memory), and a key
 * longer than `keyChars` is computed each time and never kept.
 */
export class StringMemo<V> {
  readonly #answers = new Map<string, V>();
  readonly #compute: (key: string) => V;
  readonly #entries: number;
  readonly #keyChars: number;

  constructor(compute: (key: string) => V, entries: number, keyChars = Infinity) {
    this.#compute = compute;
    this.#entries = entries;
    this.#keyChars = keyChars;
  }

  /** Answers kept now. */
  get size(): number {
    return this.#answers.size;
  }

  get(key: string): V {
    if (key.length > this.#keyChars) return this.#compute(key);
    const known = this.#answers.get(key);
    // An answer may be undefined (or null): `has` tells it from one not computed yet.
    if (known !== undefined || this.#answers.has(key)) return known as V;
    const value = this.#compute(key);
    if (this.#answers.size >= this.#entries) this.#answers.clear();
    this.#answers.set(key, value);
    return value;
  }
}
