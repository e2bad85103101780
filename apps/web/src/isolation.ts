/**
 * The response headers that make a page cross-origin isolated (`crossOriginIsolated`), which browsers require
 * before they give it `SharedArrayBuffer`: without them tfjs's wasm backend cannot start its threaded build and
 * runs on one core. Every file of the site is same-origin, so `require-corp` blocks nothing the page loads.
 */
export const CROSS_ORIGIN_ISOLATION_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
});
