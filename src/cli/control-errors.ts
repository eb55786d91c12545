/**
 * A readable reason from a failed call to the control plane's debug API:
 * grpc-js reports a refused connection as "No connection established. Last
 * error: Error: connect ECONNREFUSED … Resolution note: " (the note is empty
 * for an IP address); the user needs the cause, not the transport's wording.
 */
export function describeControlError(error: unknown): string {
  const e = error as { code?: number; details?: string; message?: string };
  const raw = e.details ?? e.message ?? String(error);
  const cause = /Last error: (?:Error: )?(.*?)\.?(?: Resolution note:.*)?$/s.exec(raw)?.[1];
  const text = (cause ?? raw).replace(/\s*Resolution note:\s*$/s, '').trim();
  if (/ECONNREFUSED/.test(text)) return 'connection refused';
  if (e.code === 4) return 'no answer before the deadline';
  return text === '' ? 'no answer' : text;
}
