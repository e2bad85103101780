// Module hooks for running the engine's TypeScript sources in a worker thread without a build (used only
// when the engine itself runs from src/, as under vitest): `.js` imports fall back to the `.ts` file beside
// them, and `.ts` files outside node_modules are transpiled with the repository's TypeScript. Transpiled
// files are cached by content hash, so only the first worker after a change pays for loading TypeScript.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cacheDirectory = new URL('../../node_modules/.cache/source-worker/', import.meta.url);
let typescript;

/** @type {import('node:module').ResolveHook} */
export async function resolve(specifier, context, nextResolve) {
  const parent = context.parentURL;
  if (parent?.endsWith('.ts') && specifier.startsWith('.') && specifier.endsWith('.js')) {
    const tsUrl = new URL(`${specifier.slice(0, -3)}.ts`, parent);
    if (!existsSync(new URL(specifier, parent)) && existsSync(tsUrl)) {
      return { url: tsUrl.href, format: 'module', shortCircuit: true };
    }
  }
  return nextResolve(specifier, context);
}

/** @type {import('node:module').LoadHook} */
export async function load(url, context, nextLoad) {
  if (url.startsWith('file:') && url.endsWith('.ts') && !url.includes('/node_modules/')) {
    return { format: 'module', source: await transpile(fileURLToPath(url)), shortCircuit: true };
  }
  return nextLoad(url, context);
}

async function transpile(path) {
  const source = readFileSync(path, 'utf8');
  const key = createHash('sha256').update(path).update('\0').update(source).digest('hex');
  const cached = new URL(`${key}.js`, cacheDirectory);
  if (existsSync(cached)) return readFileSync(cached, 'utf8');
  typescript ??= (await import('typescript')).default;
  const { outputText } = typescript.transpileModule(source, {
    fileName: path,
    compilerOptions: {
      module: typescript.ModuleKind.ESNext,
      target: typescript.ScriptTarget.ES2022,
      verbatimModuleSyntax: true,
      inlineSourceMap: true,
      inlineSources: true,
    },
  });
  // Write atomically: several workers may start, and transpile the same file, at once.
  mkdirSync(cacheDirectory, { recursive: true });
  const temporary = new URL(
    `${key}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`,
    cacheDirectory,
  );
  writeFileSync(temporary, outputText);
  renameSync(temporary, cached);
  return outputText;
}
