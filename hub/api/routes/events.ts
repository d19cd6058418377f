import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ValidationError } from '../../errors.ts';
import { MAX_EVENT_PAGE, events } from '../../domain/index.ts';
import type { HubCore } from '../../domain/index.ts';

function parseTime(field: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n)) {
    throw new ValidationError(`querystring.${field} must be an ISO 8601 time or milliseconds since the epoch`, {
      violations: [{ field: `querystring.${field}`, rule: 'format', message: 'ISO 8601 time or epoch milliseconds' }],
    });
  }
  return n;
}

export const eventRoutes: FastifyPluginAsyncTypebox<{ core: HubCore }> = async (app, { core }) => {
  app.get(
    '/events',
    {
      schema: {
        tags: ['events'],
        summary: 'History from the event log, filtered, paginated by sequence number',
        querystring: Type.Object(
          {
            device: Type.Optional(Type.String({ maxLength: 128 })),
            key: Type.Optional(Type.String({ maxLength: 64 })),
            type: Type.Optional(Type.String({ maxLength: 64, description: 'an event type, or its prefix such as "device"' })),
            since: Type.Optional(Type.String({ maxLength: 40, description: 'ISO 8601 or epoch ms, inclusive' })),
            until: Type.Optional(Type.String({ maxLength: 40, description: 'ISO 8601 or epoch ms, inclusive' })),
            after: Type.Optional(Type.Integer({ minimum: 0, description: 'ascending: start after this sequence number' })),
            before: Type.Optional(Type.Integer({ minimum: 1, description: 'descending: start before this sequence number' })),
            order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')])),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_EVENT_PAGE })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req) => {
      const q = req.query;
      const since = parseTime('since', q.since);
      const until = parseTime('until', q.until);
      return events(core, {
        hideAdmin: req.role !== 'admin',
        ...(q.device !== undefined ? { device: q.device } : {}),
        ...(q.key !== undefined ? { key: q.key } : {}),
        ...(q.type !== undefined ? { type: q.type } : {}),
        ...(since !== undefined ? { since } : {}),
        ...(until !== undefined ? { until } : {}),
        ...(q.after !== undefined ? { after: q.after } : {}),
        ...(q.before !== undefined ? { before: q.before } : {}),
        ...(q.order !== undefined ? { order: q.order } : {}),
        ...(q.limit !== undefined ? { limit: q.limit } : {}),
      });
    },
  );
};
