import { availableParallelism, homedir } from 'node:os';
import path from 'node:path';
import { checkRedisUrl } from '@decompose/jobs';
import { PIPELINE_QUEUE } from '@decompose/pipeline';
import { ARCHITECTURES, INITS, SHORTCUTS } from '@decompose/resnet';
import { z } from 'zod';
import { MAX_INPUT_SIDE, parseInputSize, parseNormalize } from './data.js';
import { ConfigError } from './errors.js';
import { readConfigFile } from './files.js';

/** Where `--download` puts the full CIFAR-10 set unless `cacheDir` says otherwise. */
export const DEFAULT_CACHE_DIR = path.join(homedir(), '.cache', 'decompose');

/** The accepted values of a number field: `min` to `max`, each end included unless marked open. */
export interface NumberRange {
  min: number;
  max: number;
  /** Whole numbers only. */
  whole?: boolean;
  /** `min` itself is refused. */
  minOpen?: boolean;
  /** `max` itself is refused. */
  maxOpen?: boolean;
}

/** Upper bounds of the numeric fields: far beyond any sensible run, low enough to stop absurd values early. */
export const LIMITS = {
  /** Images of a split or a subset of one (CIFAR-10 has 50,000 training and 10,000 test images). */
  images: 1_000_000,
  batch: 65_536,
  epochs: 1000,
  /** Gradient or scan worker threads. */
  workers: 256,
  /** Seeds are 32-bit. */
  seed: 2 ** 32 - 1,
  /** Timed steps or calls of a measurement. */
  steps: 10_000,
  /** A learning rate. */
  lr: 10,
} as const;

function inRange(value: number, range: NumberRange): boolean {
  return (
    (!range.whole || Number.isInteger(value)) &&
    (range.minOpen ? value > range.min : value >= range.min) &&
    (range.maxOpen ? value < range.max : value <= range.max)
  );
}

/** `a whole number in [1, 128]`, `in (0, 10]`: what `range` accepts, for an error message. */
function describeRange(range: NumberRange): string {
  const interval = `${range.minOpen ? '(' : '['}${range.min}, ${range.max}${range.maxOpen ? ')' : ']'}`;
  return `${range.whole ? 'a whole number ' : ''}in ${interval}`;
}

/**
 * A number field accepting `range`. One check, so that a bad value gives one message, naming the field (`what`,
 * as in the config file) and the range, with `hint` after it, e.g. `lr must be in (0, 10] (e.g. 0.1)`.
 */
export function bounded(what: string, range: NumberRange, hint?: string) {
  return z
    .number()
    .refine(
      (value) => inRange(value, range),
      `${what} must be ${describeRange(range)}${hint ? ` (${hint})` : ''}`,
    );
}

/** A whole number in [min, max]; see {@link bounded}. */
export function wholeNumber(what: string, min: number, max: number, hint?: string) {
  return bounded(what, { min, max, whole: true }, hint);
}

/** A whole number in [1, max]. */
const count = (what: string, max: number) => wholeNumber(what, 1, max);

/** A seed: a whole number in [0, 2^32 - 1]. */
export const seedField = (what: string) => wholeNumber(what, 0, LIMITS.seed);

/**
 * A check of a value against a range only known once the data is read (e.g. a batch no larger than the
 * training images), worded as the schema's checks.
 *
 * @throws ConfigError naming `field`, the value and the range, with `why` the range is what it is.
 */
export function checkRange(field: string, value: number, range: NumberRange, why: string): void {
  if (!inRange(value, range)) {
    throw new ConfigError([`${field}: got ${value}; must be ${describeRange(range)} (${why})`]);
  }
}

/**
 * Checks, once the data is read, that an SGD batch fits in the training images (a larger one would be one partial
 * batch per epoch, which is never what was meant).
 *
 * @throws ConfigError naming `field` (e.g. `--batch`).
 */
export function checkTrainingBatch(field: string, batch: number, trainImages: number): void {
  checkRange(
    field,
    batch,
    { min: 1, max: trainImages, whole: true },
    `a training batch holds at most the ${trainImages} training images`,
  );
}

/** Gradient (or scan) worker threads when not given: one per core, and none (the main thread) on one core. */
export function defaultWorkers(cores: number = availableParallelism()): number {
  return cores > 1 ? Math.min(cores, LIMITS.workers) : 0;
}

const workersField = () => wholeNumber('workers', 0, LIMITS.workers, '0 computes on the main thread');

