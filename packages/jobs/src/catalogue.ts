import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CatalogueError, UnitVersionError, UnknownUnitKindError } from './errors.js';
import { isUnitKind, type UnitKind } from './unit.js';

/** Where a catalogue module is: a `file:` URL (string or `URL`) or an absolute path. */
export type CatalogueRef = string | URL;

/** A loaded catalogue: the unit kinds a module exports, by name. */
export interface Catalogue {
  /** The module's `file:` URL, which worker threads and queue workers import. */
  readonly url: string;
  readonly kinds: ReadonlyMap<string, UnitKind>;
  /** The kind of a unit; throws {@link UnknownUnitKindError} or {@link UnitVersionError}. */
  get(kind: string, version?: string): UnitKind;
}

/**
 * The URL of a catalogue module. Bare specifiers are refused: a worker resolves imports from its own
 * location, not the caller's, so the caller resolves them (`import.meta.resolve('pkg/catalogue')`).
 */
export function catalogueUrl(ref: CatalogueRef): string {
  if (ref instanceof URL) return ref.href;
  if (ref.startsWith('file:')) return new URL(ref).href;
  if (path.isAbsolute(ref)) return pathToFileURL(ref).href;
  throw new CatalogueError(`'${ref}'`, 'is neither a file: URL nor an absolute path');
}

/** Imports a catalogue module and collects the unit kinds it exports; throws {@link CatalogueError}. */
export async function loadCatalogue(ref: CatalogueRef): Promise<Catalogue> {
  const url = catalogueUrl(ref);
  let module: Record<string, unknown>;
  try {
    module = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    throw new CatalogueError(url, `cannot be imported (${(error as Error).message})`);
  }
  return catalogueOf(url, Object.values(module));
}

/** A catalogue from values (the exports of a module); throws {@link CatalogueError}. */
export function catalogueOf(url: string, values: readonly unknown[]): Catalogue {
  const kinds = new Map<string, UnitKind>();
  for (const value of values) {
    if (!isUnitKind(value)) continue;
    const other = kinds.get(value.kind);
    if (other !== undefined && other !== value)
      throw new CatalogueError(url, `exports two kinds named '${value.kind}'`);
    kinds.set(value.kind, value);
  }
  if (kinds.size === 0) throw new CatalogueError(url, 'exports no unit kinds');
  return {
    url,
    kinds,
    get(name, version) {
      const kind = kinds.get(name);
      if (kind === undefined) throw new UnknownUnitKindError(name, [...kinds.keys()]);
      if (version !== undefined && kind.version !== version)
        throw new UnitVersionError(name, version, kind.version);
      return kind;
    },
  };
}
