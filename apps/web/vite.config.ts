import { fileURLToPath } from 'node:url';
import { defaultClientConditions, defineConfig, type Plugin } from 'vite';
import { CROSS_ORIGIN_ISOLATION_HEADERS } from './src/isolation.js';

/** The folder served as the page's static root (models, images); `DECOMPOSE_WEB_DATA` overrides it. */
const dataDir = process.env.DECOMPOSE_WEB_DATA ?? fileURLToPath(new URL('./data', import.meta.url));

/**
 * tfjs-backend-wasm starts the pthread workers of its threaded build on the text of its module factory,
 * `wasmFactoryThreadedSimd.toString()`. Once bundled, that function refers to names of the bundle's scope
 * (hoisted and renamed), which the workers do not have: they fail ("e is not defined") and the backend hangs.
 * The workers get the factory's file as published instead, a script that defines it by itself.
 */
function threadedWasmWorkersFromSource(): Plugin {
  const factoryText = /`var WasmBackendModuleThreadedSimd = `\s*\+\s*wasmFactoryThreadedSimd\.toString\(\)/;
  return {
    name: 'decompose:threaded-wasm-workers-from-source',
    enforce: 'pre',
    transform(code, id) {
      if (!id.replaceAll('\\', '/').endsWith('/tfjs-backend-wasm/dist/backend_wasm.js')) return null;
      if (!factoryText.test(code)) {
        this.error('tfjs-backend-wasm no longer builds its workers from wasmFactoryThreadedSimd.toString()');
      }
      return {
        code:
          "import threadedFactorySource from '../wasm-out/tfjs-backend-wasm-threaded-simd.js?raw';\n" +
          code.replace(factoryText, 'threadedFactorySource'),
        map: null,
      };
    },
  };
}

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  // Relative asset URLs, so the built page works from any folder a static server puts it in.
  base: './',
  publicDir: dataDir,
  plugins: [threadedWasmWorkersFromSource()],
  resolve: { conditions: ['@decompose/source', ...defaultClientConditions] },
  // tfjs-core, -layers and the wasm backend make one ~600 kB chunk (the threaded factory's text adds 55 kB);
  // splitting it would not load faster.
  build: { outDir: 'dist/site', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 1024 },
  // Cross-origin isolated, as serveSite serves the page: the wasm backend's threaded build needs it.
  preview: { host: '127.0.0.1', headers: { ...CROSS_ORIGIN_ISOLATION_HEADERS } },
  server: { host: '127.0.0.1', headers: { ...CROSS_ORIGIN_ISOLATION_HEADERS } },
});
