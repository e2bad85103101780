import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { parse as parseYaml } from 'yaml';

/** Writes a file atomically (temp file + rename), creating its directory. */
export async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(
    file,
    typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  );
}

/** Writes JSON atomically, pretty-printed. */
export function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  return writeAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** Thrown when a config file is missing or is neither valid YAML nor JSON. */
export class ConfigFileError extends Error {
  override readonly name = 'ConfigFileError';
}

/** Reads a YAML or JSON file (by extension; YAML is a superset of JSON, so anything else is read as YAML). */
export async function readConfigFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigFileError(
      `Cannot read config file '${file}': ${(error as NodeJS.ErrnoException).code ?? String(error)}. Check the path.`,
    );
  }
  try {
    return file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new ConfigFileError(
      `Config file '${file}' is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message}`,
    );
  }
}
