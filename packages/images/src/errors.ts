/** Base class of every error this package throws, so callers can catch all image-folder problems at once. */
export abstract class ImagesError extends Error {
  /** The file or folder the problem is about. */
  abstract readonly path: string;
}

/** The image folder does not exist or is not a folder. */
export class ImageFolderNotFoundError extends ImagesError {
  override readonly name = 'ImageFolderNotFoundError';
  constructor(readonly path: string) {
    super(
      `Image folder not found: ${path}. Point to a folder holding one subfolder of PNG/JPEG images per class ` +
        '(<dir>/<class>/*.png), or train/ and test/ folders laid out that way.',
    );
  }
}

/** The folder holds no classes, or a class (or a split) holds no PNG/JPEG image. */
export class ImageFolderEmptyError extends ImagesError {
  override readonly name = 'ImageFolderEmptyError';
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(
      `${path} ${problem}. An image folder holds one subfolder per class with .png, .jpg or .jpeg files in it ` +
        '(<dir>/<class>/*.png), or train/ and test/ folders laid out that way; add images or remove the empty folder.',
    );
  }
}

/** The train/ and test/ folders of a split layout do not hold the same classes. */
export class ImageFolderClassesError extends ImagesError {
  override readonly name = 'ImageFolderClassesError';
  constructor(
    readonly path: string,
    readonly trainClasses: readonly string[],
    readonly testClasses: readonly string[],
  ) {
    super(
      `${path}: train/ holds the classes [${trainClasses.join(', ')}] but test/ holds [${testClasses.join(', ')}]. ` +
        'Give both splits the same class subfolders (an empty class is not allowed).',
    );
  }
}

/** A file with an image extension that is not a PNG or JPEG this package can decode. */
export class ImageDecodeError extends ImagesError {
  override readonly name = 'ImageDecodeError';
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(
      `Cannot decode ${path}: ${reason}. Only PNG and JPEG (baseline or progressive) images are read; ` +
        're-save the file in one of them, or move it out of the image folder.',
    );
  }
}

/** An option of {@link readImageFolder} out of range (size, test share, normalisation). */
export class ImageFolderOptionError extends ImagesError {
  override readonly name = 'ImageFolderOptionError';
  constructor(
    readonly path: string,
    readonly option: string,
    readonly problem: string,
  ) {
    super(`Reading ${path}: option '${option}' ${problem}.`);
  }
}
