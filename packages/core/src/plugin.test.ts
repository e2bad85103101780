import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  DuplicateStrategyError,
  InvalidPluginError,
  PluginImportError,
  UnknownStrategyError,
} from './errors.js';
import { loadStrategyPlugin } from './node.js';
import { StrategyRegistry } from './registry.js';
import { identityStrategy } from './test/identity-strategy.js';

const fixtures = fileURLToPath(new URL('./test/plugins/', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`./test/plugins/${name}`, import.meta.url));

async function loadError(specifier: string, from?: string): Promise<Error> {
  try {
    await loadStrategyPlugin(specifier, from === undefined ? {} : { from });
  } catch (error) {
    return error as Error;
  }
  throw new Error(`loading '${specifier}' did not fail`);
}

describe('loadStrategyPlugin', () => {
  it('loads a named `strategy` export by absolute path, or by path relative to `from`', async () => {
    expect(await loadStrategyPlugin(fixture('good.ts'))).toEqual([identityStrategy]);
    expect(await loadStrategyPlugin('./good.ts', { from: fixtures })).toEqual([identityStrategy]);
  });

  it('loads every strategy of a `strategies` array', async () => {
    const loaded = await loadStrategyPlugin(fixture('several.ts'));
    expect(loaded.map((s) => s.name)).toEqual(['identity', 'identity-2']);
  });

  it('lists exactly what a strategy lacks or has wrong, naming the plugin', async () => {
    const error = await loadError(fixture('missing-cost.ts'));
    expect(error).toBeInstanceOf(InvalidPluginError);
    expect((error as InvalidPluginError).problems).toEqual([
      'default.version: expected a version string, got number 2',
      'default.cost: expected a function (shape, options) => LayerCost, got nothing',
      'default.layerCosts.BasisConv2D: expected a function (layer, context) => LayerCost, got string "cheap"',
    ]);
    expect(error.message).toContain(`Strategy plugin '${fixture('missing-cost.ts')}'`);
  });

  it('rejects a module whose export is not an object, or that exports nothing usable', async () => {
    expect((await loadError(fixture('not-object.ts'))) as InvalidPluginError).toMatchObject({
      name: 'InvalidPluginError',
      problems: ['default: expected a strategy object, got number 42'],
    });
    expect((await loadError(fixture('no-exports.ts'))) as InvalidPluginError).toMatchObject({
      problems: ["it has no default export and no 'strategy' or 'strategies' export (exports: helper)"],
    });
  });

  it('wraps a module that throws on import, or cannot be found, with the cause', async () => {
    const thrown = await loadError(fixture('throws.ts'));
    expect(thrown).toBeInstanceOf(PluginImportError);
    expect(thrown.message).toBe(
      `Could not import strategy plugin '${fixture('throws.ts')}': plugin top-level failure`,
    );
    expect((thrown.cause as Error).message).toBe('plugin top-level failure');

    const missing = await loadError('decompose-plugin-that-does-not-exist', fixtures);
    expect(missing).toBeInstanceOf(PluginImportError);
    expect(missing.message).toContain("Cannot find package 'decompose-plugin-that-does-not-exist'");
  });
});

describe('StrategyRegistry', () => {
  it('registers, gets and lists strategies by name, rejecting duplicates and unknown names', () => {
    const registry = new StrategyRegistry().register(identityStrategy, {
      ...identityStrategy,
      name: 'another',
    });
    expect(registry.names()).toEqual(['another', 'identity']);
    expect(registry.get('identity')).toBe(identityStrategy);
    expect(registry.list().map((s) => s.name)).toEqual(['another', 'identity']);
    expect(registry.has('svd')).toBe(false);
    expect(() => registry.register(identityStrategy)).toThrow(DuplicateStrategyError);
    expect(() => registry.get('svd')).toThrow(new UnknownStrategyError('svd', ['another', 'identity']));
    expect(() => new StrategyRegistry().register(identityStrategy, identityStrategy)).toThrow(
      "A strategy named 'identity' is already registered",
    );
  });
});
