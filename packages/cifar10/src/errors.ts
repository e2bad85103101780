/** Base class of every error this package throws, so callers can catch all data problems at once. */
export abstract class Cifar10Error extends Error {
  /** The file or folder the problem is about. */
  abstract readonly path: string;
}

/** A CIFAR-10 file or folder that should exist does not. */
export class Cifar10MissingFileError extends Cifar10Error {
  override readonly name = 'Cifar10MissingFileError';
  constructor(
    readonly path: string,
    readonly kind: 'file' | 'folder',
  ) {
    super(
      `CIFAR-10 ${kind} not found: ${path}. Point to the folder holding data_batch_1.bin .. data_batch_5.bin, ` +
        'test_batch.bin and batches.meta.txt (the cifar-10-batches-bin folder of the official binary archive), ' +
        'or call downloadCifar10({ cacheDir }) to fetch the official archive.',
    );
  }
}

/** A batch file whose contents are not CIFAR-10 binary records (empty, truncated, bad label). */
export class Cifar10FormatError extends Cifar10Error {
  override readonly name = 'Cifar10FormatError';
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(
      `${path} is not a valid CIFAR-10 binary batch: ${problem}. Each record must be 3073 bytes ` +
        '(1 label byte 0-9, then 3072 pixel bytes); re-download or re-extract the official cifar-10-binary.tar.gz.',
    );
  }
}

/** `batches.meta.txt` does not hold the 10 class names, one a line. */
export class Cifar10MetaError extends Cifar10Error {
  override readonly name = 'Cifar10MetaError';
  constructor(
    readonly path: string,
    readonly found: number,
  ) {
    super(
      `${path} should list 10 class names, one a line, but has ${found}. ` +
        'Restore it from the official cifar-10-binary.tar.gz.',
    );
  }
}

/** The downloaded archive's md5 does not match the expected one (it was deleted so the next try starts clean). */
export class Cifar10ChecksumError extends Cifar10Error {
  override readonly name = 'Cifar10ChecksumError';
  constructor(
    readonly path: string,
    readonly expectedMd5: string,
    readonly actualMd5: string,
  ) {
    super(
      `md5 of ${path} is ${actualMd5}, expected ${expectedMd5}; the download is corrupt or the URL serves another ` +
        'file. The file was deleted: run again to download it anew, or check the url/expectedMd5 options.',
    );
  }
}

/** The archive could not be fetched (HTTP error status or a connection that kept failing). */
export class Cifar10DownloadError extends Cifar10Error {
  override readonly name = 'Cifar10DownloadError';
  constructor(
    readonly path: string,
    readonly url: string,
    readonly reason: string,
  ) {
    super(
      `Could not download ${url} to ${path}: ${reason}. Check the network and run again (a partial download ` +
        'resumes), or download cifar-10-binary.tar.gz yourself, extract it and pass its cifar-10-batches-bin folder.',
    );
  }
}

/** The `@decompose/cifar10-subset` package is installed without its `data/` folder. */
export class Cifar10SubsetNotFoundError extends Cifar10Error {
  override readonly name = 'Cifar10SubsetNotFoundError';
  constructor(readonly path: string) {
    super(
      `The bundled CIFAR-10 subset is missing: ${path} is not a folder. Reinstall @decompose/cifar10-subset ` +
        "(pnpm install), set DECOMPOSE_CIFAR10_DIR to a folder in CIFAR-10's binary layout, or fetch the full " +
        'set with downloadCifar10({ cacheDir }).',
    );
  }
}
