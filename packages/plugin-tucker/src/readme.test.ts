import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

// The formatter re-indents code blocks in Markdown, so excerpts are compared line by line without indentation.
const unindented = (text: string) =>
  text
    .split('\n')
    .map((line) => line.trim())
    .join('\n');

it('quotes its own code verbatim in the README tutorial', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  // Blocks that open with `// <file of this package>` are excerpts of that file (their info string says so).
  const excerpts = [...readme.matchAll(/```\w+[^\n]*\n\/\/ ((?:src\/\S+)|package\.json)\n([\s\S]*?)```/g)];
  expect(excerpts.length).toBeGreaterThanOrEqual(7);
  for (const [, file, code] of excerpts) {
    const source = readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');
    expect(unindented(source), `README excerpt of ${file}`).toContain(unindented(code!.trimEnd()));
  }
});
