import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { augmentedImages } from './images.js';
import { syntheticImages } from './test-fixtures.js';

beforeAll(async () => {
  await initEngine();
});

describe('augmentedImages', () => {
  it('gives count normalised images, the same for the same seed and others for another', () => {
    const data = syntheticImages(20);
    const first = augmentedImages(data, 8, 3);
    const again = augmentedImages(data, 8, 3);
    const other = augmentedImages(data, 8, 4);
    expect(first.shape).toEqual([8, 32, 32, 3]);
    expect(Array.from(again.dataSync())).toEqual(Array.from(first.dataSync()));
    expect(Array.from(other.dataSync())).not.toEqual(Array.from(first.dataSync()));
    tf.dispose([first, again, other]);
  });

  it('stops at the size of the data set and rejects a count that is not a positive integer', () => {
    const data = syntheticImages(5);
    const all = augmentedImages(data, 100);
    expect(all.shape[0]).toBe(5);
    all.dispose();
    expect(() => augmentedImages(data, 0)).toThrow(/positive integer, got 0/);
  });
});
