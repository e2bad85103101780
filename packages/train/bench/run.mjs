// Runs epoch.ts from TypeScript sources without a build: registers the engine's transpile-on-load hooks
// (start node with --conditions=@decompose/source so workspace packages resolve to their sources too).
import { register } from 'node:module';

register('../../engine/src/gradients/source-hooks.mjs', import.meta.url);
await import('./epoch.ts');
