// The browser-safe part of @decompose/cifar10: the binary format and normalisation, no Node modules.
export { Cifar10Error, Cifar10FormatError } from './errors.js';
export {
  CHANNELS,
  CIFAR10_CLASS_NAMES,
  CIFAR10_IMAGE_SHAPE,
  type Cifar10Images,
  classNamesOf,
  decodeBatch,
  IMAGE_SIZE,
  type ImageSet,
  type ImageShape,
  imageShapeOf,
  NUM_CLASSES,
  PIXELS_PER_IMAGE,
  RECORD_BYTES,
  TEST_FILE,
  TRAIN_FILES,
  valuesPerImage,
  withFieldsOf,
} from './format.js';
export {
  CIFAR10_MEAN,
  CIFAR10_STD,
  createNormalizeTable,
  type NormalizeTable,
  normalizeImageSet,
  normalizeImages,
} from './preprocess.js';
