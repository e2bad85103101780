export {
  type Batch,
  type BatchStream,
  type BatchStreamOptions,
  createBatchStream,
  type EpochOptions,
} from './batches.js';
export {
  CIFAR10_ARCHIVE_FOLDER,
  CIFAR10_MD5,
  CIFAR10_URL,
  type Cifar10Source,
  type DownloadOptions,
  type DownloadProgress,
  downloadCifar10,
  resolveCifar10Dir,
} from './download.js';
export {
  Cifar10ChecksumError,
  Cifar10DownloadError,
  Cifar10Error,
  Cifar10FormatError,
  Cifar10MetaError,
  Cifar10MissingFileError,
  Cifar10SubsetNotFoundError,
} from './errors.js';
export {
  CIFAR10_MEAN,
  CIFAR10_STD,
  CROP_PADDING,
  type CropFlip,
  createNormalizeTable,
  drawCropFlip,
  type NormalizeTable,
  normalizeImages,
  writeImage,
} from './preprocess.js';
export {
  CHANNELS,
  type Cifar10Dataset,
  type Cifar10Images,
  checkCifar10Dir,
  IMAGE_SIZE,
  META_FILE,
  NUM_CLASSES,
  PIXELS_PER_IMAGE,
  RECORD_BYTES,
  readCifar10,
  readCifar10Batches,
  readCifar10ClassNames,
  TEST_FILE,
  TRAIN_FILES,
} from './reader.js';
export { deriveSeed, Rng, type RngState } from './rng.js';
export {
  type CalibrationSplit,
  type CalibrationSplitOptions,
  selectImages,
  splitCalibration,
} from './split.js';
export { CIFAR10_DIR_ENV, findBundledSubset } from './subset.js';
