import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

it.skipIf(!existsSync(cli))('prints help for every command from the built program', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [cli, '--help']);
  for (const command of ['train', 'eval', 'inspect', 'compress', 'bench', 'demo']) {
    expect(stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
  }
  const train = await promisify(execFile)(process.execPath, [cli, 'train', '--help']);
  expect(train.stdout).toContain('--resume');
  expect(train.stdout).toContain('Examples:');
});
