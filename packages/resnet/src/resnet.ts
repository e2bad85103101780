import * as tfl from '@tensorflow/tfjs-layers';
import { convKernelInitializer, denseInitializers } from './init.js';
import {
  type CifarResNetOptions,
  type ResNetArch,
  type ResolvedResNetOptions,
  resolveResNetOptions,
} from './options.js';

/** Side length of the square CIFAR input. */
export const INPUT_SIZE = 32;
/** Channels of the CIFAR input (RGB). */
export const INPUT_CHANNELS = 3;

/** BatchNorm settings of PyTorch's defaults (`eps=1e-5`, `momentum=0.1`, i.e. 0.9 in tfjs terms). */
export const BATCH_NORM = { epsilon: 1e-5, momentum: 0.9 } as const;

interface Stage {
  channels: number;
  blocks: number;
  stride: number;
}

/** Stem width and stages of each architecture. */
function layout(arch: ResNetArch): { stemChannels: number; stages: Stage[] } {
  if (arch === 'resnet18') {
    return {
      stemChannels: 64,
      stages: [64, 128, 256, 512].map((channels, i) => ({ channels, blocks: 2, stride: i === 0 ? 1 : 2 })),
    };
  }
  const blocks = (Number(arch.slice('resnet'.length)) - 2) / 6;
  return {
    stemChannels: 16,
    stages: [16, 32, 64].map((channels, i) => ({ channels, blocks, stride: i === 0 ? 1 : 2 })),
  };
}

function applied(layer: tfl.layers.Layer, ...inputs: tfl.SymbolicTensor[]): tfl.SymbolicTensor {
  const [single] = inputs;
  return layer.apply(inputs.length === 1 && single !== undefined ? single : inputs) as tfl.SymbolicTensor;
}

function channelsOf(x: tfl.SymbolicTensor): number {
  const channels = x.shape[3];
  if (channels == null) throw new Error(`Tensor ${x.name} has no static channel count`);
  return channels;
}

/** Adds layers to a functional graph with the naming and settings every ResNet layer shares. */
class ResNetBuilder {
  constructor(private readonly options: ResolvedResNetOptions) {}

  conv(x: tfl.SymbolicTensor, name: string, filters: number, kernelSize: number, stride: number) {
    const kernelInitializer = convKernelInitializer(
      this.options.init,
      this.options.seed,
      name,
      kernelSize,
      channelsOf(x),
      filters,
    );
    // TF's `same` pads a strided conv only at the bottom/right, which centres output pixel i on input
    // 2i+1 while the stride-2 shortcut samples input 2i. Padding 1 on every side first (PyTorch's
    // `padding=1`) keeps the two branches on the same pixels.
    const alignedPadding = stride > 1 && kernelSize > 1;
    const input = alignedPadding
      ? applied(tfl.layers.zeroPadding2d({ name: `${name}.pad`, padding: (kernelSize - 1) / 2 }), x)
      : x;
    const layer = tfl.layers.conv2d({
      name,
      filters,
      kernelSize,
      strides: stride,
      padding: alignedPadding ? 'valid' : 'same',
      useBias: false, // BatchNorm follows and has its own shift.
      kernelInitializer,
    });
    return applied(layer, input);
  }

  convBn(
    x: tfl.SymbolicTensor,
    prefix: string,
    suffix: string,
    filters: number,
    kernelSize: number,
    stride: number,
  ) {
    const conv = this.conv(x, `${prefix}.conv${suffix}`, filters, kernelSize, stride);
    return applied(
      tfl.layers.batchNormalization({ name: `${prefix}.bn${suffix}`, axis: -1, ...BATCH_NORM }),
      conv,
    );
  }

  relu(x: tfl.SymbolicTensor, name: string) {
    return applied(tfl.layers.activation({ name, activation: 'relu' }), x);
  }

