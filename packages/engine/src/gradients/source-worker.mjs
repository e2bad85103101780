// Entry of a gradient worker when the engine runs from its TypeScript sources (under vitest): registers
// hooks that transpile .ts on load, then starts the worker. Built packages run dist/gradients/worker.js.
import { register } from 'node:module';

register('./source-hooks.mjs', import.meta.url);
await import('./worker.ts');
