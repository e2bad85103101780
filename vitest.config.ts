import { defineConfig } from 'vitest/config';

// One vitest run over every workspace package (each one's vitest.config.ts extends this) and the docs checks.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'bench', 'docs'],
  },
});
