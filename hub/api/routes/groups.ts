import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { defineGroup, getGroup, listGroups, removeGroup } from '../../domain/index.ts';
import type { HubCore } from '../../domain/index.ts';
import { commandContext } from '../auth.ts';
import { ValuesT } from '../types.ts';

const tags = ['groups'];
const params = Type.Object({ id: Type.String({ maxLength: 128 }) }, { additionalProperties: false });

export const groupRoutes: FastifyPluginAsyncTypebox<{ core: HubCore }> = async (app, { core }) => {
  app.get('/groups', { schema: { tags, summary: 'List groups, highest priority first' } }, async () => ({ groups: listGroups(core) }));

  app.get('/groups/:id', { schema: { tags, summary: 'Get a group and its member devices', params } }, async (req) => ({ group: getGroup(core, req.params.id) }));

  app.put(
    '/groups/:id',
    {
      schema: {
        tags,
        summary: 'Create a group or change its selector and priority (values, when given, replace the group values)',
        params,
        body: Type.Object(
          {
            selector: Type.String({ maxLength: 1024, description: 'e.g. "site=a,role in (sensor|gw)"; "*" for every device' }),
            priority: Type.Optional(Type.Integer({ minimum: -1000000, maximum: 1000000, description: 'higher wins; default 0' })),
            values: Type.Optional(ValuesT),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req) => {
      const result = await defineGroup(core, commandContext(req), req.params.id, req.body);
      return { group: getGroup(core, req.params.id), seq: result.seq, warnings: result.warnings };
    },
  );

  app.delete('/groups/:id', { schema: { tags, summary: 'Remove a group and its values', params } }, async (req) => {
    const result = await removeGroup(core, commandContext(req), req.params.id);
    return { seq: result.seq };
  });
};
