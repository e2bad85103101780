import { basisStrategy } from '@decompose/basis';
import { type Cifar10Images, normalizeImages } from '@decompose/cifar10/browser';
import { applyStrategy, type LayerReplacement } from '@decompose/core';
import { createCifarResNet } from '@decompose/resnet';
import { svdStrategy } from '@decompose/svd';
import * as tf from '@tensorflow/tfjs-core';
import { model as functionalModel, type LayersModel, type SymbolicTensor } from '@tensorflow/tfjs-layers';

/** A ResNet-20 and a compressed copy of it, for the page when no trained model is at hand. */
export interface DemoModels {
  original: LayersModel;
  compressed: LayersModel;
  /** The layers the compressed model rewrote, with the strategy that rewrote each, basis ones first. */
  replacements: (LayerReplacement & { strategy: string })[];
}

/** Convolutions rewritten as `BasisConv2D` (a custom layer the page must have registered). */
export const DEMO_BASIS_LAYERS = 'stage2.**';
/** Convolutions rewritten as two stock convolutions by SVD. */
export const DEMO_SVD_LAYERS = 'stage3.*.conv2';

/** Standard deviation the class-mean head gives the logits, so probabilities are neither flat nor one-hot. */
const HEAD_LOGIT_STD = 2;

/**
 * Replaces the `head.fc` weights of an untrained ResNet by a nearest-class-mean classifier over its pooled
 * features, standardised per feature: with z = (f − μ) / σ (μ, σ over `calibration`) and d_c the mean z of
 * class c, logit_c = s · (d_c · z − |d_c|² / 2), which ranks classes as −|z − d_c|² does. Random features
 * are far from useless, so this gives predictions that depend on the image (a random head sends nearly every
 * image to one class) without any training. Standardising keeps a few large features from deciding alone,
 * and the −|d_c|²/2 term keeps the class whose mean lies farthest out from winning everywhere.
 */
function fitClassMeanHead(network: LayersModel, calibration: Cifar10Images): void {
  const features = functionalModel({
    inputs: network.inputs,
    outputs: network.getLayer('head.pool').output as SymbolicTensor,
  });
  const head = network.getLayer('head.fc');
  const [kernel, bias] = tf.tidy(() => {
    const input = tf.tensor4d(normalizeImages(calibration.images), [calibration.count, 32, 32, 3]);
    const pooled = features.predict(input) as tf.Tensor2D;
    const { mean, variance } = tf.moments(pooled, 0);
    const invStd = tf.div(1, tf.add(tf.sqrt(variance), 1e-6));
    const standardised = tf.mul(tf.sub(pooled, mean), invStd);
    const numClasses = head.getWeights()[1]!.shape[0]!;
    const oneHot = tf.cast(tf.oneHot(tf.tensor1d(calibration.labels, 'int32'), numClasses), 'float32');
    const counts = tf.maximum(tf.sum(oneHot, 0), 1);
    const classMeans = tf.div(
      tf.matMul(oneHot, standardised, true, false),
      tf.reshape(counts, [numClasses, 1]),
    ) as tf.Tensor2D;
    // logits = z · Dᵀ − |d|²/2 = f · (diag(1/σ) Dᵀ) − (μ/σ) · Dᵀ − |d|²/2.
    const direction = tf.mul(tf.transpose(classMeans), tf.reshape(invStd, [-1, 1])) as tf.Tensor2D;
    const offset = tf.add(
      tf.reshape(tf.matMul(tf.reshape(mean, [1, -1]), direction), [numClasses]),
      tf.div(tf.sum(tf.square(classMeans), 1), 2),
    );
    const logits = tf.sub(tf.matMul(pooled, direction), offset);
    const scale = tf.div(HEAD_LOGIT_STD, tf.add(tf.sqrt(tf.moments(logits).variance), 1e-6));
    return [tf.mul(direction, scale), tf.neg(tf.mul(offset, scale))];
  });
  head.setWeights([kernel, bias]);
  tf.dispose([kernel, bias]);
}

/** Options of {@link createDemoModels}. */
export interface DemoModelOptions {
  /** Seed of the ResNet's initial weights and of the strategies (default 0). */
  seed?: number;
  /** A few hundred labelled training images for the class-mean head; without them the head stays random. */
  calibration?: Cifar10Images;
}

/**
 * A seeded, untrained ResNet-20 (shortcut A) and a copy with the stage-2 convolutions replaced by basis
 * convolutions (half the filters kept) and the stage-3 second convolutions by SVD pairs (half the
 * parameters), so the page exercises a custom layer and stock pairs alike. With `calibration` images
 * (a few hundred training images), the head becomes a nearest-class-mean classifier, so predictions vary
 * from image to image. The caller owns both models.
 */
export function createDemoModels(options: DemoModelOptions = {}): DemoModels {
  const seed = options.seed ?? 0;
  const original = createCifarResNet({ arch: 'resnet20', shortcut: 'A', seed });
  if (options.calibration !== undefined) fitClassMeanHead(original, options.calibration);
  const basis = applyStrategy(original, basisStrategy, {
    layers: DEMO_BASIS_LAYERS,
    options: { ratio: 0.5 },
    seed,
  });
  const svd = applyStrategy(basis.model, svdStrategy, {
    layers: DEMO_SVD_LAYERS,
    options: { ratio: 0.5 },
    seed,
  });
  basis.model.dispose();
  return {
    original,
    compressed: svd.model,
    replacements: [
      ...basis.report.map((replacement) => ({ ...replacement, strategy: basisStrategy.name })),
      ...svd.report.map((replacement) => ({ ...replacement, strategy: svdStrategy.name })),
    ],
  };
}
