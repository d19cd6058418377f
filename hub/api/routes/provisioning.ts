import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { recordProvisioningCreated, recordProvisioningRevoked } from '../../domain/index.ts';
import type { HubCore } from '../../domain/index.ts';
import { checkLabels } from '../../domain/ids.ts';
import { parseSelector } from '../../domain/selector.ts';
import { NotFoundError } from '../../errors.ts';
import { DEFAULT_PROVISION_DAYS, MAX_PROVISION_DAYS } from '../../security/provisioning.ts';
import type { Provisioning } from '../../security/provisioning.ts';
import { enrollmentUri } from '../../../protocol/enroll.ts';
import { commandContext } from '../auth.ts';
import { IdParamT, LabelsT } from '../types.ts';

const tags = ['provisioning'];

/** Fleet provisioning tokens (factory lines): many devices enroll themselves with one; they wait in `pending` unless its rule accepts them. */
export const provisioningRoutes: FastifyPluginAsyncTypebox<{ core: HubCore; provisioning?: Provisioning }> = async (app, { core, provisioning }) => {
  const must = (): Provisioning => {
    if (!provisioning) throw new NotFoundError('this hub has no provisioning (it runs without a coaps endpoint)', {});
    return provisioning;
  };

  app.get('/provisioning', { schema: { tags, summary: 'List fleet provisioning tokens (never their secrets)' } }, async () => ({ tokens: must().list() }));

  app.post(
    '/provisioning',
    {
      schema: {
        tags,
        summary: 'Create a fleet provisioning token (shown once): devices enroll themselves with it until it expires or is revoked',
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._@-]+$' }),
            days: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PROVISION_DAYS, description: `days until it expires (default ${DEFAULT_PROVISION_DAYS})` })),
            labels: Type.Optional(LabelsT),
            schema: Type.Optional(Type.Union([Type.String({ maxLength: 128 }), Type.Null()])),
            accept: Type.Optional(
              Type.Union([Type.String({ maxLength: 1024 }), Type.Null()], {
                description: 'null (default): a person admits each device; a label selector: devices it matches are accepted at once (`*`: all)',
              }),
            ),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const p = must();
      const labels = req.body.labels ?? {};
      checkLabels(labels);
      const accept = req.body.accept === undefined || req.body.accept === null ? null : parseSelector(req.body.accept).text || '*';
      const schema = req.body.schema ?? null;
      if (schema !== null && !core.state.latestSchema(schema)) throw new NotFoundError(`schema ${schema} does not exist; publish it first`, { schema });
      const t = await p.create({ name: req.body.name, expiresAt: Date.now() + (req.body.days ?? DEFAULT_PROVISION_DAYS) * 86_400_000, labels, schema, accept });
      const { token, id, ...record } = t;
      const r = await recordProvisioningCreated(core, commandContext(req), { provisioning: id, ...record });
      const hubId = core.state.meta?.hubId ?? '';
      return reply.status(201).send({ id, ...record, token, uri: enrollmentUri(token, hubId), seq: r.seq });
    },
  );

  app.delete('/provisioning/:id', { schema: { tags, summary: 'Revoke a provisioning token: no more devices enroll with it', params: IdParamT } }, async (req) => {
    const p = must();
    if (!(await p.revoke(req.params.id))) throw new NotFoundError(`provisioning token ${req.params.id} does not exist`, { provisioning: req.params.id });
    const r = await recordProvisioningRevoked(core, commandContext(req), req.params.id);
    return { seq: r.seq };
  });
};
