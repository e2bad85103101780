/** Base class of every error this package throws, so callers can catch all pipeline problems at once. */
export abstract class PipelineError extends Error {}

/** Bytes handed to `unpackModel` or `unpackImageSet` are not what `packModel` or `packImageSet` wrote. */
export class PackedFormatError extends PipelineError {
  override readonly name = 'PackedFormatError';
  constructor(
    /** What was expected: `model` or `image set`. */
    readonly kind: 'model' | 'image set',
    /** What is wrong with the bytes. */
    readonly problem: string,
  ) {
    super(
      `These bytes are not a packed ${kind}: ${problem}. They must come from pack${kind === 'model' ? 'Model' : 'ImageSet'} ` +
        'of this version of @decompose/pipeline; re-pack the source (a blob cut short or from another version reads so).',
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
