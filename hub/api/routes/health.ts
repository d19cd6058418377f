import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { StoreUnavailableError } from '../../errors.ts';
import type { HubCore } from '../../domain/index.ts';
import type { HubMetrics } from '../metrics.ts';

export const healthRoutes: FastifyPluginAsyncTypebox<{ core: HubCore; metrics: HubMetrics; insecure: boolean }> = async (app, { core, metrics, insecure }) => {
  app.get('/healthz', { schema: { tags: ['health'], summary: 'Liveness: the process serves requests (no token needed); `insecure` when devices are also served plain CoAP' } }, async () => ({
    status: 'ok',
    insecure,
    hubId: core.state.meta?.hubId ?? null,
  }));

  app.get('/readyz', { schema: { tags: ['health'], summary: 'Readiness: 503 while the store refuses writes (no token needed)' } }, async (_req, reply) => {
    const problem = core.problem;
    if (problem) {
      const e = new StoreUnavailableError(`the store refuses writes: ${problem.message}`, { location: core.store.location });
      return reply.status(503).send(e.toJSON());
    }
    return { status: 'ready' };
  });

  app.get('/metrics', { schema: { tags: ['health'], summary: 'Prometheus metrics' } }, async (_req, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });

  app.get('/status', { schema: { tags: ['health'], summary: 'Hub summary: ids, counts, store health' } }, async () => {
    const s = core.state;
    return {
      hubId: s.meta?.hubId ?? null,
      incarnation: s.meta?.incarnation ?? null,
      devices: s.devices.size,
      groups: s.allGroups().length,
      schemas: s.schemas.size,
      logLength: s.seq,
      store: { location: core.store.location, healthy: core.problem === null, problem: core.problem?.message ?? null },
    };
  });
};
