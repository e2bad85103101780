import * as tfl from '@tensorflow/tfjs-layers';

/** Output channels of the stem's 3×3 convolution. */
export const MOBILENET_STEM = 32;

/** (expansion t, output channels c, blocks n, first stride s) per stage, MobileNetV2's table cut after 96 channels. */
export const MOBILENET_STAGES: readonly (readonly [number, number, number, number])[] = [
  [1, 16, 1, 1],
  [6, 24, 2, 1],
  [6, 32, 3, 2],
  [6, 64, 2, 2],
  [6, 96, 2, 1],
];

const relu6 = () => tfl.layers.reLU({ maxValue: 6 });
const bn = () => tfl.layers.batchNormalization();
const pointwise = (filters: number) => tfl.layers.conv2d({ filters, kernelSize: 1, useBias: false });

/**
 * The MobileNetV2-style network bench:mobilenet and bench:peer time: stem (3×3 conv, {@link MOBILENET_STEM}
 * channels), the inverted residual blocks of {@link MOBILENET_STAGES}, global average pool, dense.
 */
export function mobileNetV2(size: number, numClasses: number): tfl.LayersModel {
  const input = tfl.input({ shape: [size, size, 3] });
  const apply = (layer: tfl.layers.Layer, x: tfl.SymbolicTensor) => layer.apply(x) as tfl.SymbolicTensor;
  let x = apply(
    tfl.layers.conv2d({ filters: MOBILENET_STEM, kernelSize: 3, padding: 'same', useBias: false }),
    input,
  );
  x = apply(relu6(), apply(bn(), x));
  let channels = MOBILENET_STEM;
  for (const [t, c, n, s] of MOBILENET_STAGES) {
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? s : 1;
      let y = x;
      if (t !== 1) y = apply(relu6(), apply(bn(), apply(pointwise(channels * t), y)));
      const depthwise = tfl.layers.depthwiseConv2d({
        kernelSize: 3,
        strides: stride,
        padding: 'same',
        useBias: false,
      });
      y = apply(relu6(), apply(bn(), apply(depthwise, y)));
      y = apply(bn(), apply(pointwise(c), y));
      x = stride === 1 && channels === c ? (tfl.layers.add().apply([x, y]) as tfl.SymbolicTensor) : y;
      channels = c;
    }
  }
  x = apply(tfl.layers.globalAveragePooling2d({}), x);
  const output = apply(tfl.layers.dense({ units: numClasses }), x);
  return tfl.model({ inputs: input, outputs: output });
}
