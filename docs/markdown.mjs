// Shared by the docs checks (check-snippets.mjs, run-examples.mjs): which Markdown pages count as docs, and
// their fenced code blocks. Plain Node, no dependencies.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const docsDir = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.dirname(docsDir);

// Folders that hold no docs of the repository: dependencies, build output, and (gitignored) run output.
const SKIPPED_FOLDERS = new Set(['node_modules', 'dist', 'coverage', 'reports', 'runs']);

/** Markdown files under `dir` (recursively, sorted) whose name passes `keep`, outside skipped and dot folders. */
function markdownFiles(dir, keep) {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) {
        return SKIPPED_FOLDERS.has(name) || name.startsWith('.') ? [] : markdownFiles(full, keep);
      }
      return name.endsWith('.md') && keep(name) ? [full] : [];
    });
}

/** The docs: every Markdown file under docs/, and every README.md of the repository, as absolute paths. */
export function docPages() {
  const guides = markdownFiles(docsDir, () => true);
  const readmes = markdownFiles(repoRoot, (name) => name === 'README.md').filter(
    (file) => !file.startsWith(docsDir + path.sep),
  );
  return [...readmes, ...guides];
}

/**
 * The fenced code blocks of a Markdown text: `{ line, lang, attributes, code }`, with `line` the 1-based line
 * of the opening fence, `lang` the first word of its info string, `attributes` the rest (trimmed) and `code`
 * the lines between the fences, less the opening fence's indentation.
 */
export function fencedBlocks(markdown) {
  const blocks = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^( *)(`{3,}|~{3,})\s*(\S*)\s*(.*?)\s*$/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, lang, attributes] = open;
    const close = new RegExp(`^\\s*${fence[0]}{${fence.length},}\\s*$`);
    let end = i + 1;
    while (end < lines.length && !close.test(lines[end])) end++;
    const unindent = new RegExp(`^ {0,${indent.length}}`);
    const code = lines.slice(i + 1, end).map((line) => line.replace(unindent, ''));
    blocks.push({ line: i + 1, lang, attributes, code: code.join('\n') });
    i = end;
  }
  return blocks;
}
