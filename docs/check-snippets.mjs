#!/usr/bin/env node
// Checks that code quoted in the docs is the repository's real code: every fenced block whose info string
// carries `file=<path>` (e.g. ```ts file=packages/plugin-tucker/src/strategy.ts) must appear in that file,
// compared after collapsing every run of whitespace to one space (so excerpts may be re-indented). A line
// holding only `// …` or `// ...` (or `# …`) elides code: the parts around it must appear in that order.
//
// Usage (from anywhere): node docs/check-snippets.mjs [page.md ...]
// Without arguments it checks every .md file under docs/ and every README.md of the repository. Paths in
// `file=` are relative to the repository root (the parent of this script's folder). Exit code 0 when every
// block matches, 1 otherwise. Plain Node, no dependencies, so CI can run it before or without a build.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { docPages, fencedBlocks, repoRoot } from './markdown.mjs';

/** Fenced blocks of a Markdown text that name their source file: `{ file, line, code }`. */
export function taggedBlocks(markdown) {
  return fencedBlocks(markdown).flatMap(({ line, attributes, code }) => {
    const file = /(?:^|\s)file=(\S+)/.exec(attributes)?.[1];
    return file === undefined ? [] : [{ file, line, code }];
  });
}

const normalise = (text) => text.replace(/\s+/g, ' ').trim();
const ELISION = /^\s*(?:\/\/|#)\s*(?:…|\.\.\.)\s*$/;

/** The parts of an excerpt between elision lines, normalised; empty parts dropped. */
function excerptParts(code) {
  const parts = [[]];
  for (const line of code.split('\n')) {
    if (ELISION.test(line)) parts.push([]);
    else parts.at(-1).push(line);
  }
  return parts.map((part) => normalise(part.join('\n'))).filter((part) => part !== '');
}

/**
 * Why `code` is not an excerpt of `source`, or null when it is. The reason quotes the longest leading piece
 * of the first missing part that the source does contain, so the first wrong token is easy to find.
 */
export function mismatch(code, source) {
  const text = normalise(source);
  const parts = excerptParts(code);
  if (parts.length === 0) return 'the block is empty';
  let from = 0;
  for (const [index, part] of parts.entries()) {
    const at = text.indexOf(part, from);
    if (at >= 0) {
      from = at + part.length;
      continue;
    }
    const words = part.split(' ');
    let found = 0;
    while (found < words.length && text.includes(words.slice(0, found + 1).join(' '), from)) found++;
    const where = parts.length > 1 ? `part ${index + 1} of ${parts.length}` : 'the block';
    const order = text.includes(part) ? ' (it appears, but before the previous part)' : '';
    if (order) return `${where} is out of order${order}`;
    const matched = words.slice(Math.max(0, found - 8), found).join(' ');
    const wrong = words.slice(found, found + 8).join(' ');
    return found === 0
      ? `${where} does not occur; it starts with "${wrong}"`
      : `${where} differs after "${matched}": the file has no "… ${wrong}"`;
  }
  return null;
}

function main(args) {
  const pages = args.length > 0 ? args.map((a) => path.resolve(a)) : docPages();
  let checked = 0;
  const failures = [];
  for (const page of pages) {
    const shown = path.relative(repoRoot, page);
    for (const block of taggedBlocks(readFileSync(page, 'utf8'))) {
      checked++;
      let source;
      try {
        source = readFileSync(path.join(repoRoot, block.file), 'utf8');
      } catch {
        failures.push(
          `${shown}:${block.line}: file=${block.file} does not exist (paths are from the repo root)`,
        );
        continue;
      }
      const reason = mismatch(block.code, source);
      if (reason !== null)
        failures.push(`${shown}:${block.line}: not an excerpt of ${block.file}: ${reason}`);
    }
  }
  for (const failure of failures) console.error(failure);
  console.log(
    `docs snippets: ${checked - failures.length} of ${checked} blocks match their files (${pages.length} pages)`,
  );
  return failures.length === 0 ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
