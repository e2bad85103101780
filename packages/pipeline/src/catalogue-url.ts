/**
 * The pipeline's catalogue module (its unit kinds: `scan-layer`, …), for `localExecutor({ catalogue })` and
 * `runQueueWorker({ catalogue })`. From the TypeScript sources (under vitest) it is the `.ts` file, which the
 * jobs package's threads and processors load through tsx; built, the `.js` beside this one.
 */
export const PIPELINE_CATALOGUE: URL = new URL(
  import.meta.url.endsWith('.ts') ? './catalogue.ts' : './catalogue.js',
  import.meta.url,
);
