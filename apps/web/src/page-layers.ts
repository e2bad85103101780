// Imported by the page for its side effect: importing a layer package registers its custom classes with tfjs
// serialization, so the stock loadLayersModel can rebuild compressed models. SVD and Tucker replacements are
// stock layers and need nothing.
import { BasisConv2D } from '@decompose/basis';

/**
 * The custom layer classes the page registers. Every other layer of a model shown on the page must be a stock
 * tfjs-layers class: a plugin's own layer classes are unknown to the page, which cannot load them.
 */
export const PAGE_LAYER_CLASSES: readonly string[] = [BasisConv2D.className];
