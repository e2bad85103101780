import { defineConfig } from 'vitest/config';

// One vitest run over every workspace package; each package's own vitest.config.ts extends this.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'bench'],
  },
});
