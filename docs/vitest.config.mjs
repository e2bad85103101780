import { defineProject } from 'vitest/config';

// The docs checks' own tests (plain Node scripts, no workspace packages).
export default defineProject({ test: { name: 'docs' } });
