import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { extract } from 'tar';
import { Cifar10ChecksumError, Cifar10DownloadError } from './errors.js';
import { checkCifar10Dir } from './reader.js';

/** Where the official binary archive is published (the CIFAR-10 home page, University of Toronto). */
export const CIFAR10_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz';
/** md5 of the official `cifar-10-binary.tar.gz`, as published on the CIFAR-10 home page. */
export const CIFAR10_MD5 = 'c32a1d4ab5d03f1284b67883e8d87530';
/** The folder inside the archive that holds the batch files. */
export const CIFAR10_ARCHIVE_FOLDER = 'cifar-10-batches-bin';
const ARCHIVE_NAME = 'cifar-10-binary.tar.gz';

/** Progress of {@link downloadCifar10}. */
export interface DownloadProgress {
  /** `download`: bytes arriving; `verify`: md5 being checked; `extract`: unpacking. */
  readonly phase: 'download' | 'verify' | 'extract';
  /** Bytes of the archive on disk so far (including a resumed part). */
  readonly receivedBytes: number;
  /** Size of the archive, when the server tells it. */
  readonly totalBytes?: number;
}

/** Options of {@link downloadCifar10}. */
export interface DownloadOptions {
  /** Folder that receives `cifar-10-batches-bin/` (created if missing). */
  readonly cacheDir: string;
  /** Archive URL (default {@link CIFAR10_URL}). */
  readonly url?: string;
  /** Expected md5 of the archive (default {@link CIFAR10_MD5}). */
  readonly expectedMd5?: string;
  /** Called as bytes arrive and when verification and extraction start. */
  readonly onProgress?: (progress: DownloadProgress) => void;
  /** How many times a dropped connection is resumed within this call (default 3). */
  readonly retries?: number;
  /** Aborts the download; the partial file stays for the next call to resume. */
  readonly signal?: AbortSignal;
}

/** Either a folder the caller already has (used as is, no network) or where to download to. */
export type Cifar10Source = { readonly dataDir: string } | DownloadOptions;

/** A failure worth retrying by resuming: the connection broke or ended early. */
class InterruptedError extends Error {
  override readonly name = 'InterruptedError';
}

async function sizeOf(path: string): Promise<number | undefined> {
  return stat(path).then(
    (info) => info.size,
    () => undefined,
  );
}

async function isValidDir(dir: string): Promise<boolean> {
  return checkCifar10Dir(dir).then(
    () => true,
    () => false,
  );
}

async function md5Of(path: string): Promise<string> {
  const hash = createHash('md5');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/**
 * Fetches `url` into `part`, continuing from its current length with an HTTP Range request. Starts over
 * when the server ignores Range (200) or rejects it (416: the part is longer than the file), or when the
 * Content-Range it answers with does not start where the part ends.
 *
 * @returns whether bytes were appended to an existing part (the md5 then checks the join too).
 */
async function fetchIntoPart(
  url: string,
  part: string,
  options: DownloadOptions,
  onProgress: (progress: DownloadProgress) => void,
): Promise<boolean> {
  const have = (await sizeOf(part)) ?? 0;
  let response: Response;
  try {
    response = await fetch(url, {
      // identity: byte offsets must count the file itself, never a compressed transfer of it.
      headers: { 'Accept-Encoding': 'identity', ...(have > 0 ? { Range: `bytes=${have}-` } : {}) },
      signal: options.signal,
    });
  } catch (error) {
    if (options.signal?.aborted) throw error;
    throw new InterruptedError(String((error as Error).cause ?? error));
  }
  let offset = 0;
  let totalBytes: number | undefined;
  if (response.status === 206) {
    const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(response.headers.get('content-range') ?? '');
    if (range === null || Number(range[1]) !== have) {
      await response.body?.cancel();
      if (have === 0) throw new Cifar10DownloadError(part, url, 'the server sent partial content unasked');
      await rm(part, { force: true });
      return fetchIntoPart(url, part, options, onProgress);
    }
    offset = have;
    totalBytes = range[2] === '*' ? undefined : Number(range[2]);
  } else if (response.status === 416 && have > 0) {
    await response.body?.cancel();
    await rm(part, { force: true });
    return fetchIntoPart(url, part, options, onProgress);
  } else if (response.ok && response.body !== null) {
    const length = response.headers.get('content-length');
    totalBytes = length === null ? undefined : Number(length);
  } else {
    await response.body?.cancel();
    throw new Cifar10DownloadError(
      part,
      url,
      `the server answered HTTP ${response.status} ${response.statusText}`,
    );
  }

  let receivedBytes = offset;
  const count = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      receivedBytes += chunk.length;
      onProgress({ phase: 'download', receivedBytes, totalBytes });
      done(null, chunk);
    },
  });
  try {
    await pipeline(
      Readable.fromWeb(response.body as WebReadableStream<Uint8Array>),
      count,
      createWriteStream(part, { flags: offset > 0 ? 'a' : 'w' }),
    );
  } catch (error) {
    if (options.signal?.aborted) throw error;
    throw new InterruptedError(`the connection broke after ${receivedBytes} bytes (${String(error)})`);
  }
  if (totalBytes !== undefined && receivedBytes !== totalBytes) {
    throw new InterruptedError(`the connection ended after ${receivedBytes} of ${totalBytes} bytes`);
  }
  return offset > 0;
}

