import os from 'node:os';
import type { EngineInfo } from '@decompose/engine';

/** The machine and backend a run measured on (timings only compare within one machine and run). */
export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  platform: string;
  node: string;
  backend: EngineInfo['backend'];
  /** The engine's own description of the backend (threads, skipped backends). */
  engine: EngineInfo;
}

/** Describes this machine and the active backend. */
export function machineInfo(engine: EngineInfo): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((10 * os.totalmem()) / 2 ** 30) / 10,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    backend: engine.backend,
    engine,
  };
}
