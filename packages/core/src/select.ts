import leven from 'leven';
import picomatch from 'picomatch';
import { UnknownLayerError } from './errors.js';
import type { Layer, TargetLayer } from './strategy.js';

/**
 * Which layers to rewrite: exact names, globs over names, or a predicate.
 *
 * Globs treat `.` as a separator: `*` matches within one name segment, `**` across segments, so
 * `stage2.*.conv1` matches `stage2.block1.conv1` but not `stage2.block1.sub.conv1`; `stage2.**` matches
 * everything under `stage2`. A string without glob characters is an exact name.
 */
export type LayerSelection = string | readonly string[] | ((target: TargetLayer) => boolean);

/** A layer that a selection may pick, by its name in the model (a path for a layer of a nested sub-model). */
export interface Candidate {
  name: string;
  layer: Layer;
}

/** A layer picked by a selection, and whether it was named exactly (explicit) or matched by glob/predicate. */
export interface SelectedLayer<C extends Candidate = Candidate> {
  candidate: C;
  explicit: boolean;
}

const MAX_CLOSE_NAMES = 5;

/** Up to five of `names` closest to `query` by edit distance, or containing it, closest first. */
export function closeNames(query: string, names: readonly string[]): string[] {
  const literal = query.replace(/[*?[\]{}()!]/g, '');
  const limit = Math.max(2, Math.floor(query.length / 3));
  return names
    .map((name) => ({ name, distance: leven(query, name) }))
    .filter(({ name, distance }) => distance <= limit || (literal.length > 0 && name.includes(literal)))
    .sort((a, b) => a.distance - b.distance || a.name.localeCompare(b.name))
    .slice(0, MAX_CLOSE_NAMES)
    .map(({ name }) => name);
}

/** Whether `selector` is a glob rather than an exact name. */
export function isGlob(selector: string): boolean {
  return picomatch.scan(selector).isGlob;
}

const asPath = (name: string) => name.replaceAll('.', '/');

/** A test of layer names against one selector: an exact name, or a glob with the rules of {@link LayerSelection}. */
export function layerNameMatcher(selector: string): (name: string) => boolean {
  if (!isGlob(selector)) return (name) => name === selector;
  const test = picomatch(asPath(selector), { dot: true });
  return (name) => test(asPath(name));
}

/**
 * The layers a selection picks among `candidates`, in candidate order. Every name or glob must match at
 * least one candidate, else an `UnknownLayerError` listing close names.
 */
export function selectLayers<C extends Candidate>(
  candidates: readonly C[],
  selection: LayerSelection,
  describe: (candidate: C) => TargetLayer,
): SelectedLayer<C>[] {
  if (typeof selection === 'function') {
    return candidates
      .filter((candidate) => selection(describe(candidate)))
      .map((candidate) => ({ candidate, explicit: false }));
  }
  const selectors = typeof selection === 'string' ? [selection] : selection;
  const explicit = new Set<C>();
  const matched = new Set<C>();
  const names = candidates.map((c) => c.name);
  for (const selector of selectors) {
    const glob = isGlob(selector);
    const matches = layerNameMatcher(selector);
    const hits = candidates.filter((c) => matches(c.name));
    if (hits.length === 0) throw new UnknownLayerError(selector, closeNames(selector, names));
    for (const hit of hits) (glob ? matched : explicit).add(hit);
  }
  return candidates
    .filter((candidate) => explicit.has(candidate) || matched.has(candidate))
    .map((candidate) => ({ candidate, explicit: explicit.has(candidate) }));
}