/** Downloads into `part`, resuming up to `retries` times after a dropped connection. */
async function downloadPart(
  url: string,
  part: string,
  options: DownloadOptions,
  onProgress: (progress: DownloadProgress) => void,
): Promise<boolean> {
  const retries = options.retries ?? 3;
  let resumed = false;
  for (let attempt = 0; ; attempt++) {
    try {
      return (await fetchIntoPart(url, part, options, onProgress)) || resumed;
    } catch (error) {
      if (!(error instanceof InterruptedError)) throw error;
      if (attempt >= retries) throw new Cifar10DownloadError(part, url, error.message);
      resumed = true;
    }
  }
}

/** Unpacks `archive` into a temporary folder beside `target`, checks it, then renames it into place. */
async function extractInto(archive: string, cacheDir: string, target: string): Promise<void> {
  const staging = await mkdtemp(join(cacheDir, '.extract-'));
  try {
    await extract({ file: archive, cwd: staging, strict: true });
    const extracted = join(staging, CIFAR10_ARCHIVE_FOLDER);
    await checkCifar10Dir(extracted);
    await rm(target, { recursive: true, force: true });
    await rename(extracted, target);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * Makes the full CIFAR-10 data set available in `cacheDir/cifar-10-batches-bin` and returns that folder.
 *
 * If the folder is already there and complete, nothing touches the network. Otherwise the official
 * archive is downloaded with `fetch` to `cifar-10-binary.tar.gz.part` (a broken connection resumes with
 * an HTTP Range request, now or on the next call), its md5 is checked, and it is unpacked with `tar` into
 * a temporary folder that is renamed into place, so a crash never leaves a half-extracted set.
 *
 * @throws Cifar10DownloadError for HTTP errors or a connection that keeps breaking (the part is kept);
 *   Cifar10ChecksumError for a wrong md5 (the file is deleted, so the next call starts clean);
 *   Cifar10MissingFileError / Cifar10FormatError if the archive lacks the expected files.
 */
export async function downloadCifar10(options: DownloadOptions): Promise<string> {
  const cacheDir = resolve(options.cacheDir);
  const target = join(cacheDir, CIFAR10_ARCHIVE_FOLDER);
  if (await isValidDir(target)) return target;

  const url = options.url ?? CIFAR10_URL;
  const expectedMd5 = (options.expectedMd5 ?? CIFAR10_MD5).toLowerCase();
  const onProgress = options.onProgress ?? (() => {});
  await mkdir(cacheDir, { recursive: true });
  const archive = join(cacheDir, ARCHIVE_NAME);
  const part = `${archive}.part`;

  const verify = async (path: string): Promise<string> => {
    onProgress({ phase: 'verify', receivedBytes: (await sizeOf(path)) ?? 0 });
    return md5Of(path);
  };
  // An archive left by a run that stopped before extracting is reused if it is intact.
  if ((await sizeOf(archive)) !== undefined && (await verify(archive)) !== expectedMd5) {
    await rm(archive, { force: true });
  }
  if ((await sizeOf(archive)) === undefined) {
    const resumed = await downloadPart(url, part, options, onProgress);
    let actualMd5 = await verify(part);
    if (actualMd5 !== expectedMd5 && resumed) {
      // The join of an old part and new bytes can be bad (the file changed on the server): start clean once.
      await rm(part, { force: true });
      await downloadPart(url, part, options, onProgress);
      actualMd5 = await verify(part);
    }
    if (actualMd5 !== expectedMd5) {
      await rm(part, { force: true });
      throw new Cifar10ChecksumError(part, expectedMd5, actualMd5);
    }
    await rename(part, archive);
  }
  onProgress({ phase: 'extract', receivedBytes: (await sizeOf(archive)) ?? 0 });
  await extractInto(archive, cacheDir, target);
  await rm(archive, { force: true });
  return target;
}

/**
 * Returns a folder holding CIFAR-10 in the binary layout: `dataDir` as given (checked, never any
 * network; the runner's `--data DIR`), or else the result of {@link downloadCifar10}.
 *
 * @throws Cifar10MissingFileError / Cifar10FormatError if `dataDir` lacks files; see {@link downloadCifar10}.
 */
export async function resolveCifar10Dir(source: Cifar10Source): Promise<string> {
  if ('dataDir' in source) {
    const dir = resolve(source.dataDir);
    await checkCifar10Dir(dir);
    return dir;
  }
  return downloadCifar10(source);
}
