/**
 * A running hub: store + domain + REST API. `henge hub` and the tests start it through `startHub`.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { createApi } from './api/server.ts';
import { createMetrics } from './api/metrics.ts';
import { HubCore, createToken } from './domain/index.ts';
import { LevelStore } from './store/level-store.ts';

import { DEFAULT_API_HOST, DEFAULT_API_PORT, DEFAULT_DATA_DIR } from './defaults.ts';

export { DEFAULT_API_HOST, DEFAULT_API_PORT, DEFAULT_DATA_DIR };

export interface HubOptions {
  readonly data?: string;
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  readonly logger?: FastifyBaseLogger;
}

export interface RunningHub {
  readonly core: HubCore;
  readonly app: FastifyInstance;
  readonly url: string;
  readonly dataDir: string;
  /** The admin token made on first start; shown once, stored only as a hash. */
  readonly firstToken: string | null;
  readonly startupMs: number;
  close(): Promise<void>;
}

export async function startHub(opts: HubOptions = {}): Promise<RunningHub> {
  const t0 = performance.now();
  const dataDir = resolve(opts.data ?? DEFAULT_DATA_DIR);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const metrics = createMetrics();
  const log = opts.logger;
  const core = await HubCore.open(new LevelStore(resolve(dataDir, 'store')), {
    ...metrics.observer,
    commandFailed(err) {
      metrics.observer.commandFailed?.(err);
      log?.error({ err }, 'a write failed; the command was refused and nothing of it was kept');
    },
    reloaded(err) {
      metrics.observer.reloaded?.(err);
      log?.warn({ err }, 'views reloaded from the store after a failed write');
    },
  });
  metrics.bind(core);
  let firstToken: string | null = null;
  if (core.state.tokens.size === 0) {
    firstToken = (await createToken(core, { actor: 'hub', reason: 'first start' }, 'admin')).token;
  }
  const app = await createApi(core, metrics, opts.logger ? { logger: opts.logger } : {});
  try {
    await app.listen({ host: opts.host ?? DEFAULT_API_HOST, port: opts.port ?? DEFAULT_API_PORT });
  } catch (err) {
    await core.close();
    throw err;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (opts.port ?? DEFAULT_API_PORT);
  const host = opts.host ?? DEFAULT_API_HOST;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return {
    core,
    app,
    url: `http://${urlHost}:${port}`,
    dataDir,
    firstToken,
    startupMs: performance.now() - t0,
    async close() {
      await app.close();
      await core.close();
    },
  };
}
