import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { z } from 'zod';
import type { BlobStore } from './blobs.js';
import type { UnitCheckpoint } from './checkpoints.js';
import { UnitInputError, UnitResultError } from './errors.js';

/** A JSON value: what travels between the coordinator and workers (inputs, results, progress). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A unit's progress: a fraction in [0, 1], or counts (and any other JSON fields, e.g. a phase name). */
export type UnitProgress = number | { done: number; total: number; [key: string]: JsonValue };

/** What a unit's `run` gets besides its input. */
export interface UnitContext {
  /** Reports progress; it reaches the executor's `onProgress` (through Redis for the queue back end). */
  reportProgress(progress: UnitProgress): void;
  /** Aborted when the run is aborted (local back end) or the job is cancelled (queue back end). */
  readonly signal: AbortSignal;
  /** The executor's blob store: in memory for the local back end, Redis for the queue back end. */
  readonly blobs: BlobStore;
  /**
   * The unit's progress kept across attempts, keyed by its id: in Redis for the queue back end (a retry on
   * another worker reads it), in memory for the local back ends (running the unit again reads it). Cleared
   * once the unit completes.
   */
  readonly checkpoint: UnitCheckpoint;
}

/** What {@link defineUnitKind} takes. */
export interface UnitKindDefinition<In extends z.ZodType, Out extends z.ZodType> {
  /** The kind's name, unique in its catalogue, e.g. `'scan-entry'`. */
  kind: string;
  /** The version of the kind's code and result schema; part of every unit's identity, so bump it when results change. */
  version: string;
  /** Validates (and may default) the input before it is enqueued or run. */
  input: In;
  /** Validates the result when it comes back. */
  result: Out;
  /** Computes the result; a pure function of the input (deterministic by seed), so a retry gives the same result. */
  run(input: z.output<In>, context: UnitContext): Promise<z.input<Out>>;
}

/** A kind of unit of work, made by {@link defineUnitKind} and exported from a catalogue module. */
export interface UnitKind<In extends z.ZodType = z.ZodType, Out extends z.ZodType = z.ZodType>
  extends Readonly<UnitKindDefinition<In, Out>> {
  /** Marks the object as a unit kind, so catalogues can find their kinds among other exports. */
  readonly [unitKindBrand]: true;
  /** A unit of this kind (the input is validated when the unit is run, not here). */
  unit(input: z.input<In>, options?: UnitOptions): Unit<UnitKind<In, Out>>;
}

/** What a unit carries besides its input. */
export interface UnitOptions {
  /**
   * An estimate of the unit's run time, in any measure the units of one batch share: executors start the
   * dearest units first (longest-processing-time-first), so that the longest do not end up last on one worker
   * while the others idle. It orders work and changes no result, so it is not part of the unit's identity.
   */
  cost?: number;
}

/** One unit of work: a kind and its input. Its identity is {@link unitId}. */
export interface Unit<K extends UnitKind = UnitKind> {
  readonly kind: K;
  readonly input: K extends UnitKind<infer In, z.ZodType> ? z.input<In> : never;
  /** {@link UnitOptions.cost}. */
  readonly cost?: number;
}

/** The result type of a unit (the output of its kind's result schema). */
export type ResultOf<U extends Unit> =
  U['kind'] extends UnitKind<z.ZodType, infer Out> ? z.output<Out> : never;

const unitKindBrand = Symbol.for('@decompose/jobs.UnitKind');

/**
 * Defines a kind of unit. Export it from a catalogue module so that worker threads and queue workers can
 * import it: functions cannot be sent to another thread or machine, module specifiers can.
 */
export function defineUnitKind<In extends z.ZodType, Out extends z.ZodType>(
  definition: UnitKindDefinition<In, Out>,
): UnitKind<In, Out> {
  const kind: UnitKind<In, Out> = {
    ...definition,
    [unitKindBrand]: true,
    unit: (input, options) =>
      ({ kind, input, ...(options?.cost === undefined ? {} : { cost: options.cost }) }) as Unit<
        UnitKind<In, Out>
      >,
  };
  return Object.freeze(kind);
}

/** Whether a value is a unit kind made by {@link defineUnitKind}. */
export function isUnitKind(value: unknown): value is UnitKind {
  return (
    typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[unitKindBrand] === true
  );
}

