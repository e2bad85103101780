import { z } from 'zod';
import { ResNetError } from './errors.js';

/** The CIFAR ResNet-n family of He et al. (2016), n = 6·blocks + 2, plus the CIFAR variant of ResNet-18. */
export const ARCHITECTURES = [
  'resnet20',
  'resnet32',
  'resnet44',
  'resnet56',
  'resnet110',
  'resnet18',
] as const;
/** One of {@link ARCHITECTURES}. */
export type ResNetArch = (typeof ARCHITECTURES)[number];

/** Depths accepted by the `depth` shorthand (`{ depth: 56 }` is `{ arch: 'resnet56' }`). */
export const DEPTHS = [20, 32, 44, 56, 110, 18] as const;

/**
 * Shortcut at a stage transition: `A` is the parameter-free identity (stride-2 subsampling, new channels
 * zero), `B` a 1×1 stride-2 projection conv + BN.
 */
export const SHORTCUTS = ['A', 'B'] as const;
/** One of {@link SHORTCUTS}. */
export type Shortcut = (typeof SHORTCUTS)[number];

/**
 * Weight initialisation. `he-normal`: conv kernels N(0, 2/fan_out), fan_out = k·k·out_channels (PyTorch's
 * `kaiming_normal_(mode='fan_out', nonlinearity='relu')`, as torchvision's ResNets), the final dense layer
 * as in `pytorch`. `pytorch`: PyTorch's default for Conv2d/Linear, weights and biases U(-b, b) with
 * b = 1/√fan_in, fan_in = k·k·in_channels. BatchNorm starts at γ = 1, β = 0 in both.
 */
export const INITS = ['he-normal', 'pytorch'] as const;
/** One of {@link INITS}. */
export type InitScheme = (typeof INITS)[number];

const optionsSchema = z.strictObject({
  arch: z.enum(ARCHITECTURES).optional(),
  depth: z.union(DEPTHS.map((depth) => z.literal(depth))).optional(),
  shortcut: z.enum(SHORTCUTS).optional(),
  init: z.enum(INITS).default('he-normal'),
  numClasses: z.number().int().min(2).default(10),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .default(0),
});

/** Options of {@link createCifarResNet}: name the network by `arch` or by `depth`. */
export type CifarResNetOptions = z.input<typeof optionsSchema>;

/** {@link CifarResNetOptions} with every default filled in. */
export interface ResolvedResNetOptions {
  arch: ResNetArch;
  /** Default `A` for the ResNet-n family, `B` for ResNet-18 (its usual projection shortcuts). */
  shortcut: Shortcut;
  /** Default `he-normal`. */
  init: InitScheme;
  /** Default 10. */
  numClasses: number;
  /** Default 0: the same seed always gives the same weights. */
  seed: number;
}

const ALLOWED: Readonly<Record<string, string>> = {
  arch: ARCHITECTURES.join(', '),
  depth: DEPTHS.join(', '),
  shortcut: SHORTCUTS.join(', '),
  init: INITS.join(', '),
  numClasses: 'an integer ≥ 2',
  seed: 'an integer in [0, 2^32)',
};

/** Thrown by {@link createCifarResNet} for options it cannot build; names the field and what it accepts. */
export class InvalidResNetOptionsError extends ResNetError {
  override readonly name = 'InvalidResNetOptionsError';
  constructor(
    readonly field: string,
    readonly allowed: string,
    detail: string,
  ) {
    super(`Invalid ResNet option '${field}': ${detail}. Allowed: ${allowed}.`);
  }
}

function describeValue(value: unknown): string {
  return value === undefined ? 'missing' : `got ${JSON.stringify(value)}`;
}

/** Validates `options` and fills in the defaults; throws {@link InvalidResNetOptionsError}. */
export function resolveResNetOptions(options: unknown): ResolvedResNetOptions {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue?.code === 'unrecognized_keys') {
      throw new InvalidResNetOptionsError(
        issue.keys[0] ?? '',
        Object.keys(ALLOWED).join(', '),
        'unknown option',
      );
    }
    const field = String(issue?.path[0] ?? 'options');
    const given =
      typeof options === 'object' && options !== null ? (options as Record<string, unknown>)[field] : options;
    throw new InvalidResNetOptionsError(
      field,
      ALLOWED[field] ?? 'an object of options',
      describeValue(given),
    );
  }
  const { arch, depth, shortcut, ...rest } = parsed.data;
  const fromDepth = depth === undefined ? undefined : (`resnet${depth}` as ResNetArch);
  if (arch === undefined && fromDepth === undefined) {
    throw new InvalidResNetOptionsError('arch', ALLOWED.arch ?? '', 'give arch (or depth)');
  }
  if (arch !== undefined && fromDepth !== undefined && arch !== fromDepth) {
    throw new InvalidResNetOptionsError(
      'depth',
      `${arch.slice('resnet'.length)} or omit it`,
      `depth ${depth} contradicts arch ${arch}`,
    );
  }
  const resolvedArch = arch ?? (fromDepth as ResNetArch);
  return { arch: resolvedArch, shortcut: shortcut ?? (resolvedArch === 'resnet18' ? 'B' : 'A'), ...rest };
}
