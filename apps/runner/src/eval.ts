import path from 'node:path';
import { initEngine } from '@decompose/engine';
import { type EvaluationResult, evaluate } from '@decompose/train';
import type { EvalConfig } from './config.js';
import { loadData } from './data.js';
import { describeEngine } from './engine-report.js';
import { loadModel } from './models.js';
import type { Console } from './progress.js';
import { percent } from './train.js';

/** `decompose eval`: test loss, accuracy and images/s of a saved model. */
export async function runEval(config: EvalConfig, out: Console): Promise<EvaluationResult> {
  const engine = await initEngine();
  for (const line of describeEngine(engine, out.verbose)) out.log(line);
  const data = await loadData(config, out);
  const model = await loadModel(path.resolve(config.modelDir));
  try {
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
