import path from 'node:path';
import { type InferenceModel, inferenceModel } from '@decompose/core';
import { initEngine } from '@decompose/engine';
import { loadModel, readModelInputShape } from '@decompose/pipeline';
import { type EvaluationResult, evaluate, modelGeometry } from '@decompose/train';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { EvalConfig } from './config.js';
import { loadData } from './data.js';
import { describeEngine } from './engine-report.js';
import type { Console } from './progress.js';
import { percent } from './train.js';

/**
 * `decompose eval`: test loss, accuracy and images/s of a saved model, run as the product evaluates every model:
 * on its eval path (core's `inferenceModel`: BatchNorms folded, activations fused).
 */
export async function runEval(config: EvalConfig, out: Console): Promise<EvaluationResult> {
  const engine = await initEngine();
  for (const line of describeEngine(engine, out.verbose)) out.log(line);
  const modelDir = path.resolve(config.modelDir);
  const data = await loadData(config, out, { modelInput: await readModelInputShape(modelDir) });
  const model = await loadModel(modelDir);
  let inference: tfl.LayersModel | undefined;
  try {
    // A model built for other images than the data's is refused before the evaluation, naming both.
    modelGeometry(model, data.test, data.name);
    const evalPath = inferenceModel(model);
    inference = evalPath.model;
    out.log(foldSummary(evalPath));
    for (const { batchNorm, reason } of evalPath.unfolded) out.log(`  ${batchNorm} not folded: ${reason}`);
    const result = await evaluate(inference, data.test, config.batch);
    out.result(
      `test: loss ${result.loss.toFixed(4)}, accuracy ${percent(result.accuracy)} on ${result.count} images, ` +
        `${result.imagesPerSecond.toFixed(0)} img/s`,
    );
    return result;
  } finally {
    inference?.dispose();
    model.dispose();
  }
}

/** One line on what the eval path folded: `eval path: 19 BatchNorms folded (0 not), 10 activations fused`. */
function foldSummary({ folded, unfolded }: InferenceModel): string {
  const batchNorms = folded.filter((f) => f.batchNorm !== null).length;
  const activations = folded.filter((f) => f.activation !== null).length;
  return `eval path: ${batchNorms} BatchNorms folded (${unfolded.length} not), ${activations} activations fused`;
}
