// Entry of a worker thread or child process that runs a workspace module from its TypeScript sources (see
// workerEntry in threads.ts): registers the hooks that transpile .ts on load, then imports the module named by
// the first argument after the script. Built packages start their compiled .js directly.
import { register } from 'node:module';

register('./gradients/source-hooks.mjs', import.meta.url);
const entry = process.argv[2];
if (entry === undefined)
  throw new Error('source-entry.mjs needs the URL of the module to run as its argument.');
await import(entry);
