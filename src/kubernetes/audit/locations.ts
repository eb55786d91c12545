/**
 * Where each manifest starts in its file, so audit findings can point at a
 * line (SARIF `region.startLine`, which GitHub code scanning requires).
 * Documents are counted the way `parseManifests` flattens them: empty
 * documents are skipped, and the items of a `*List` or a JSON array each
 * count as one manifest.
 */
import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Node } from 'yaml';

function lineOf(lc: LineCounter, node: Node | null | undefined, fallback: number): number {
  const offset = node?.range?.[0];
  return offset === undefined ? fallback : lc.linePos(offset).line;
}

/** 1-based start line of every manifest in `text`, in manifest order. */
export function manifestStartLines(text: string): number[] {
  const lc = new LineCounter();
  const out: number[] = [];
  let docs;
  try {
    docs = parseAllDocuments(text, { lineCounter: lc });
  } catch {
    return out;
  }
  for (const doc of docs) {
    const contents = doc.contents;
    if (contents === null || (isScalar(contents) && contents.value === null)) continue;
    const docLine = lineOf(lc, contents, 1);
    if (isSeq(contents)) {
      for (const item of contents.items) out.push(lineOf(lc, item, docLine));
      continue;
    }
    if (isMap(contents)) {
      const kind: unknown = contents.get('kind');
      const items = contents.get('items', true);
      if (typeof kind === 'string' && kind.endsWith('List') && isSeq(items)) {
        for (const item of items.items) out.push(lineOf(lc, item as Node, docLine));
        continue;
      }
    }
    out.push(docLine);
  }
  return out;
}
