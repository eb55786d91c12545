/**
 * Istio's push debounce (pilot `PILOT_DEBOUNCE_AFTER`, `PILOT_DEBOUNCE_MAX`):
 * after an event, wait for a quiet period (default 100 ms) so a burst of
 * changes becomes one push — but never more than the maximum (default 10 s)
 * after the first event of the burst, so a steady stream of changes still
 * pushes. Used for the config directory watch and the xDS push.
 */

/** PILOT_DEBOUNCE_AFTER: the quiet period. */
export const DEBOUNCE_AFTER_MS = 100;
/** PILOT_DEBOUNCE_MAX: the longest delay after the first event of a burst. */
export const DEBOUNCE_MAX_MS = 10_000;

/** A debounced action. */
export interface Debouncer {
  /** Records an event: `fn` runs after the quiet period, or at the maximum. */
  trigger(): void;
  cancel(): void;
}

/** Debounces `fn` with a quiet period `afterMs` and a bound `maxMs` from the first event. */
export function createDebouncer(
  fn: () => void,
  options: { readonly afterMs?: number; readonly maxMs?: number } = {},
): Debouncer {
  const after = options.afterMs ?? DEBOUNCE_AFTER_MS;
  const max = Math.max(after, options.maxMs ?? DEBOUNCE_MAX_MS);
  let timer: NodeJS.Timeout | undefined;
  let first: number | undefined;
  return {
    trigger() {
      const now = Date.now();
      first ??= now;
      if (timer !== undefined) clearTimeout(timer);
      timer = setTimeout(
        () => {
          timer = undefined;
          first = undefined;
          fn();
        },
        Math.max(0, Math.min(after, first + max - now)),
      );
    },
    cancel() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      first = undefined;
    },
  };
}
