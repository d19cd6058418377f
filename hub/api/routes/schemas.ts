import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { getSchema, listSchemas, publishSchema, schemaVersions, toJsonSchema } from '../../domain/index.ts';
import type { HubCore, SchemaRecord } from '../../domain/index.ts';
import { commandContext } from '../auth.ts';
import { NameParamT } from '../types.ts';

const tags = ['schemas'];

const summary = (s: SchemaRecord) => ({
  name: s.name,
  version: s.version,
  description: s.description ?? null,
  fields: s.fields.length,
  publishedAt: s.publishedAt,
});

export const schemaRoutes: FastifyPluginAsyncTypebox<{ core: HubCore }> = async (app, { core }) => {
  app.get('/schemas', { schema: { tags, summary: 'List schemas (latest version of each)' } }, async () => ({ schemas: listSchemas(core).map(summary) }));

  app.put(
    '/schemas/:name',
    {
      schema: {
        tags,
        summary: 'Publish a new version of a schema (a JSON Schema document); refused with every conflict it would cause',
        params: NameParamT,
        body: Type.Object({}, { additionalProperties: true, description: 'JSON Schema: type object, properties of type string/integer/number/boolean or enum' }),
      },
    },
    async (req, reply) => {
      const r = await publishSchema(core, commandContext(req), req.params.name, req.body);
      return reply.status(r.created ? 201 : 200).send({ ...summary(r.schema), created: r.created, seq: r.seq, document: toJsonSchema(r.schema) });
    },
  );

  app.get(
    '/schemas/:name',
    {
      schema: {
        tags,
        summary: 'A schema as JSON Schema (latest version, or ?version=N)',
        params: NameParamT,
        querystring: Type.Object({ version: Type.Optional(Type.Integer({ minimum: 1 })) }, { additionalProperties: false }),
      },
    },
    async (req) => {
      const s = getSchema(core, req.params.name, req.query.version);
      return { ...summary(s), document: toJsonSchema(s) };
    },
  );

  app.get('/schemas/:name/versions', { schema: { tags, summary: 'Every published version of a schema', params: NameParamT } }, async (req) => ({
    versions: schemaVersions(core, req.params.name).map(summary),
  }));
};
