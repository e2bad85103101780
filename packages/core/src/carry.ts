// Carrying a rewritten layer's regularisers and constraints over to the layers that replace it.
import type { Layer } from './strategy.js';

/** The slots of stock tfjs-layers layers (`Conv2D`, `Dense`, …) that hold regularisers and constraints. */
interface Slots {
  kernelRegularizer?: unknown;
  biasRegularizer?: unknown;
  activityRegularizer?: unknown;
  kernelConstraint?: unknown;
  biasConstraint?: unknown;
  useBias?: unknown;
}
type Slot = Exclude<keyof Slots, 'useBias'>;

const slotsOf = (layer: Layer) => layer as unknown as Slots;

/** The value in `slot` of `layer`, or null when it has none (or no such slot). */
function slotValue(layer: Layer, slot: Slot): { getClassName(): string } | null {
  const value = slotsOf(layer)[slot];
  return value !== null && typeof value === 'object' ? (value as { getClassName(): string }) : null;
}

/** Whether `layer` has `slot` and nothing in it, so a value can be put there before the layer is built. */
const freeSlot = (layer: Layer, slot: Slot) => slot in layer && slotValue(layer, slot) === null;

const describe = (value: { getClassName(): string }) => value.getClassName();

/**
 * Puts the regularisers and constraints of `original` on its `replacements` (unbuilt, applied in order), where
 * they mean the same: the kernel regulariser on every replacement's kernel, the bias regulariser and constraint
 * on the last replacement's bias (the only bias of the output), the activity regulariser on the last replacement
 * (the same output), and the kernel constraint on the kernel of a single replacement (a constraint on a kernel
 * that several layers factor bounds none of them). A slot a strategy filled itself is left as it is. Returns one
 * note per setting that could not be carried, saying why.
 */
export function carryOver(original: Layer, replacements: readonly Layer[]): string[] {
  const notes: string[] = [];
  const last = replacements[replacements.length - 1];
  if (last === undefined) return notes;
  const carry = (slot: Slot, targets: readonly Layer[], why: string) => {
    const value = slotValue(original, slot);
    if (value === null) return;
    const free = targets.filter((layer) => freeSlot(layer, slot));
    for (const layer of free) (slotsOf(layer) as Record<Slot, unknown>)[slot] = value;
    if (free.length === 0 && !targets.some((layer) => slotValue(layer, slot) !== null)) {
      notes.push(`its ${slotName(slot)} ${describe(value)} was not carried over: ${why}`);
    }
  };
  const withKernel = replacements.filter((layer) => 'kernelRegularizer' in layer);
  carry(
    'kernelRegularizer',
    withKernel,
    `no replacement layer (${classes(replacements)}) takes a kernel regulariser`,
  );
  const hasBias = slotsOf(last).useBias === true;
  const biasWhy = hasBias
    ? `the last replacement layer (${last.getClassName()}) takes none`
    : `the last replacement layer (${last.getClassName()}) has no bias`;
  carry('biasRegularizer', hasBias ? [last] : [], biasWhy);
  carry('biasConstraint', hasBias ? [last] : [], biasWhy);
  carry('activityRegularizer', [last], `the last replacement layer (${last.getClassName()}) takes none`);
  carry(
    'kernelConstraint',
    replacements.length === 1 ? withKernel : [],
    replacements.length === 1
      ? `the replacement layer (${last.getClassName()}) takes no kernel constraint`
      : `it bounds the original kernel, which ${replacements.length} layers now factor; constrain the replacements' kernels yourself if needed`,
  );
  return notes;
}

function slotName(slot: Slot): string {
  return {
    kernelRegularizer: 'kernel regulariser',
    biasRegularizer: 'bias regulariser',
    activityRegularizer: 'activity regulariser',
    kernelConstraint: 'kernel constraint',
    biasConstraint: 'bias constraint',
  }[slot];
}

const classes = (layers: readonly Layer[]) => [...new Set(layers.map((l) => l.getClassName()))].join(', ');
