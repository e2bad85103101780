import { defineConfig } from 'vitest/config';

/** Settings every package's vitest.config.ts shares: resolve workspace packages to their TypeScript sources. */
export const sharedConfig = defineConfig({
  resolve: { conditions: ['@decompose/source'] },
  ssr: { resolve: { conditions: ['@decompose/source'] } },
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
