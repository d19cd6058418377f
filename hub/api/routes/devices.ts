import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Admission, addDevice, admitDevice, deviceState, effectiveConfig, fleet, getDevice, listDevices, recordEnrollmentCreated, recordKeyIssued, removeDevice, updateDevice } from '../../domain/index.ts';
import type { DeviceRuntime, HubCore } from '../../domain/index.ts';
import { NotFoundError } from '../../errors.ts';
import type { Keystore } from '../../security/keystore.ts';
import type { Enrollments } from '../../security/enrollment.ts';
import { DEFAULT_ENROLL_HOURS } from '../../security/enrollment.ts';
import { enrollmentUri } from '../../../protocol/enroll.ts';
import { commandContext } from '../auth.ts';
import { IdParamT, LabelsT, PatchLabelsT, ValuesT } from '../types.ts';

const tags = ['devices'];

export const deviceRoutes: FastifyPluginAsyncTypebox<{ core: HubCore; runtime?: DeviceRuntime; keystore?: Keystore; enrollments?: Enrollments }> = async (
  app,
  { core, runtime, keystore, enrollments },
) => {
  /** A new DTLS key for the device: durable in the keystore, then named (by its id only) in the log. */
  const issueKey = async (ctx: ReturnType<typeof commandContext>, device: string, graceMs = 0): Promise<{ key: string; keyId: string } | Record<string, never>> => {
    if (!keystore) return {};
    const issued = await keystore.issue(device, graceMs);
    await recordKeyIssued(core, ctx, device, issued.keyId, issued.previous);
    return issued;
  };

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
      const ctx = commandContext(req);
      const result = await addDevice(core, ctx, req.body);
      // The key is in this answer only: the hub keeps it encrypted and never shows it again.
      const key = await issueKey(ctx, req.body.id);
      return reply.status(201).send({ device: getDevice(core, req.body.id), seq: result.seq, ...key });
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
    await keystore?.remove(req.params.id);
    await enrollments?.removeDevice(req.params.id);
    return { seq: result.seq };
  });

  app.post(
    '/devices/:id/enrollment',
    {
      schema: {
        tags,
        summary: 'A one-time enrollment token for the device (shown once): the device trades it, over coaps, for its key',
        params: IdParamT,
        body: Type.Optional(Type.Object({ hours: Type.Optional(Type.Integer({ minimum: 1, maximum: 720, description: `hours until it expires (default ${DEFAULT_ENROLL_HOURS})` })) }, { additionalProperties: false })),
      },
    },
    async (req, reply) => {
      getDevice(core, req.params.id);
      if (!enrollments) throw new NotFoundError('this hub has no enrollment (it runs without a coaps endpoint)', { device: req.params.id });
      const t = await enrollments.create(req.params.id, req.body?.hours ?? DEFAULT_ENROLL_HOURS);
      await recordEnrollmentCreated(core, commandContext(req), req.params.id, t.id, t.expiresAt);
      const hubId = core.state.meta?.hubId ?? '';
      return reply.status(201).send({ device: req.params.id, enrollment: t.id, token: t.token, uri: enrollmentUri(t.token, hubId), expiresAt: t.expiresAt });
    },
  );

  app.post(
    '/devices/:id/key',
    {
      schema: {
        tags,
        summary: 'Issue a new DTLS key for the device (shown once); the old one stops working at once, or after a grace period',
        params: IdParamT,
        body: Type.Optional(
          Type.Object(
            {
              graceHours: Type.Optional(
                Type.Integer({ minimum: 0, maximum: 720, description: 'hours the old key stays valid (default 0); it is retired earlier once the device uses its new key' }),
              ),
            },
            { additionalProperties: false },
          ),
        ),
      },
    },
    async (req, reply) => {
      getDevice(core, req.params.id);
      if (!keystore) throw new NotFoundError('this hub has no device keystore (it runs without a coaps endpoint)', { device: req.params.id });
      const issued = await issueKey(commandContext(req), req.params.id, (req.body?.graceHours ?? 0) * 3_600_000);
      return reply.status(201).send({ device: req.params.id, ...issued });
    },
  );

  for (const decision of [Admission.Accepted, Admission.Rejected] as const) {
    app.post(
      `/devices/:id/${decision === Admission.Accepted ? 'accept' : 'reject'}`,
      {
        schema: {
          tags,
          summary:
            decision === Admission.Accepted
              ? 'Accept a pending device (it enrolled itself with a provisioning token): its key then works'
              : 'Reject a pending device: its key is deleted and its handshakes fail',
          params: IdParamT,
        },
      },
      async (req) => {
        const r = await admitDevice(core, commandContext(req), req.params.id, decision);
        if (decision === Admission.Rejected) await keystore?.remove(req.params.id);
        return { device: getDevice(core, req.params.id), seq: r.seq };
      },
    );
  }

  app.get(
    '/devices/:id/config',
    { schema: { tags, summary: 'Effective config, with the layer (and group) that set each key', params: IdParamT } },
    async (req) => effectiveConfig(core, req.params.id),
  );

  app.get('/devices/:id/state', { schema: { tags, summary: 'Runtime state: desired and applied versions, liveness', params: IdParamT } }, async (req) =>
    deviceState(core, runtime, req.params.id),
  );
};
