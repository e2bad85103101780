#!/usr/bin/env node
import { Command } from 'commander';
import { formatSmoke, runSmoke } from './smoke.js';

const program = new Command('decompose').description(
  'Compress convolutional networks by matrix decomposition of their convolution weights.',
);

program
  .command('smoke')
  .description('Initialise the default backend and time a convolution forward and backward pass.')
  .action(async () => {
    for (const line of formatSmoke(await runSmoke())) console.log(line);
  });

program
  .command('demo')
  .description("The README's main job on the embedded defaults (for now: the engine smoke run).")
  .action(async () => {
    for (const line of formatSmoke(await runSmoke())) console.log(line);
  });

await program.parseAsync();
