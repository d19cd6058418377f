import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { createToken, listTokens, revokeToken } from '../../domain/index.ts';
import type { HubCore } from '../../domain/index.ts';
import { DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS, TOKEN_ROLES } from '../../domain/tokens.ts';
import { commandContext } from '../auth.ts';
import { IdParamT } from '../types.ts';

const tags = ['tokens'];

export const tokenRoutes: FastifyPluginAsyncTypebox<{ core: HubCore }> = async (app, { core }) => {
  app.get('/tokens', { schema: { tags, summary: 'List admin tokens (never their secrets)' } }, async () => ({ tokens: listTokens(core) }));

  app.post(
    '/tokens',
    {
      schema: {
        tags,
        summary: 'Create a token (admin, operator or viewer; it expires); the token is in this response only',
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._@-]+$' }),
            role: Type.Optional(Type.Union(TOKEN_ROLES.map((r) => Type.Literal(r)), { description: 'admin (default), operator or viewer' })),
            days: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TOKEN_DAYS, description: `days until it expires (default ${DEFAULT_TOKEN_DAYS})` })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const r = await createToken(core, commandContext(req), req.body.name, {
        ...(req.body.role !== undefined ? { role: req.body.role } : {}),
        ...(req.body.days !== undefined ? { days: req.body.days } : {}),
      });
      return reply.status(201).send({ id: r.id, name: req.body.name, role: r.role, expiresAt: r.expiresAt, token: r.token, seq: r.seq });
    },
  );

  app.delete('/tokens/:id', { schema: { tags, summary: 'Revoke a token at once', params: IdParamT } }, async (req) => {
    const r = await revokeToken(core, commandContext(req), req.params.id);
    return { seq: r.seq };
  });
};
