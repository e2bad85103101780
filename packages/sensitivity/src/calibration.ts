import { cutModel, downstreamFrontier, inferenceModel, type TensorRef } from '@decompose/core';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { Metric } from './table.js';

/** Labelled images (the calibration split) that the scan evaluates models on itself; see `ScanOptions.calibration`. */
export interface LabelledImages {
  /**
   * The model's input for each image, stacked on the first axis (e.g. `[N, 32, 32, 3]`, normalised as in
   * training). The scan reads it and never disposes it.
   */
  images: tf.Tensor;
  /**
   * Class of each image, an index into the model's output. The output is taken as logits (softmax
   * cross-entropy), as `@decompose/train`'s `evaluate` takes it.
   */
  labels: ArrayLike<number>;
  /** Images per forward pass; default {@link DEFAULT_CALIBRATION_BATCH}. */
  batchSize?: number;
}

/**
 * Images per forward pass of a calibration evaluation when the split does not say: on ResNet-20 (wasm) 500
 * was about 4% faster than 100 or 250 (`pnpm bench:scan`), and memory stays bounded for larger splits.
 */
export const DEFAULT_CALIBRATION_BATCH = 500;

const keyOf = (ref: TensorRef) => `${ref.layer}:${ref.output}`;

/** Values of one tensor of the scanned model on the calibration images, one tensor per batch. */
interface KnownTensor {
  ref: TensorRef;
  batches: tf.Tensor[];
}

/**
 * Evaluates the scanned model, and copies of it rewritten at one layer, on a calibration split, re-running only
 * what a rewrite changes: {@link moveTo} computes the tensors in front of a layer once (its
 * `downstreamFrontier`, from those of the previous layer where it can), and {@link metric} runs a copy
 * rewritten at that layer from them. Every model runs on the eval path (core's `inferenceModel`), which
 * changes its outputs only by float rounding. Dispose it when done.
 */
export class CalibrationEvaluator {
  private readonly labels: tf.Tensor1D[];
  private readonly numClasses: number;
  private readonly images: TensorRef;
  private readonly known = new Map<string, KnownTensor>();

  constructor(
    private readonly model: LayersModel,
    split: LabelledImages,
  ) {
    const count = split.images.shape[0] ?? 0;
    if (model.inputs.length !== 1 || model.outputs.length !== 1) {
      throw new RangeError(
        `Calibration evaluation takes a model with one input and one output; '${model.name}' has ` +
          `${model.inputs.length} and ${model.outputs.length}.`,
      );
    }
    if (split.labels.length !== count || count === 0) {
      throw new RangeError(
        `Calibration split has ${count} images and ${split.labels.length} labels; give one label per image.`,
      );
    }
    const batchSize = split.batchSize ?? DEFAULT_CALIBRATION_BATCH;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`Calibration batchSize must be a positive integer, got ${batchSize}.`);
    }
    this.numClasses = Number(model.outputs[0]!.shape.at(-1));
    this.images = { layer: model.inputLayers[0]!.name, output: 0 };
    const starts = Array.from({ length: Math.ceil(count / batchSize) }, (_, i) => i * batchSize);
    const sizes = starts.map((start) => Math.min(batchSize, count - start));
    const labels = Int32Array.from(split.labels);
    this.labels = starts.map((start, i) => tf.tensor1d(labels.subarray(start, start + sizes[i]!), 'int32'));
    this.known.set(keyOf(this.images), {
      ref: this.images,
      batches: starts.map((start, i) => tf.slice(split.images, start, sizes[i])),
    });
  }

  /** Images in the split. */
  get count(): number {
    return this.labels.reduce((n, batch) => n + batch.shape[0], 0);
  }

  /**
   * Computes the values of the tensors in front of `layer` (the tensors outside the part downstream of it
   * that the part reads), from the tensors known before, and forgets those no longer needed.
   */
  async moveTo(layer: string): Promise<void> {
    const frontier = downstreamFrontier(this.model, [layer]);
    const missing = frontier.filter((ref) => !this.known.has(keyOf(ref)));
    const computed = missing.map((ref): KnownTensor => ({ ref, batches: [] }));
    try {
      if (missing.length > 0) {
        await this.run(this.model, [...this.known.values()], missing, async (outputs) => {
          for (const [i, output] of outputs.entries()) computed[i]!.batches.push(output);
        });
      }
    } catch (error) {
      for (const tensor of computed) tf.dispose(tensor.batches);
      throw error;
    }
    const keep = new Set([keyOf(this.images), ...frontier.map(keyOf)]);
    for (const [key, tensor] of this.known) {
      if (!keep.has(key)) {
        tf.dispose(tensor.batches);
        this.known.delete(key);
      }
    }
    for (const tensor of computed) this.known.set(keyOf(tensor.ref), tensor);
  }

  /**
   * Calibration accuracy and mean cross-entropy of `model`: the scanned model or a copy of it. With
   * `fromFrontier` the copy must differ from the scanned model only downstream of the layer last passed to
   * {@link moveTo}, and runs from the values in front of it; otherwise it runs from the images.
   */
  async metric(model: LayersModel, fromFrontier: boolean): Promise<Metric> {
    const known = fromFrontier ? [...this.known.values()] : [this.known.get(keyOf(this.images))!];
    let lossSum = 0;
    let correct = 0;
    await this.run(model, known, undefined, async ([logits], batch) => {
      const labels = this.labels[batch]!;
      const [loss, hits] = tf.tidy(() => [
        tf.losses.softmaxCrossEntropy(
          tf.oneHot(labels, this.numClasses),
          logits!,
          undefined,
          0,
          tf.Reduction.SUM,
        ),
        tf.sum(tf.cast(tf.equal(tf.argMax(logits!, -1), labels), 'int32')),
      ]);
      lossSum += (await loss.data())[0] ?? Number.NaN;
      correct += (await hits.data())[0] ?? 0;
      tf.dispose([loss, hits, logits!]);
    });
    return { accuracy: correct / this.count, loss: lossSum / this.count };
  }

  /** Releases the split's batches and every computed value. */
  dispose(): void {
    tf.dispose(this.labels);
    for (const tensor of this.known.values()) tf.dispose(tensor.batches);
    this.known.clear();
  }

  /**
   * Runs the part of `model` that computes `outputs` (default its outputs) from the `known` tensors it needs,
   * BatchNorms folded, batch by batch; `each` takes ownership of a batch's outputs.
   */
  private async run(
    model: LayersModel,
    known: readonly KnownTensor[],
    outputs: readonly TensorRef[] | undefined,
    each: (outputs: tf.Tensor[], batch: number) => Promise<void>,
  ): Promise<void> {
    const cut = cutModel(model, { inputs: known.map((k) => k.ref), ...(outputs ? { outputs } : {}) });
    let folded: LayersModel | undefined;
    try {
      folded = inferenceModel(cut.model).model;
      const sources = cut.inputs.map((ref) => this.known.get(keyOf(ref))!.batches);
      for (let batch = 0; batch < this.labels.length; batch++) {
        const inputs = sources.map((batches) => batches[batch]!);
        const predicted = folded.predict(inputs, { batchSize: inputs[0]!.shape[0] });
        await each(Array.isArray(predicted) ? predicted : [predicted], batch);
      }
    } finally {
      folded?.dispose();
      cut.model.dispose();
    }
  }
}