/** A unit whose input passed its schema: the parsed input, as JSON, and the unit's identity. */
export interface PreparedUnit {
  readonly kind: string;
  readonly version: string;
  /** The parsed input, round-tripped through JSON: exactly what a worker receives. */
  readonly input: JsonValue;
  /** {@link unitId} of the unit. */
  readonly id: string;
  /** {@link UnitOptions.cost}; 0 when the unit has none. */
  readonly cost: number;
}

/**
 * A unit's identity: the SHA-256 of its kind, version and the canonical JSON (RFC 8785) of its parsed input,
 * prefixed with `u` (BullMQ refuses job ids that look like integers). Equal units get equal ids, so the queue
 * back end uses it as the job id and a re-submitted unit attaches to the job that exists.
 */
export function unitId(kind: string, version: string, input: JsonValue): string {
  const text = canonicalize([kind, version, input]);
  return `u${createHash('sha256')
    .update(text ?? 'null')
    .digest('hex')}`;
}

/** Validates a unit's input with its kind's schema and computes its identity; throws {@link UnitInputError}. */
export function prepareUnit(unit: Unit): PreparedUnit {
  const { kind, cost = 0 } = unit;
  if (!(Number.isFinite(cost) && cost >= 0)) {
    throw new UnitInputError(
      kind.kind,
      `its cost ${cost} is not a finite number ≥ 0 (an estimate of its run time)`,
    );
  }
  const parsed = kind.input.safeParse(unit.input);
  if (!parsed.success) throw new UnitInputError(kind.kind, describeIssues(parsed.error));
  let input: JsonValue;
  try {
    input = toJson(parsed.data);
  } catch (error) {
    throw new UnitInputError(kind.kind, `it is not JSON (${(error as Error).message})`);
  }
  return { kind: kind.kind, version: kind.version, input, id: unitId(kind.kind, kind.version, input), cost };
}

/**
 * The order in which executors start a batch's units: dearest {@link UnitOptions.cost} first, equal costs (and
 * units without one) in input order.
 */
export function dispatchOrder(units: readonly Pick<Unit, 'cost'>[]): number[] {
  // A bad cost (refused by prepareUnit, reported in the unit's outcome) counts as none, so the sort stays total.
  const costs = units.map(({ cost }) => (cost !== undefined && Number.isFinite(cost) && cost > 0 ? cost : 0));
  return costs.map((_cost, index) => index).sort((a, b) => costs[b]! - costs[a]! || a - b);
}

/** Checks a result with its kind's result schema (after a JSON round trip); throws {@link UnitResultError}. */
export function checkResult(kind: UnitKind, value: unknown): unknown {
  let json: JsonValue;
  try {
    json = toJson(value);
  } catch (error) {
    throw new UnitResultError(kind.kind, kind.version, `it is not JSON (${(error as Error).message})`);
  }
  const parsed = kind.result.safeParse(json);
  if (!parsed.success) throw new UnitResultError(kind.kind, kind.version, describeIssues(parsed.error));
  return parsed.data;
}

/**
 * Runs a prepared unit in this thread: parses the input again (workers do not trust the queue), runs it, and
 * checks the result. Every back end ends up here, so a unit behaves the same on all of them.
 */
export async function executeUnit(
  kind: UnitKind,
  input: JsonValue,
  context: UnitContext,
): Promise<JsonValue> {
  const parsed = kind.input.safeParse(input);
  if (!parsed.success) throw new UnitInputError(kind.kind, describeIssues(parsed.error));
  const result = await kind.run(parsed.data, context);
  // The JSON form (not the parsed one) travels back, so that the coordinator's parse sees what the queue holds.
  const json = (() => {
    try {
      return toJson(result);
    } catch (error) {
      throw new UnitResultError(kind.kind, kind.version, `it is not JSON (${(error as Error).message})`);
    }
  })();
  checkResult(kind, json);
  return json;
}

/** A JSON round trip: drops `undefined` fields, refuses what JSON cannot hold (NaN and ∞ become errors). */
export function toJson(value: unknown): JsonValue {
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'number' && !Number.isFinite(v)) throw new Error(`${v} is not a JSON number`);
    if (typeof v === 'bigint') throw new Error('a bigint is not a JSON number');
    return v;
  });
  if (text === undefined) throw new Error('undefined is not JSON');
  return JSON.parse(text) as JsonValue;
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}
