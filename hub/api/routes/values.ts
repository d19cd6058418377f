/** Values at the device and group layers: PUT replaces the layer, PATCH merges (null unsets), DELETE unsets. */
import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { getDevice, getGroup, setValues } from '../../domain/index.ts';
import type { HubCore, ValueTarget } from '../../domain/index.ts';
import { commandContext } from '../auth.ts';
import { PatchBodyT, ValuesBodyT } from '../types.ts';

export const valueRoutes: FastifyPluginAsyncTypebox<{ core: HubCore }> = async (app, { core }) => {
  const layers = [
    { prefix: '/devices/:id', tag: 'devices', target: (id: string): ValueTarget => ({ device: id }), read: (id: string) => getDevice(core, id).values },
    { prefix: '/groups/:id', tag: 'groups', target: (id: string): ValueTarget => ({ group: id }), read: (id: string) => getGroup(core, id).values },
  ];
  for (const layer of layers) {
    const tags = [layer.tag];
    const params = Type.Object({ id: Type.String({ maxLength: 128 }) }, { additionalProperties: false });
    const keyParams = Type.Object({ id: Type.String({ maxLength: 128 }), key: Type.String({ maxLength: 64 }) }, { additionalProperties: false });
    const respond = (r: { seq: number | null; events: ReadonlyArray<{ data: unknown }>; warnings: unknown }) => ({
      seq: r.seq,
      changes: r.events.flatMap((e) => (e.data as { changes?: unknown[] }).changes ?? []),
      warnings: r.warnings,
    });

    app.get(`${layer.prefix}/values`, { schema: { tags, summary: `Values set at the ${layer.tag.slice(0, -1)} layer`, params } }, async (req) => ({
      values: layer.read(req.params.id),
    }));

    app.put(
      `${layer.prefix}/values`,
      { schema: { tags, summary: 'Replace every value of this layer (keys not given are unset)', params, body: ValuesBodyT } },
      async (req) => respond(await setValues(core, commandContext(req), layer.target(req.params.id), req.body.values, true)),
    );

    app.patch(
      `${layer.prefix}/values`,
      { schema: { tags, summary: 'Set some values atomically; null unsets a key. One bad key changes nothing', params, body: PatchBodyT } },
      async (req) => respond(await setValues(core, commandContext(req), layer.target(req.params.id), req.body.values, false)),
    );

    app.delete(`${layer.prefix}/values`, { schema: { tags, summary: 'Unset every value of this layer', params } }, async (req) =>
      respond(await setValues(core, commandContext(req), layer.target(req.params.id), {}, true)),
    );

    app.delete(`${layer.prefix}/values/:key`, { schema: { tags, summary: 'Unset one key', params: keyParams } }, async (req) =>
      respond(await setValues(core, commandContext(req), layer.target(req.params.id), { [req.params.key]: null }, false)),
    );
  }
};
