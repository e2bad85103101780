// Entry of a sensitivity scan worker when the runner runs from its TypeScript sources (under vitest): registers
// the engine's transpile-on-load hooks (the ones its gradient workers use; the engine does not export them, so
// they are found beside the engine's source entry), then starts the worker. Built code runs scan-worker.js.
import { register } from 'node:module';

register(new URL('./gradients/source-hooks.mjs', import.meta.resolve('@decompose/engine')));
await import('./scan-worker.ts');