/** Gradient worker threads of a command that trains; 0 computes on the main thread. Default {@link defaultWorkers}. */
const workersFieldSchema = workersField().default(() => defaultWorkers());

/** A batch size. */
export const batchField = () => count('batch', LIMITS.batch);

/** A Redis URL for `--queue`: `redis://HOST:PORT[/DB]` (or `rediss://`). */
export const queueUrlSchema = z.string().refine(
  (url) => {
    try {
      checkRedisUrl(url);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'queue must be redis://HOST:PORT[/DB] (or rediss:// for TLS), e.g. redis://127.0.0.1:6379' },
);

/** A queue's name: what coordinators and `decompose worker` processes meet on. */
export const queueNameSchema = z
  .string()
  .regex(/^[\w.-]+$/, 'queueName must be letters, digits, "_", "-" or "." (e.g. decompose)');

/** The queue fields of a command that can run its units on workers: the Redis URL and the queue's name. */
export const queueFields = {
  /** Run the units on `decompose worker` processes through this Redis (absent: in this process). */
  queue: queueUrlSchema.optional(),
  /** The queue's name (the workers' `--queue-name`); default the pipeline's. */
  queueName: queueNameSchema.default(PIPELINE_QUEUE),
};

/** Where the images come from; shared by every command that reads data. */
export const dataFields = {
  /** A CIFAR-10 folder in the binary layout, or an image folder (`<dir>/<class>/*.png`); default the bundled subset. */
  data: z.string().min(1).optional(),
  /** `HxW` an image folder's images are resized to; default the model's input size. */
  inputSize: z
    .string()
    .refine(
      (v) => parseInputSize(v) !== null,
      `inputSize must be HxW, whole numbers in [1, ${MAX_INPUT_SIDE}] (e.g. 64x64)`,
    )
    .optional(),
  /** Per-channel normalisation, `mean,std` or `r,g,b,r,g,b` (means then stds) of pixels in [0, 1]. */
  normalize: z
    .string()
    .refine(
      (v) => parseNormalize(v) !== null,
      'normalize must be mean,std or three means then three stds, means in [0, 1] and stds in (0, 10] ' +
        '(e.g. 0.485,0.456,0.406,0.229,0.224,0.225, or 0,1 for pixels in [0, 1])',
    )
    .optional(),
  /** Share of each class an image folder without train/ and test/ holds out as its test split; default 0.2. */
  testFraction: bounded(
    'testFraction',
    { min: 0, max: 1, minOpen: true, maxOpen: true },
    'e.g. 0.2',
  ).optional(),
  /** Seed of that split; default 0. */
  splitSeed: seedField('splitSeed').optional(),
  /** Download the full CIFAR-10 set into `cacheDir` (once) and use it. */
  download: z.boolean().default(false),
  cacheDir: z.string().min(1).default(DEFAULT_CACHE_DIR),
  /** Use only the first N training images (smoke runs). */
  limitTrain: count('limitTrain', LIMITS.images).optional(),
  /** Use only the first N test images (smoke runs). */
  limitTest: count('limitTest', LIMITS.images).optional(),
};

/** Print the command's result as one JSON document on stdout, and nothing else there (`eval`, `compress`, `inspect`). */
const jsonField = z.boolean().default(false);

/** The model a command builds from scratch. */
const modelFields = {
  model: z.enum(ARCHITECTURES).default('resnet20'),
  shortcut: z.enum(SHORTCUTS).optional(),
  init: z.enum(INITS).optional(),
};

/** SGD and schedule settings, shared by `train` and the fine-tuning of `compress`. */
const sgdFields = {
  batch: batchField().default(128),
  lr: bounded('lr', { min: 0, max: LIMITS.lr, minOpen: true }, 'e.g. 0.1').default(0.1),
  momentum: bounded('momentum', { min: 0, max: 1, maxOpen: true }, 'e.g. 0.9').default(0.9),
  nesterov: z.boolean().default(false),
  weightDecay: bounded('weightDecay', { min: 0, max: 1 }, 'e.g. 5e-4').default(5e-4),
  decayOn: z.enum(['all', 'kernels']).default('all'),
  schedule: z.enum(['cosine', 'step', 'constant']).default('cosine'),
  /** Epochs at which the step schedule multiplies the rate by `gamma`; default half and three quarters. */
  milestones: z.array(count('each milestone', LIMITS.epochs)).optional(),
  gamma: bounded('gamma', { min: 0, max: 1, minOpen: true }, 'e.g. 0.1').default(0.1),
  warmupEpochs: bounded('warmupEpochs', { min: 0, max: LIMITS.epochs }).default(0),
  labelSmoothing: bounded('labelSmoothing', { min: 0, max: 1, maxOpen: true }).default(0),
  augment: z.boolean().default(true),
  workers: workersFieldSchema,
  seed: seedField('seed').default(0),
};

/** A refinement rejecting `a` and `b` together (a boolean `b` counts only when true). */
function notBoth(
  a: string,
  b: string,
): [(value: Record<string, unknown>) => boolean, z.core.$ZodCustomParams] {
  return [
    (value) => value[a] === undefined || value[b] === undefined || value[b] === false,
    { message: `give either ${a} or ${b}, not both`, path: [b] },
  ];
}

/** `decompose train`. */
export const trainConfigSchema = z
  .strictObject({
    ...modelFields,
    ...dataFields,
    ...sgdFields,
    epochs: count('epochs', LIMITS.epochs).default(15),
    /** Output folder: checkpoints, `model/`, `summary.json`, `train.log`; default `runs/<model>`. */
    out: z.string().min(1).optional(),
    resume: z.boolean().default(false),
    /** Training images kept out of training as a stratified calibration split for `decompose sensitivity`. */
    holdOut: count('holdOut', LIMITS.images).optional(),
    /** Seed of that split; default `seed`. */
    holdOutSeed: seedField('holdOutSeed').optional(),
    ...queueFields,
  })
  .refine(...notBoth('data', 'download'))
  .refine((c) => c.holdOutSeed === undefined || c.holdOut !== undefined, {
    message: 'holdOutSeed needs holdOut (the number of images to hold out)',
    path: ['holdOutSeed'],
  })
  .refine((c) => !(c.resume && c.queue !== undefined), {
    message:
      'resume is for a run in this process; a --queue run keeps its job in the queue: run the same command again to re-attach',
    path: ['resume'],
  });
/** A validated `decompose train` configuration, defaults filled in. */
export type TrainConfig = z.output<typeof trainConfigSchema>;

/** `decompose eval`. */
export const evalConfigSchema = z
  .strictObject({
    modelDir: z.string().min(1, 'modelDir is the folder holding model.json'),
    ...dataFields,
    batch: batchField().default(128),
    json: jsonField,
  })
  .refine(...notBoth('data', 'download'));
/** A validated `decompose eval` configuration, defaults filled in. */
export type EvalConfig = z.output<typeof evalConfigSchema>;

/** `decompose inspect`. */
export const inspectConfigSchema = z.strictObject({
  modelDir: z.string().min(1).optional(),
  ...modelFields,
  json: jsonField,
  /** Measure each layer's forward and forward+backward time (off: costs only). */
  timing: z.boolean().default(true),
  /** Images per timed call. */
  batch: batchField().default(32),
  repeats: count('repeats', LIMITS.steps).default(5),
});
/** A validated `decompose inspect` configuration, defaults filled in. */
export type InspectConfig = z.output<typeof inspectConfigSchema>;

/** Augmented training images the BatchNorm statistics are re-estimated on after a surgery, unless given. */
export const DEFAULT_BN_IMAGES = 1024;

/**
 * Augmented training images to re-estimate the BatchNorm moving statistics on right after surgery ("adaptive
 * BatchNorm"); 0 keeps the statistics of the model before surgery. Shared by `compress` and `compare`.
 */
export const bnImagesFieldSchema = wholeNumber(
  'bnImages',
  0,
  LIMITS.images,
  "0 keeps the model's BatchNorm statistics; e.g. 1024",
).default(DEFAULT_BN_IMAGES);

/** `decompose compress`. */
export const compressConfigSchema = z
  .strictObject({
    modelDir: z.string().min(1, 'modelDir is the folder holding model.json'),
    /** `basis`, `svd`, or a plugin (package name or file path). */
    strategy: z.string().min(1),
    /** The strategy's options: an object, or its JSON text on the command line. */
    options: z.union([z.record(z.string(), z.unknown()), z.string()]).optional(),
    /** Shorthand for `options: { ratio }`. */
    ratio: bounded('ratio', { min: 0, max: 1, minOpen: true }).optional(),
    /** Layer names or globs; a comma-separated string on the command line. */
    layers: z.union([z.array(z.string().min(1)), z.string().min(1)]).optional(),
    /** A selection file (from `decompose sensitivity`) giving options per layer. */
    selection: z.string().min(1).optional(),
    initFrom: z.enum(['trained', 'scratch']).default('trained'),
    fineTuneEpochs: wholeNumber('fineTuneEpochs', 0, LIMITS.epochs).default(0),
    bnImages: bnImagesFieldSchema,
    ...dataFields,
    ...sgdFields,
    lr: bounded('lr', { min: 0, max: LIMITS.lr, minOpen: true }, 'e.g. 0.01').default(0.01),
    out: z.string().min(1),
    json: jsonField,
  })
  .refine(...notBoth('data', 'download'))
  .refine(...notBoth('options', 'ratio'));
/** A validated `decompose compress` configuration, defaults filled in. */
export type CompressConfig = z.output<typeof compressConfigSchema>;

/** `decompose bench`. */
export const benchConfigSchema = z.strictObject({
  ...modelFields,
  batch: batchField().default(32),
  steps: count('steps', LIMITS.steps).default(3),
  /** Unlike the training commands, bench measures on the main thread unless told otherwise. */
  workers: workersField().default(0),
});
/** A validated `decompose bench` configuration, defaults filled in. */
export type BenchConfig = z.output<typeof benchConfigSchema>;

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function valueAt(input: unknown, keys: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of keys) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function shown(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}

/** Where the fields of a configuration came from, to name them the way the user wrote them. */
interface Sources {
  flags: ReadonlySet<string>;
  file?: string;
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown, sources: Sources, known: string[]): string[] {
  const value = valueAt(input, issue.path);
  // Named as the user wrote it: a flag, a field of the file, or (when missing) either way to give it.
  const where = (field: string, top: string) => {
    const flag = `--${kebab(top)}`;
    const inFile = sources.file ? `'${field}' in ${sources.file}` : null;
    if (sources.flags.has(top)) return flag;
    if (value === undefined && top !== '') return inFile ? `${flag} (or ${inFile})` : flag;
    return inFile ?? `'${field}'`;
  };
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${where(key, key)}: unknown field; expected one of ${known.join(', ')}`);
  }
  const field = issue.path.map(String).join('.') || '(whole config)';
  const top = String(issue.path[0] ?? '');
  return [`${where(field, top)}: got ${shown(value)}; ${issue.message}`];
}

/**
 * A command's configuration: the config file (YAML or JSON, if given) with command-line flags laid over it,
 * validated by `schema` (defaults filled in). Flags whose value is `undefined` were not given.
 *
 * @throws ConfigError naming each bad field (as `--flag` or as the file's field), its value and the expected form;
 *   ConfigFileError when the file cannot be read or parsed.
 */
export async function resolveConfig<Schema extends z.ZodType>(
  schema: Schema,
  flags: Readonly<Record<string, unknown>>,
  configFile?: string,
): Promise<z.output<Schema>> {
  const fromFile = configFile === undefined ? {} : await readConfigFile(configFile);
  if (fromFile === null || typeof fromFile !== 'object' || Array.isArray(fromFile)) {
    throw new ConfigError([
      `${configFile} must hold a mapping of fields (e.g. 'epochs: 2'), got ${shown(fromFile)}`,
    ]);
  }
  const given = Object.fromEntries(Object.entries(flags).filter(([, value]) => value !== undefined));
  const input = { ...(fromFile as Record<string, unknown>), ...given };
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const sources: Sources = { flags: new Set(Object.keys(given)), file: configFile };
  const known = Object.keys(shapeOf(schema)).sort();
  throw new ConfigError(parsed.error.issues.flatMap((issue) => describeIssue(issue, input, sources, known)));
}

/** The fields of an object schema, looking through refinements. */
function shapeOf(schema: z.ZodType): Record<string, unknown> {
  const def = (schema as unknown as { def: { shape?: Record<string, unknown>; in?: z.ZodType } }).def;
  if (def.shape) return def.shape;
  return def.in ? shapeOf(def.in) : {};
}

/**
 * Reads a number-like command-line value as a number; anything else stays a string, so that validation
 * reports it with the flag's name.
 */
export function numberArg(value: string): number | string {
  const parsed = Number(value);
  return value.trim() !== '' && Number.isFinite(parsed) ? parsed : value;
}
