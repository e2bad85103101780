/** What went wrong reading or writing a model directory. */
export type ModelFileProblem =
  | 'missing-directory'
  | 'missing-model-json'
  | 'corrupt-model-json'
  | 'missing-weights'
  | 'weights-size-mismatch'
  | 'unsupported-artifacts';

/**
 * Thrown by the `file://` IO handler when a model cannot be saved or loaded; `file` names the file or
 * directory at fault and the message says how to fix it.
 */
export class ModelFileError extends Error {
  override readonly name = 'ModelFileError';
  constructor(
    readonly problem: ModelFileProblem,
    readonly file: string,
    message: string,
  ) {
    super(message);
  }
}
