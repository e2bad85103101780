import type { LayerCost, SkippedLayer } from '@decompose/core';
import type { ArmPhaseSeconds, ModelMeasurement, StepLoss } from '@decompose/pipeline';
import type { Selection, SensitivityTable } from '@decompose/sensitivity';
import type { EpochMetrics } from '@decompose/train';
import type { DataRecord } from '../data.js';
import type { MachineInfo } from '../report/machine.js';
import type { ArmConfig, BaselineConfig, Recipe } from './config.js';

/** The baseline as measured in this run. */
export interface BaselineResult extends ModelMeasurement {
  name: 'baseline';
  architecture: string;
  modelDir: string;
  /** Bytes of the saved weights. */
  modelBytes: number;
  /** Seed of the baseline's training (and of the calibration splits). */
  seed: number;
  /** Trained by this compare run (else loaded from `baseline.modelDir`). */
  trainedHere: boolean;
  /** Epochs of its training when trained here. */
  epochs: EpochMetrics[];
}

/** One rewritten layer of an arm. */
export interface RewrittenLayer {
  layer: string;
  options: unknown;
  before: LayerCost;
  after: LayerCost;
}

export type { StepLoss };

/** Wall-clock seconds of one arm's phases (in the run that computed it). */
export interface ArmSeconds extends ArmPhaseSeconds {
  /** The sensitivity scan, run by the coordinator before the arm's unit. */
  scan: number;
}

/** What `arms/<name>/result.json` holds: everything the report needs about one finished arm. */
export interface ArmResult extends ModelMeasurement {
  name: string;
  strategy: string;
  /** The plugin the arm's model needs to load (null for built-in strategies). */
  plugin: string | null;
  /** The arm's configuration and the fine-tune recipe it was made with (a re-run reuses it only if equal). */
  config: ArmConfig;
  recipe: Recipe;
  /** Fingerprint of the baseline's weights it was made from. */
  baselineFingerprint: string;
  rewritten: RewrittenLayer[];
  skipped: SkippedLayer[];
  /** The sensitivity scan and selection, when the arm selects layers by sensitivity. */
  scan: SensitivityTable | null;
  /** Worker threads the scan ran on (0: this thread, or the queue's workers with `--queue`); null without a scan. */
  scanWorkers: number | null;
  selection: Selection | null;
  /** Test accuracy right after surgery, with the baseline's BatchNorm statistics. */
  surgeryAccuracy: number;
  /**
   * Test accuracy after re-estimating the BatchNorm statistics on `recipe.bnImages` training images, where
   * fine-tuning starts; null when `bnImages` is 0.
   */
  bnAccuracy: number | null;
  fineTune: { epochs: EpochMetrics[]; steps: StepLoss[] };
  seconds: ArmSeconds;
  modelDir: string;
  modelBytes: number;
}

/** An arm in the final results: its result and its difference to the baseline. */
export interface ArmRow extends ArmResult {
  /** Test accuracy minus the baseline's (fractions; negative = worse). */
  deltaAccuracy: number;
  /** Arm's parameters and MACs as a fraction of the baseline's. */
  paramsRatio: number;
  macsRatio: number;
}

/** One timed phase of the run. */
export interface Phase {
  phase: string;
  seconds: number;
  /** E.g. "reused from an earlier run". */
  note?: string;
}

/** `results.json`. */
export interface CompareResults {
  run: string;
  createdAt: string;
  reportDir: string;
  machine: MachineInfo;
  /** Where the images came from (`train`: every training image, calibration splits included). */
  data: DataRecord;
  recipe: { baseline: BaselineConfig; fineTune: Recipe; measure: { batch: number; steps: number } };
  baseline: BaselineResult;
  arms: ArmRow[];
  /** Arms that failed for good (bad plugin, NaN…), with their error; the other arms are in `arms`. */
  failed: FailedArm[];
  phases: Phase[];
}

/** An arm that failed for good: its name, strategy and the error its unit ended with. */
export interface FailedArm {
  name: string;
  strategy: string;
  error: { name: string; message: string };
}

/** Files and folders of a compare report, under `<reportDir>/<run>/`. */
export const COMPARE_FILES = {
  log: 'run.log',
  results: 'results.json',
  csv: 'results.csv',
  report: 'report.md',
  scanCache: 'scan-cache.jsonl',
  baseline: 'baseline',
  arms: 'arms',
  result: 'result.json',
  model: 'model',
  checkpoints: 'checkpoints',
  /** Beside the baseline trained here: its training's epochs. */
  epochs: 'epochs.json',
  /** Beside the baseline trained here: the settings it was trained with. */
  recipe: 'recipe.json',
} as const;
