import path from 'node:path';
import { initEngine } from '@decompose/engine';
import { loadModel, readModelInputShape } from '@decompose/pipeline';
import { type EvaluationResult, evaluate, modelGeometry } from '@decompose/train';
import type { EvalConfig } from './config.js';
import { loadData } from './data.js';
import { describeEngine } from './engine-report.js';
import type { Console } from './progress.js';
import { percent } from './train.js';

/** `decompose eval`: test loss, accuracy and images/s of a saved model. */
export async function runEval(config: EvalConfig, out: Console): Promise<EvaluationResult> {
  const engine = await initEngine();
  for (const line of describeEngine(engine, out.verbose)) out.log(line);
  const modelDir = path.resolve(config.modelDir);
  const data = await loadData(config, out, { modelInput: await readModelInputShape(modelDir) });
  const model = await loadModel(modelDir);
  try {
    // A model built for other images than the data's is refused before the evaluation, naming both.
    modelGeometry(model, data.test, data.name);
    const result = await evaluate(model, data.test, config.batch);
    out.result(
      `test: loss ${result.loss.toFixed(4)}, accuracy ${percent(result.accuracy)} on ${result.count} images, ` +
        `${result.imagesPerSecond.toFixed(0)} img/s`,
    );
    return result;
  } finally {
    model.dispose();
  }
}
