import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { addDevice, deviceState, effectiveConfig, fleet, getDevice, listDevices, removeDevice, updateDevice } from '../../domain/index.ts';
import type { DeviceRuntime, HubCore } from '../../domain/index.ts';
import { commandContext } from '../auth.ts';
import { IdParamT, LabelsT, PatchLabelsT, ValuesT } from '../types.ts';

const tags = ['devices'];

export const deviceRoutes: FastifyPluginAsyncTypebox<{ core: HubCore; runtime?: DeviceRuntime }> = async (app, { core, runtime }) => {
  app.get(
    '/devices',
    {
      schema: {
        tags,
        summary: 'List devices, optionally only those a label selector matches',
        querystring: Type.Object({ selector: Type.Optional(Type.String({ maxLength: 1024 })) }, { additionalProperties: false }),
      },
    },
    async (req) => ({ devices: listDevices(core, req.query.selector) }),
  );

  app.get('/fleet', { schema: { tags, summary: 'Every device: desired vs applied version, sync status, liveness; with counts' } }, async () =>
    fleet(core, runtime),
  );

  app.post(
    '/devices',
    {
      schema: {
        tags,
        summary: 'Add a device',
        body: Type.Object(
          {
            id: Type.String({ maxLength: 128, description: 'lowercase letters, digits and -, 1-63 characters' }),
            name: Type.Optional(Type.String({ maxLength: 200 })),
            labels: Type.Optional(LabelsT),
            schema: Type.Optional(Type.Union([Type.String({ maxLength: 128 }), Type.Null()])),
            values: Type.Optional(ValuesT),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const result = await addDevice(core, commandContext(req), req.body);
      return reply.status(201).send({ device: getDevice(core, req.body.id), seq: result.seq });
    },
  );

  app.get('/devices/:id', { schema: { tags, summary: 'Get a device', params: IdParamT } }, async (req) => ({ device: getDevice(core, req.params.id) }));

  app.patch(
    '/devices/:id',
    {
      schema: {
        tags,
        summary: 'Rename, relabel (null removes a label) or rebind a device to a schema (null unbinds)',
        params: IdParamT,
        body: Type.Object(
          {
            name: Type.Optional(Type.String({ maxLength: 200 })),
            labels: Type.Optional(PatchLabelsT),
            schema: Type.Optional(Type.Union([Type.String({ maxLength: 128 }), Type.Null()])),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req) => {
      const result = await updateDevice(core, commandContext(req), req.params.id, req.body);
      return { device: getDevice(core, req.params.id), seq: result.seq };
    },
  );

  app.delete('/devices/:id', { schema: { tags, summary: 'Remove a device (a tombstone stays in the log)', params: IdParamT } }, async (req) => {
    const result = await removeDevice(core, commandContext(req), req.params.id);
    return { seq: result.seq };
  });

  app.get(
    '/devices/:id/config',
    { schema: { tags, summary: 'Effective config, with the layer (and group) that set each key', params: IdParamT } },
    async (req) => effectiveConfig(core, req.params.id),
  );

  app.get('/devices/:id/state', { schema: { tags, summary: 'Runtime state: desired and applied versions, liveness', params: IdParamT } }, async (req) =>
    deviceState(core, runtime, req.params.id),
  );
};
