/** Base class of every error this package throws, so callers can catch all pipeline problems at once. */
export abstract class PipelineError extends Error {}

/** What writes each kind of packed bytes, for {@link PackedFormatError}'s message. */
const PACKED_BY = {
  model: 'packModel',
  'image set': 'packImageSet',
  'training checkpoint': "a training unit's checkpoint",
} as const;

/** Bytes handed to `unpackModel` or `unpackImageSet` (or a unit's checkpoint) are not what was packed. */
export class PackedFormatError extends PipelineError {
  override readonly name = 'PackedFormatError';
  constructor(
    /** What was expected: `model`, `image set` or `training checkpoint`. */
    readonly kind: keyof typeof PACKED_BY,
    /** What is wrong with the bytes. */
    readonly problem: string,
  ) {
    super(
      `These bytes are not a packed ${kind}: ${problem}. They must come from ${PACKED_BY[kind]} ` +
        'of this version of @decompose/pipeline; ' +
        (kind === 'training checkpoint'
          ? "delete the unit's checkpoint (on a queue, the key decompose-jobs:<queue>:checkpoint:<unit id>) to train it afresh."
          : 're-pack the source (a blob cut short or from another version reads so).'),
    );
  }
}

/** A calibration split cannot be made or recreated as asked. */
export class CalibrationError extends PipelineError {
  override readonly name = 'CalibrationError';
  constructor(
    /** The flag or config field the request came from, e.g. `--calibration`. */
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

/** A strategy specifier names a plugin that does not give exactly one strategy. */
export class StrategyChoiceError extends PipelineError {
  override readonly name = 'StrategyChoiceError';
  constructor(
    /** The flag or config field the specifier came from, e.g. `--strategy`. */
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

/** The `plugins.json` beside a saved model is not the list it must be. */
export class PluginsFileError extends PipelineError {
  override readonly name = 'PluginsFileError';
  constructor(readonly file: string) {
    super(`${file} must be JSON of the form { "plugins": ["<package or path>", ...] }; fix or delete it.`);
  }
}

/** A scan cannot go ahead as asked: a layer selector matches nothing, or nothing is left to scan. */
export class ScanRequestError extends PipelineError {
  override readonly name = 'ScanRequestError';
  constructor(
    /** The flag or config field the request came from, e.g. `--layers`. */
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

/** The scan cache file cannot be written (a full disk, missing permissions and the like). */
export class ScanCacheError extends PipelineError {
  override readonly name = 'ScanCacheError';
  constructor(
    /** The cache file. */
    readonly file: string,
    problem: string,
    options?: ErrorOptions,
  ) {
    super(`${problem}; free the space or fix the permissions, or give another output folder.`, options);
  }
}

/** Units of a scan failed for good (the others finished, and are in the cache). */
export class ScanUnitsError extends PipelineError {
  override readonly name = 'ScanUnitsError';
  constructor(
    /** Each failed layer and why. */
    readonly failures: readonly { layer: string; error: { name: string; message: string } }[],
    finished: number,
  ) {
    super(
      `the scan of ${failures.length} layer${failures.length === 1 ? '' : 's'} failed ` +
        `(${finished} other layers finished and are cached; run the same command again to retry only these):\n  ` +
        failures.map((f) => `${f.layer}: ${f.error.name}: ${f.error.message}`).join('\n  '),
    );
  }
}

/** A worker resolved the strategy specifier to another strategy or version than the coordinator. */
export class StrategyMismatchError extends PipelineError {
  override readonly name = 'StrategyMismatchError';
  constructor(specifier: string, there: string, here: string, layer: string) {
    super(
      `'${specifier}' resolved to ${there} on the worker that scanned '${layer}', but to ${here} here: ` +
        'install the same version of the strategy everywhere (workers and coordinator).',
    );
  }
}

/** A training run, run as a unit, failed for good. */
export class TrainingRunError extends PipelineError {
  override readonly name = 'TrainingRunError';
  constructor(
    /** What was being trained, e.g. `the baseline's training`. */
    readonly what: string,
    /** The unit's error, as its executor reported it. */
    readonly failure: { name: string; message: string },
  ) {
    super(`${what} failed: ${failure.name}: ${failure.message}`);
  }
}
