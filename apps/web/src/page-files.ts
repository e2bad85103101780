import { access, mkdir, readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import writeFileAtomic from 'write-file-atomic';
import { WebError } from './errors.js';

/** Where `vite build` puts the page (`apps/web/dist/site`), seen from both `src/` and `dist/`. */
export const BUILT_PAGE_DIR = fileURLToPath(new URL('../dist/site/', import.meta.url));

/** The page's own files in a built page folder: its HTML and Vite's hashed scripts, styles and `.wasm` files. */
const PAGE_ENTRY = 'index.html';
const PAGE_ASSETS = 'assets';

/** Thrown by {@link copyPage} when the page has not been built. */
export class PageNotBuiltError extends WebError {
  override readonly name = 'PageNotBuiltError';
  constructor(
    /** The folder that should hold the built page. */
    readonly pageDir: string,
  ) {
    super(
      `The browser page is not built: ${join(pageDir, PAGE_ENTRY)} is missing. Build it from the repository root ` +
        'with `npx -y pnpm@10.34.9 exec turbo run build --filter=@decompose/web`.',
    );
  }
}

/**
 * Copies the built page (`index.html` and `assets/`, relative URLs) into `dir`, so that `dir`, once filled by
 * `prepareSite`, can be served by any static server. Each file is written atomically. Files that `vite build`
 * copied from its public folder are left out: the prepared files belong to `prepareSite`. Returns the copied
 * files, relative to `dir`.
 *
 * @throws PageNotBuiltError if `pageDir` (default {@link BUILT_PAGE_DIR}) holds no built page.
 */
export async function copyPage(dir: string, pageDir: string = BUILT_PAGE_DIR): Promise<string[]> {
  try {
    await access(join(pageDir, PAGE_ENTRY));
  } catch {
    throw new PageNotBuiltError(pageDir);
  }
  const assets = await readdir(join(pageDir, PAGE_ASSETS), { recursive: true, withFileTypes: true }).catch(
    () => [],
  );
  const files = [
    PAGE_ENTRY,
    ...assets
      .filter((entry) => entry.isFile())
      .map((entry) => relative(pageDir, join(entry.parentPath, entry.name))),
  ];
  for (const file of files) {
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await writeFileAtomic(join(dir, file), await readFile(join(pageDir, file)));
  }
  return files;
}
