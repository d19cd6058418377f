/** What the store benchmarks put in the hub: schemas, device ids, data folders. */
import { mkdir, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { REPO_ROOT } from '../lib/child.ts';

/** Cached and scratch data folders live here (git-ignored; never under /tmp, which may be tmpfs). */
export const DATA_ROOT = resolve(REPO_ROOT, 'bench/.data');

/** A scratch folder for one part of one run, removed by the returned function. */
export async function scratchDir(name: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = resolve(DATA_ROOT, `tmp-${name}-${process.pid}`);
  await rm(path, { recursive: true, force: true });
  await mkdir(path, { recursive: true });
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export const deviceId = (i: number): string => `dev-${String(i).padStart(5, '0')}`;

/** The schema of the write benchmark's devices: a counter the load changes, and a few defaults. */
export const COUNTER_SCHEMA = {
  type: 'object',
  description: 'benchmark device with a counter',
  properties: {
    counter: { type: 'integer', minimum: 0, default: 0 },
    mode: { enum: ['off', 'eco', 'on'], default: 'eco' },
    interval: { type: 'integer', minimum: 1, maximum: 86400, default: 60 },
    label: { type: 'string', maxLength: 32, default: 'bench' },
  },
  required: ['mode'],
  additionalProperties: false,
};

/** Ten fields of every kind, for the snapshot recompute benchmark. */
export const SENSOR_SCHEMA = {
  type: 'object',
  description: 'benchmark sensor, ten fields',
  properties: {
    interval: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 60 },
    mode: { enum: ['off', 'eco', 'normal', 'boost'], default: 'normal' },
    enabled: { type: 'boolean', default: true },
    threshold: { type: 'number', minimum: -50, maximum: 150, default: 21.5 },
    hysteresis: { type: 'number', minimum: 0, maximum: 10, default: 0.5 },
    name: { type: 'string', maxLength: 64, default: 'sensor' },
    server: { type: 'string', maxLength: 128, pattern: '^[a-z0-9.-]+$', default: 'hub.local' },
    port: { type: 'integer', minimum: 1, maximum: 65535, default: 5684 },
    log_level: { enum: ['error', 'warn', 'info', 'debug'], default: 'info' },
    retries: { type: 'integer', minimum: 0, maximum: 20, default: 3 },
  },
  required: ['mode', 'interval'],
  additionalProperties: false,
};
