export {
  type CurvePoint,
  type EpochPoint,
  type ParetoPoint,
  paretoFront,
  paretoSpec,
  sensitivityHeatmapSpec,
  trainingCurvesSpec,
} from './charts.js';
export { toCsv } from './csv.js';
export { type MachineInfo, machineInfo } from './machine.js';
export { markdownTable } from './markdown.js';
export { formatBudget, formatSelection, selectionMarkdown, selectionSummary } from './selection.js';
