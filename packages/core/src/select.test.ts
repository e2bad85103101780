import { expect, it } from 'vitest';
import { closeNames, isGlob } from './select.js';

const names = [
  'stage2.block1.conv1',
  'stage2.block1.conv2',
  'stage2.block1.shortcut.conv',
  'stage3.block1.conv1',
];

it('tells globs from exact names', () => {
  expect(isGlob('stage2.*.conv1')).toBe(true);
  expect(isGlob('stage2.**')).toBe(true);
  expect(isGlob('stage2.block1.conv1')).toBe(false);
});

it('suggests the closest names, nearest first', () => {
  expect(closeNames('stage2.block1.conv3', names)).toEqual([
    'stage2.block1.conv1',
    'stage2.block1.conv2',
    'stage3.block1.conv1',
  ]);
  expect(closeNames('block1.conv1', names)).toEqual(['stage2.block1.conv1', 'stage3.block1.conv1']);
  expect(closeNames('head.fc', names)).toEqual([]);
});
