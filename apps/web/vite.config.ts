import { fileURLToPath } from 'node:url';
import { defaultClientConditions, defineConfig } from 'vite';

/** The folder served as the page's static root (models, images); `DECOMPOSE_WEB_DATA` overrides it. */
const dataDir = process.env.DECOMPOSE_WEB_DATA ?? fileURLToPath(new URL('./data', import.meta.url));

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  // Relative asset URLs, so the built page works from any folder a static server puts it in.
  base: './',
  publicDir: dataDir,
  resolve: { conditions: ['@decompose/source', ...defaultClientConditions] },
  // tfjs-core, -layers and the wasm backend make one ~600 kB chunk; splitting it would not load faster.
  build: { outDir: 'dist/site', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 1024 },
  preview: { host: '127.0.0.1' },
  server: { host: '127.0.0.1' },
});
