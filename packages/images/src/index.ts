// Image folders (one subfolder of PNG/JPEG images per class) read into @decompose/cifar10 image sets.

export { decodeImage, type RgbaImage } from './decode.js';
export {
  ImageDecodeError,
  ImageFolderClassesError,
  ImageFolderEmptyError,
  ImageFolderNotFoundError,
  ImageFolderOptionError,
  ImagesError,
} from './errors.js';
export {
  DEFAULT_SPLIT_SEED,
  DEFAULT_TEST_FRACTION,
  IMAGE_EXTENSIONS,
  IMAGENET_MEAN,
  IMAGENET_STD,
  type ImageFolder,
  type ImageFolderOptions,
  imageFolderLayout,
  isImageFolder,
  MAX_CLASSES,
  readImageFolder,
} from './folder.js';
export { resizeBilinearRgb } from './resize.js';
export { type SyntheticFolderOptions, writeSyntheticImageFolder } from './synthetic.js';
