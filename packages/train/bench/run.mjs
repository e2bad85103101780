// Runs epoch.ts from TypeScript sources without a build: registers the engine's transpile-on-load hooks
// (start node with --conditions=@decompose/source so workspace packages resolve to their sources too).
import { register } from 'node:module';

register(import.meta.resolve('@decompose/engine/source-hooks'));
await import('./epoch.ts');
