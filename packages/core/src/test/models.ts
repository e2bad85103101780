import { initializers, input, type LayersModel, layers, model, sequential } from '@tensorflow/tfjs-layers';

const seeded = (seed: number) => initializers.glorotUniform({ seed });

/**
 * A small functional model with a residual add, for surgery tests: 8×8×3 input, a stem conv + batch norm, a
 * residual block of two 3×3 convs (the first with bias and fused relu), a strided 3×3 conv, a 1×1 conv, a
 * frozen conv, global pooling and a dense head.
 */
export function smallResidualModel(): LayersModel {
  const x = input({ shape: [8, 8, 3], name: 'image' });
  const conv = (
    name: string,
    filters: number,
    seed: number,
    extra: Partial<Parameters<typeof layers.conv2d>[0]> = {},
  ) =>
    layers.conv2d({
      name,
      filters,
      kernelSize: 3,
      padding: 'same',
      useBias: false,
      kernelInitializer: seeded(seed),
      ...extra,
    });
  let h = conv('stem.conv', 8, 1).apply(x) as ReturnType<typeof input>;
  h = layers
    .batchNormalization({
      name: 'stem.bn',
      gammaInitializer: initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: 2 }),
      betaInitializer: initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: 3 }),
      movingMeanInitializer: initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: 4 }),
      movingVarianceInitializer: initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: 5 }),
    })
    .apply(h) as typeof h;
  h = layers.reLU({ name: 'stem.relu' }).apply(h) as typeof h;
  let r = conv('block.conv1', 8, 6, {
    useBias: true,
    activation: 'relu',
    biasInitializer: initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: 7 }),
  }).apply(h) as typeof h;
  r = conv('block.conv2', 8, 8).apply(r) as typeof h;
  h = layers.add({ name: 'block.add' }).apply([h, r]) as typeof h;
  h = layers.reLU({ name: 'block.relu' }).apply(h) as typeof h;
  h = conv('down.conv', 16, 9, { strides: 2 }).apply(h) as typeof h;
  h = conv('down.proj', 16, 10, { kernelSize: 1 }).apply(h) as typeof h;
  h = conv('down.frozen', 16, 11, { trainable: false }).apply(h) as typeof h;
  h = layers.globalAveragePooling2d({ name: 'pool' }).apply(h) as typeof h;
  const logits = layers
    .dense({ name: 'head', units: 10, kernelInitializer: seeded(12) })
    .apply(h) as typeof h;
  return model({ inputs: x, outputs: logits, name: 'small-residual' });
}

/** A small `tf.sequential` CNN: conv → batch norm → relu → conv → pooling → dense, 8×8×3 input. */
export function smallSequentialModel(): LayersModel {
  return sequential({
    name: 'small-sequential',
    layers: [
      layers.conv2d({
        name: 'conv1',
        inputShape: [8, 8, 3],
        filters: 8,
        kernelSize: 3,
        padding: 'same',
        useBias: false,
        kernelInitializer: seeded(1),
      }),
      layers.batchNormalization({
        name: 'bn1',
        movingMeanInitializer: initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: 2 }),
        movingVarianceInitializer: initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: 3 }),
      }),
      layers.reLU({ name: 'relu1' }),
      layers.conv2d({
        name: 'conv2',
        filters: 8,
        kernelSize: 3,
        padding: 'same',
        kernelInitializer: seeded(4),
      }),
      layers.globalAveragePooling2d({ name: 'pool' }),
      layers.dense({ name: 'head', units: 4, kernelInitializer: seeded(5) }),
    ],
  });
}
