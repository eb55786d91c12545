/** Public surface of the mesh config analyzer (`palisade analyze`). */
export {
  analyzeManifests,
  FINDING_CODES,
  formatFinding,
  type AnalyzeOptions,
  type Finding,
  type FindingCode,
  type FindingLevel,
} from './analyze.js';
