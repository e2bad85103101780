import { describe, expect, it } from 'vitest';
import { InvalidResNetOptionsError, resolveResNetOptions } from './options.js';

function rejection(options: unknown): InvalidResNetOptionsError {
  try {
    resolveResNetOptions(options);
  } catch (error) {
    if (error instanceof InvalidResNetOptionsError) return error;
    throw error;
  }
  throw new Error('expected InvalidResNetOptionsError');
}

describe('resolveResNetOptions', () => {
  it('fills in the defaults', () => {
    expect(resolveResNetOptions({ arch: 'resnet20' })).toEqual({
      arch: 'resnet20',
      shortcut: 'A',
      init: 'he-normal',
      numClasses: 10,
      seed: 0,
    });
    expect(resolveResNetOptions({ arch: 'resnet18' }).shortcut).toBe('B');
  });

  it('accepts depth as a shorthand for arch', () => {
    expect(resolveResNetOptions({ depth: 56 }).arch).toBe('resnet56');
    expect(resolveResNetOptions({ depth: 110, arch: 'resnet110' }).arch).toBe('resnet110');
  });

  it.each([
    [{ arch: 'resnet21' }, 'arch', /got "resnet21".*Allowed: resnet20, resnet32/],
    [{ depth: 21 }, 'depth', /got 21.*Allowed: 20, 32, 44, 56, 110, 18/],
    [{ depth: 20, shortcut: 'C' }, 'shortcut', /Allowed: A, B/],
    [{ depth: 20, init: 'glorot' }, 'init', /Allowed: he-normal, pytorch/],
    [{ depth: 20, numClasses: 1 }, 'numClasses', /got 1.*integer ≥ 2/],
    [{ depth: 20, seed: -1 }, 'seed', /got -1/],
    [{ depth: 20, width: 2 }, 'width', /unknown option.*Allowed: arch, depth/],
    [{}, 'arch', /give arch \(or depth\)/],
    [{ arch: 'resnet20', depth: 56 }, 'depth', /depth 56 contradicts arch resnet20/],
  ])('rejects %j naming the field', (options, field, message) => {
    const error = rejection(options);
    expect(error.name).toBe('InvalidResNetOptionsError');
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
  });
});
