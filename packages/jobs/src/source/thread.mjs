// Entry of a local executor's worker thread when the package runs from its TypeScript sources.
import './register.mjs';

await import('../local-thread.ts');
