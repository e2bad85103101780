// Everything the browser entry has (format, normalisation), plus what needs Node: files, download, batches.

export {
  type Batch,
  type BatchStream,
  type BatchStreamOptions,
  createBatchStream,
  type EpochOptions,
} from './batches.js';
export * from './browser.js';
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
  Cifar10MetaError,
  Cifar10MissingFileError,
  Cifar10SubsetNotFoundError,
} from './errors.js';
export { META_FILE } from './format.js';
export { CROP_PADDING, type CropFlip, drawCropFlip, writeImage } from './preprocess.js';
export {
  type Cifar10Dataset,
  checkCifar10Dir,
  readCifar10,
  readCifar10Batches,
  readCifar10ClassNames,
} from './reader.js';
export { deriveSeed, Rng, type RngState } from './rng.js';
export {
  type CalibrationSplit,
  type CalibrationSplitOptions,
  selectImages,
  splitCalibration,
} from './split.js';
export { CIFAR10_DIR_ENV, findBundledSubset } from './subset.js';
