export { type ConvLayerInfo, listConvLayers } from './conv-layers.js';
export { ResNetError } from './errors.js';
export {
  ARCHITECTURES,
  type CifarResNetOptions,
  DEPTHS,
  INITS,
  type InitScheme,
  InvalidResNetOptionsError,
  type ResNetArch,
  type ResolvedResNetOptions,
  resolveResNetOptions,
  SHORTCUTS,
  type Shortcut,
} from './options.js';
export { BATCH_NORM, createCifarResNet, INPUT_CHANNELS, INPUT_SIZE } from './resnet.js';
