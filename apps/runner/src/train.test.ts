import type { LayersModel } from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { trainConfigSchema } from './config.js';
import { Console } from './progress.js';
import { trainOptions } from './train.js';

const images = { images: new Uint8Array(0), labels: new Uint8Array(0), count: 0 };
const run = (epochs: number) => ({ model: {} as LayersModel, trainData: images, evalData: images, epochs });
const quiet = new Console(false, () => {});

it('maps the command-line recipe onto the train package options', () => {
  const config = trainConfigSchema.parse({ nesterov: true, decayOn: 'kernels' });
  const options = trainOptions(config, run(15), quiet);
  expect(options).toMatchObject({
    batchSize: 128,
    schedule: { type: 'cosine', lr: 0.1, warmupEpochs: 0 },
    optimizer: { momentum: 0.9, nesterov: true, weightDecay: 5e-4, weightDecayScope: 'kernels' },
    labelSmoothing: 0,
    augment: true,
  });
});

it('puts the step schedule milestones at half and three quarters unless given', () => {
  const step = trainConfigSchema.parse({ schedule: 'step', lr: 0.2, gamma: 0.5 });
  expect(trainOptions(step, run(8), quiet).schedule).toEqual({
    type: 'step',
    lr: 0.2,
    milestones: [4, 6],
    gamma: 0.5,
    warmupEpochs: 0,
  });
  const given = trainConfigSchema.parse({ schedule: 'step', milestones: [3] });
  expect(trainOptions(given, run(8), quiet).schedule).toMatchObject({ milestones: [3], gamma: 0.1 });
});
