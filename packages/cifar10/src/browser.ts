// The browser-safe part of @decompose/cifar10: the binary format and normalisation, no Node modules.
export { Cifar10Error, Cifar10FormatError } from './errors.js';
export {
  CHANNELS,
  CIFAR10_CLASS_NAMES,
  type Cifar10Images,
  decodeBatch,
  IMAGE_SIZE,
  NUM_CLASSES,
  PIXELS_PER_IMAGE,
  RECORD_BYTES,
  TEST_FILE,
  TRAIN_FILES,
} from './format.js';
export {
  CIFAR10_MEAN,
  CIFAR10_STD,
  createNormalizeTable,
  type NormalizeTable,
  normalizeImages,
} from './preprocess.js';
