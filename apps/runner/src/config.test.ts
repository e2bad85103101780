import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compressConfigSchema, defaultWorkers, resolveConfig, trainConfigSchema } from './config.js';
import { ConfigError, reportError } from './errors.js';
import { ConfigFileError } from './files.js';
import { runCli } from './program.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'decompose-config-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function configFile(name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

async function configError(promise: Promise<unknown>): Promise<ConfigError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

describe('resolveConfig', () => {
  it('fills in the defaults of the main job', async () => {
    const config = await resolveConfig(trainConfigSchema, {});
    expect(config).toMatchObject({ model: 'resnet20', epochs: 15, batch: 128, lr: 0.1, schedule: 'cosine' });
    expect(config.data).toBeUndefined();
  });

  it('trains on one worker thread per core by default, and on the main thread on a single core', async () => {
    expect((await resolveConfig(trainConfigSchema, {})).workers).toBe(defaultWorkers());
    expect(defaultWorkers(1)).toBe(0);
    expect(defaultWorkers(8)).toBe(8);
    expect(defaultWorkers(1000)).toBe(256);
  });

  it('lets flags override the config file', async () => {
    const file = await configFile('train.yaml', 'epochs: 3\nlr: 0.2\nmodel: resnet32\n');
    const config = await resolveConfig(trainConfigSchema, { lr: 0.05, epochs: undefined }, file);
    expect(config).toMatchObject({ epochs: 3, lr: 0.05, model: 'resnet32' });
  });

  it('names a bad field of the file, its value and the expected form', async () => {
    const file = await configFile('bad.yaml', 'epochs: 2\nlr: -1\nschedule: linear\n');
    const error = await configError(resolveConfig(trainConfigSchema, {}, file));
    expect(error.issues).toEqual([
      `'lr' in ${file}: got -1; lr must be in (0, 10] (e.g. 0.1)`,
      expect.stringMatching(/^'schedule' in .*bad.yaml: got "linear"; .*"cosine"\|"step"\|"constant"/),
    ]);
  });

  it('names a bad flag as the user typed it', async () => {
    const error = await configError(resolveConfig(trainConfigSchema, { weightDecay: 'lots' }));
    expect(error.message).toBe(
      'Invalid configuration: --weight-decay: got "lots"; Invalid input: expected number, received string',
    );
  });

  it('rejects unknown fields, listing the known ones', async () => {
    const file = await configFile('typo.json', '{ "epoch": 2 }');
    const error = await configError(resolveConfig(trainConfigSchema, {}, file));
    expect(error.issues[0]).toMatch(/^'epoch' in .*typo\.json: unknown field; expected one of .*epochs/);
  });

  it('names a missing field as the flag that gives it, or the field of the file', async () => {
    const bare = await configError(resolveConfig(compressConfigSchema, { strategy: 'svd', out: 'o' }));
    expect(bare.issues).toEqual([
      '--model-dir: got nothing; Invalid input: expected string, received undefined',
    ]);
    const file = await configFile('compress.yaml', 'strategy: svd\nout: o\n');
    const withFile = await configError(resolveConfig(compressConfigSchema, {}, file));
    expect(withFile.issues).toEqual([
      `--model-dir (or 'modelDir' in ${file}): got nothing; Invalid input: expected string, received undefined`,
    ]);
  });

  it('rejects options given two ways', async () => {
    const error = await configError(
      resolveConfig(compressConfigSchema, {
        modelDir: 'm',
        strategy: 'svd',
        out: 'o',
        ratio: 0.5,
        options: '{}',
      }),
    );
    expect(error.issues).toEqual(['--ratio: got 0.5; give either options or ratio, not both']);
  });

  it('re-estimates BatchNorm on 1024 images unless told otherwise, and rejects a bad --bn-images', async () => {
    const required = { modelDir: 'm', strategy: 'svd', out: 'o' };
    expect((await resolveConfig(compressConfigSchema, required)).bnImages).toBe(1024);
    expect((await resolveConfig(compressConfigSchema, { ...required, bnImages: 0 })).bnImages).toBe(0);
    const negative = await configError(resolveConfig(compressConfigSchema, { ...required, bnImages: -1 }));
    const rule =
      "bnImages must be a whole number in [0, 1000000] (0 keeps the model's BatchNorm statistics; e.g. 1024)";
    expect(negative.issues).toEqual([`--bn-images: got -1; ${rule}`]);
    const fraction = await configError(resolveConfig(compressConfigSchema, { ...required, bnImages: 2.5 }));
    expect(fraction.issues).toEqual([`--bn-images: got 2.5; ${rule}`]);
  });

  it('reports a missing or malformed file', async () => {
    await expect(resolveConfig(trainConfigSchema, {}, path.join(dir, 'nope.yaml'))).rejects.toThrow(
      ConfigFileError,
    );
    const list = await configFile('list.yaml', '- 1\n- 2\n');
    await expect(resolveConfig(trainConfigSchema, {}, list)).rejects.toThrow(/must hold a mapping of fields/);
  });
});

describe('errors', () => {
  it('prints typed errors as one line with exit code 2 and bugs with their stack and exit code 1', () => {
    const lines: string[] = [];
    expect(reportError(new ConfigError(['--lr: got 0']), (l) => lines.push(l))).toBe(2);
    expect(lines).toEqual(['error: Invalid configuration: --lr: got 0']);
    lines.length = 0;
    expect(reportError(new TypeError('x is undefined'), (l) => lines.push(l))).toBe(1);
    expect(lines[0]).toMatch(/^TypeError: x is undefined\n\s+at /);
  });

  it('exits with 2 on a bad flag value or an unknown option', async () => {
    const err: string[] = [];
    const io = { print: () => {}, printError: (l: string) => err.push(l), tty: false };
    expect(await runCli(['train', '--epochs', 'two'], io)).toBe(2);
    expect(err).toEqual([
      'error: Invalid configuration: --epochs: got "two"; Invalid input: expected number, received string',
    ]);
    err.length = 0;
    const compress = ['compress', '--model-dir', 'm', '--strategy', 'svd', '--out', 'o'];
    expect(await runCli([...compress, '--bn-images', 'many'], io)).toBe(2);
    expect(err).toEqual([
      'error: Invalid configuration: --bn-images: got "many"; Invalid input: expected number, received string',
    ]);
    err.length = 0;
    expect(await runCli(['train', '--epoch', '2'], io)).toBe(2);
    expect(err[0]).toMatch(/unknown option '--epoch'/);
  });
});