  /** The identity branch of a block, changed only where the block changes stride or width. */
  shortcut(x: tfl.SymbolicTensor, prefix: string, filters: number, stride: number) {
    const inChannels = channelsOf(x);
    if (stride === 1 && inChannels === filters) return x;
    const name = `${prefix}.shortcut`;
    if (this.options.shortcut === 'B') return this.convBn(x, name, '', filters, 1, stride);
    // Option A with stock layers only and no weights: a 1×1 average pool of stride 2 keeps every other
    // pixel (as PyTorch's x[:, :, ::2, ::2]); a channels-first ZeroPadding2D pads the last two axes, which
    // for our channels-last tensors are width (by 0) and channels (by the new ones, all zero).
    const subsampled = applied(
      tfl.layers.averagePooling2d({
        name: `${name}.subsample`,
        poolSize: 1,
        strides: stride,
        padding: 'valid',
      }),
      x,
    );
    const pad = tfl.layers.zeroPadding2d({
      name: `${name}.pad`,
      dataFormat: 'channelsFirst',
      padding: [
        [0, 0],
        [0, filters - inChannels],
      ],
    });
    return applied(pad, subsampled);
  }

  basicBlock(x: tfl.SymbolicTensor, prefix: string, filters: number, stride: number) {
    const residual = this.relu(this.convBn(x, prefix, '1', filters, 3, stride), `${prefix}.relu1`);
    const out = this.convBn(residual, prefix, '2', filters, 3, 1);
    const sum = applied(
      tfl.layers.add({ name: `${prefix}.add` }),
      out,
      this.shortcut(x, prefix, filters, stride),
    );
    return this.relu(sum, `${prefix}.relu2`);
  }
}

/**
 * Builds a CIFAR ResNet as a functional `tf.LayersModel` of stock tfjs-layers layers only, so a saved model
 * reloads with plain `tf.loadLayersModel`. Input `[batch, 32, 32, 3]`, output `[batch, numClasses]` logits.
 *
 * ResNet-20/32/44/56/110 (He et al. 2016, §4.2): 3×3 stem conv of 16, three stages of 16/32/64 channels
 * with (depth-2)/6 basic blocks each, global average pool, dense. ResNet-18 (the usual CIFAR variant): 3×3
 * stem of 64, no max-pool, [2, 2, 2, 2] blocks of 64/128/256/512. Convs have no bias and pad as PyTorch's
 * `padding=k//2`: `same` at stride 1, an explicit `ZeroPadding2D` (`<conv>.pad`) then `valid` at stride 2.
 *
 * Layer names are stable: `stem.conv`, `stem.bn`, `stage{s}.block{b}.conv1|bn1|conv2|bn2`,
 * `stage{s}.block1.conv1.pad` (stride 2), `stage{s}.block1.shortcut.conv|bn` (option B) or `.shortcut.subsample|pad` (option A), `head.pool`,
 * `head.fc`. Throws {@link InvalidResNetOptionsError} for bad options.
 *
 * @example
 * const model = createCifarResNet({ arch: 'resnet20' }); // or { depth: 20 }
 */
export function createCifarResNet(options: CifarResNetOptions): tfl.LayersModel {
  const resolved = resolveResNetOptions(options);
  const builder = new ResNetBuilder(resolved);
  const { stemChannels, stages } = layout(resolved.arch);

  const input = tfl.input({ name: 'input', shape: [INPUT_SIZE, INPUT_SIZE, INPUT_CHANNELS] });
  let x = builder.relu(builder.convBn(input, 'stem', '', stemChannels, 3, 1), 'stem.relu');
  stages.forEach((stage, s) => {
    for (let b = 0; b < stage.blocks; b += 1) {
      x = builder.basicBlock(x, `stage${s + 1}.block${b + 1}`, stage.channels, b === 0 ? stage.stride : 1);
    }
  });
  const pooled = applied(tfl.layers.globalAveragePooling2d({ name: 'head.pool' }), x);
  const fc = tfl.layers.dense({
    name: 'head.fc',
    units: resolved.numClasses,
    ...denseInitializers(resolved.seed, 'head.fc', channelsOf(x)),
  });
  return tfl.model({ name: resolved.arch, inputs: input, outputs: applied(fc, pooled) });
}
