import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { taggedBlocks } from './check-snippets.mjs';
import { docPages, fencedBlocks, repoRoot } from './markdown.mjs';
import { examples } from './run-examples.mjs';

const fence = '```';
const page = (...blocks) =>
  blocks.map(([info, ...code]) => [`${fence}${info}`, ...code, fence].join('\n')).join('\n\ntext\n\n');

describe('fencedBlocks', () => {
  it('reads language, attributes, opening line and code, less the fence indentation', () => {
    const markdown = `# title\n\n- item:\n\n  ${fence}ts  module=a.ts \n  const a = 1;\n    nested();\n  ${fence}\n\n~~~sh\nls\n~~~\n`;
    expect(fencedBlocks(markdown)).toEqual([
      { line: 5, lang: 'ts', attributes: 'module=a.ts', code: 'const a = 1;\n  nested();' },
      { line: 10, lang: 'sh', attributes: '', code: 'ls' },
    ]);
  });

  it('ends a block only at a fence at least as long as the opening one', () => {
    const markdown = `${fence}\`md\n${fence}ts\ninner\n${fence}\n${fence}\`\n${fence}js\nouter\n${fence}`;
    expect(fencedBlocks(markdown).map((b) => [b.line, b.lang])).toEqual([
      [1, 'md'],
      [6, 'js'],
    ]);
  });
});

describe('examples', () => {
  it('takes ts, js and sh blocks, and leaves other languages and file= quotes alone', () => {
    const markdown = page(
      ['ts', 'a();'],
      ['typescript', 'b();'],
      ['js', 'c();'],
      ['bash', 'd'],
      ['json', '{}'],
      ['', 'output'],
      ['ts file=packages/core/src/index.ts', 'export {};'],
    );
    const { examples: found, problems } = examples(markdown);
    expect(problems).toEqual([]);
    expect(found.map((e) => [e.lang, e.code])).toEqual([
      ['ts', 'a();'],
      ['ts', 'b();'],
      ['js', 'c();'],
      ['sh', 'd'],
    ]);
    expect(found.every((e) => e.norun === null && e.module === null)).toBe(true);
  });

  it('opts a block out with norun and its reason, and names module blocks', () => {
    const { examples: found, problems } = examples(
      page(['sh norun: trains for hours', 'decompose train'], ['ts module=bottleneck.ts', 'export {};']),
    );
    expect(problems).toEqual([]);
    expect(found).toEqual([
      { line: 1, lang: 'sh', code: 'decompose train', module: null, norun: 'trains for hours' },
      { line: 7, lang: 'ts', code: 'export {};', module: 'bottleneck.ts', norun: null },
    ]);
  });

  it('reports tags it cannot read instead of running the block', () => {
    const { examples: found, problems } = examples(
      page(
        ['sh norun', 'x'],
        ['ts norun:', 'x'],
        ['ts nroun: typo', 'x'],
        ['sh module=a.ts', 'x'],
        ['ts module=../a.ts', 'x'],
      ),
    );
    expect(found).toEqual([]);
    expect(problems.map((p) => [p.line, p.message.split(':')[0]])).toEqual([
      [1, 'norun needs a reason'],
      [7, 'norun needs a reason'],
      [13, "unknown tag 'nroun"],
      [19, 'module=a.ts'],
      [25, 'module=../a.ts'],
    ]);
  });
});

it('keeps taggedBlocks to the blocks that quote a file', () => {
  expect(taggedBlocks(page(['ts file=a.ts', 'x'], ['ts', 'y']))).toEqual([
    { file: 'a.ts', line: 1, code: 'x' },
  ]);
});

it('finds every README and the docs pages, outside node_modules', () => {
  const pages = docPages().map((p) => path.relative(repoRoot, p));
  expect(pages).toEqual(
    expect.arrayContaining(['README.md', 'packages/core/README.md', 'apps/runner/README.md', 'docs/cli.md']),
  );
  expect(pages.filter((p) => p.includes('node_modules') || !p.endsWith('.md'))).toEqual([]);
});
