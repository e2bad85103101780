// Lets a thread or process run this package's TypeScript sources (and a catalogue's) without a build: only
// used when the package itself runs from src/, as under vitest. Built packages run dist/ and never load this.
import { register } from 'tsx/esm/api';

const key = Symbol.for('@decompose/jobs.tsx');
globalThis[key] ??= register();
