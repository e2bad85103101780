import type { GradConfig, KernelConfig } from '@tensorflow/tfjs-core';
import { fusedBatchNormGradConfig } from './batch-norm-grad.js';
import { wasmBatchNormGradSumsConfig } from './batch-norm-sums.js';
import { wasmBatchNormTrainConfig, wasmBatchNormTrainGradConfig } from './batch-norm-train.js';
import { wasmChannelKernels } from './channel-ops.js';
import { clipByValueGradConfig, relu6GradConfig, reluGradConfig, wasmMaskedGradConfig } from './clip-grad.js';
import { wasmConv2DBackpropFilterConfig, wasmConv2DBackpropInputConfig } from './conv2d-backprop.js';
import {
  wasmBatchMatMulConfig,
  wasmConv2DConfig,
  wasmFusedConv2DConfig,
  wasmFusedMatMulConfig,
} from './conv2d-forward.js';
import { wasmDepthwiseBackpropFilterConfig, wasmDepthwiseBackpropInputConfig } from './depthwise-backprop.js';
import { meanGradConfig } from './mean-grad.js';
import { wasmAvgPoolGradConfig, wasmMaxPoolGradConfig } from './pool-grad.js';
import { wasmSliceConfig } from './slice.js';

/** Kernels the engine adds to (or replaces in) the wasm backend so it can train convolutional networks. */
export const wasmTrainingKernels: readonly KernelConfig[] = [
  wasmConv2DBackpropFilterConfig,
  wasmConv2DBackpropInputConfig,
  wasmDepthwiseBackpropInputConfig,
  wasmDepthwiseBackpropFilterConfig,
  ...wasmChannelKernels,
  wasmBatchNormGradSumsConfig,
  wasmBatchNormTrainConfig,
  wasmBatchNormTrainGradConfig,
  wasmSliceConfig,
  wasmMaxPoolGradConfig,
  wasmAvgPoolGradConfig,
  wasmMaskedGradConfig,
  wasmConv2DConfig,
  wasmFusedConv2DConfig,
  wasmBatchMatMulConfig,
  wasmFusedMatMulConfig,
];

/** Gradients the engine registers for every backend (exact replacements of slower tfjs-core ones). */
export const engineGradients: readonly GradConfig[] = [
  fusedBatchNormGradConfig,
  meanGradConfig,
  clipByValueGradConfig,
  reluGradConfig,
  relu6GradConfig,
];

export { rememberStockKernel, UnsupportedKernelInputError } from './wasm-backend.js';
