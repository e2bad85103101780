import { describe, expect, it } from 'vitest';
import {
  caseLabel,
  compareSides,
  expectedPeerParams,
  formatSpread,
  imagesPerSecond,
  oursOn,
  peerCases,
  sideFigures,
  spreadOf,
} from './peer-summary.js';

const sample = (calls: number, ms: number, cpuMs = ms) => ({ calls, ms, cpu_ms: cpuMs });

describe('peerCases', () => {
  it('times three ResNet-20 variants × train/eval × 1/2 cores at batch 128, then batch-1 latency', () => {
    const cases = peerCases();
    expect(cases).toHaveLength(3 * 2 * 2 + 2 * 2);
    expect(new Set(cases.map(caseLabel)).size).toBe(cases.length);
    expect(cases.filter((c) => c.batch === 1).map(caseLabel)).toEqual([
      'resnet20 dense eval b1 1 core',
      'resnet20 dense eval b1 2 cores',
      'mobilenet dense eval b1 1 core',
      'mobilenet dense eval b1 2 cores',
    ]);
    expect(cases.filter((c) => c.net === 'resnet20' && c.batch === 128).map((c) => c.variant)).toEqual(
      expect.arrayContaining(['dense', 'basis 0.5', 'svd 0.5']),
    );
  });

  it('splits a batch over 2 workers on 2 cores, but runs one image in this thread', () => {
    const base = { net: 'resnet20', variant: 'dense', mode: 'eval' } as const;
    expect(oursOn({ ...base, batch: 128, cores: 2 })).toBe('2 workers');
    expect(oursOn({ ...base, batch: 128, cores: 1 })).toBe('main-thread');
    expect(oursOn({ ...base, batch: 1, cores: 2 })).toBe('main-thread');
  });
});

describe('figures', () => {
  it('counts images per second of wall time over all calls of a sample', () => {
    expect(imagesPerSecond(sample(4, 500), 128)).toBe(1024);
    expect(imagesPerSecond(sample(1, 2), 1)).toBe(500);
  });

  it('takes the upper middle value as the median and reports the range', () => {
    expect(spreadOf([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3 });
    expect(spreadOf([4, 1, 3, 2])).toEqual({ median: 3, min: 1, max: 4 });
    expect(() => spreadOf([])).toThrow(RangeError);
  });

  it('makes one side’s img/s, latency and img per CPU-second from its samples', () => {
    const figures = sideFigures([sample(1, 1000, 2000), sample(2, 1000, 2000), sample(1, 500, 1000)], 128);
    expect(figures.img_per_s).toEqual({ median: 256, min: 128, max: 256 });
    expect(figures.ms_per_image).toBe(3.91); // 1000 / 256, three digits
    expect(figures.img_per_cpu_s).toBe(128);
    expect(figures.samples).toHaveLength(3);
  });

  it('compares ours with PyTorch by the medians and round by round', () => {
    const pytorch = [sample(1, 100), sample(1, 200), sample(1, 100)]; // 1280, 640, 1280 img/s
    const ours = [sample(1, 200), sample(1, 200), sample(1, 400)]; // 640, 640, 320 img/s
    const comparison = compareSides(ours, pytorch, 128);
    expect(comparison.ratio).toBe(0.5); // 640 / 1280
    expect(comparison.ratio_per_round).toEqual({ median: 0.5, min: 0.25, max: 1 });
    expect(() => compareSides(ours, pytorch.slice(1), 128)).toThrow(/one sample of each side per round/);
  });

  it('prints a median with its range', () => {
    expect(formatSpread({ median: 812, min: 790.5, max: 850 })).toBe('812 (790.5–850)');
  });
});

describe('expectedPeerParams', () => {
  it('adds the m × m identity block the naive PyTorch basis layer keeps, per basis layer', () => {
    expect(expectedPeerParams(272_474, [])).toBe(272_474);
    expect(expectedPeerParams(1000, [8, 16])).toBe(1000 + 64 + 256);
  });
});
