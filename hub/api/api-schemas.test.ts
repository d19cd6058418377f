/** REST API, schemas: publish (PUT), get, versions, invalid documents and conflicts with bound devices. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useApiHub } from '../../test/helpers/api.ts';
import type { EffectiveConfig } from '../domain/index.ts';

// One hub on loopback in a temp folder for this file.
const { call, expectError, fieldsOf } = useApiHub('henge-api-schemas-');

interface SchemaSummary {
  readonly name: string;
  readonly version: number;
  readonly description: string | null;
  readonly fields: number;
  readonly publishedAt: number;
}
interface PublishReply extends SchemaSummary {
  readonly created: boolean;
  readonly seq: number | null;
  readonly document: Record<string, unknown>;
}

async function config(id: string): Promise<EffectiveConfig> {
  const r = await call<EffectiveConfig>('GET', `/devices/${id}/config`);
  assert.equal(r.status, 200);
  return r.body;
}

const SENSOR_V1 = {
  title: 'sensor',
  description: 'a sensor',
  type: 'object',
  properties: {
    interval: { type: 'integer', minimum: 1, maximum: 3600, default: 60 },
    unit: { enum: ['c', 'f'], default: 'c' },
  },
  required: ['unit'],
  additionalProperties: false,
};
const SENSOR_V2 = { ...SENSOR_V1, properties: { ...SENSOR_V1.properties, label: { type: 'string', maxLength: 20, pattern: '^[a-z]*$' } } };

test('schemas - publish, republish, get by version, list versions and list schemas', async () => {
  const v1 = await call<PublishReply>('PUT', '/schemas/sensor', SENSOR_V1);
  assert.equal(v1.status, 201);
  assert.deepEqual([v1.body.name, v1.body.version, v1.body.created, v1.body.fields, v1.body.description], ['sensor', 1, true, 2, 'a sensor']);
  assert.equal(typeof v1.body.seq, 'number');
  assert.deepEqual(v1.body.document['required'], ['unit']);
  assert.equal(v1.body.document['additionalProperties'], false);
  assert.equal(v1.body.document['x-henge-version'], 1);
  assert.deepEqual((v1.body.document['properties'] as Record<string, unknown>)['unit'], { type: 'string', enum: ['c', 'f'], default: 'c' });

  const again = await call<PublishReply>('PUT', '/schemas/sensor', SENSOR_V1);
  assert.deepEqual([again.status, again.body.created, again.body.version, again.body.seq], [200, false, 1, null], 'the same document makes no new version');
  const reordered = { required: ['unit'], properties: { unit: { default: 'c', enum: ['c', 'f'] }, interval: SENSOR_V1.properties.interval }, type: 'object', description: 'a sensor' };
  const same = await call<PublishReply>('PUT', '/schemas/sensor', reordered);
  assert.deepEqual([same.status, same.body.created, same.body.version], [200, false, 1], 'key order does not make a new version');

  const v2 = await call<PublishReply>('PUT', '/schemas/sensor', SENSOR_V2);
  assert.deepEqual([v2.status, v2.body.created, v2.body.version, v2.body.fields], [201, true, 2, 3]);

  const latest = await call<SchemaSummary & { document: Record<string, unknown> }>('GET', '/schemas/sensor');
  assert.equal(latest.status, 200);
  assert.equal(latest.body.version, 2);
  assert.deepEqual(Object.keys(latest.body.document['properties'] as object).sort(), ['interval', 'label', 'unit']);
  const first = await call<SchemaSummary & { document: Record<string, unknown> }>('GET', '/schemas/sensor?version=1');
  assert.equal(first.body.version, 1);
  assert.deepEqual(first.body.document, v1.body.document);

  const versions = await call<{ versions: SchemaSummary[] }>('GET', '/schemas/sensor/versions');
  assert.deepEqual(versions.body.versions.map((v) => [v.name, v.version]), [
    ['sensor', 1],
    ['sensor', 2],
  ]);
  const list = await call<{ schemas: SchemaSummary[] }>('GET', '/schemas');
  assert.deepEqual(list.body.schemas.find((s) => s.name === 'sensor')?.version, 2, 'the list shows the latest version');

  // The exchange form can be published back as it is.
  const roundTrip = await call<PublishReply>('PUT', '/schemas/sensor-copy', latest.body.document);
  assert.equal(roundTrip.status, 201);
  assert.deepEqual(
    (await call<SchemaSummary & { document: Record<string, unknown> }>('GET', '/schemas/sensor-copy')).body.document['properties'],
    latest.body.document['properties'],
  );
});

test('schemas - an invalid document is refused with 400 HENGE_E_INVALID_SCHEMA naming every problem', async () => {
  const doc = {
    type: 'object',
    oneOf: [],
    properties: {
      when: { type: 'date' },
      level: { type: 'integer', minimum: 0, maximum: 10, default: 11 },
      range: { type: 'number', minimum: 5, maximum: 1 },
      name: { type: 'string', pattern: '(' },
      flag: { type: 'boolean', minLength: 1 },
      'bad key': { type: 'string' },
    },
    required: ['missing'],
  };
  const e = expectError(await call('PUT', '/schemas/broken', doc), 400, 'HENGE_E_INVALID_SCHEMA');
  const got = fieldsOf(e);
  for (const want of [
    ['oneOf', 'unsupported-keyword'],
    ['properties.when.type', 'enum'],
    ['properties.level.default', 'maximum'],
    ['properties.range.minimum', 'range'],
    ['properties.name.pattern', 'syntax'],
    ['properties.flag.minLength', 'applies-to'],
    ['properties.bad key', 'pattern'],
    ['required.missing', 'unknown'],
  ]) {
    assert.ok(got.some(([f, r]) => f === want[0] && r === want[1]), `${want.join(' ')} in ${JSON.stringify(got)}`);
  }
  expectError(await call('GET', '/schemas/broken'), 404, 'HENGE_E_NOT_FOUND');
  expectError(await call('PUT', '/schemas/broken', { type: 'array' }), 400, 'HENGE_E_INVALID_SCHEMA');
  expectError(await call('PUT', '/schemas/broken', { properties: { a: { type: 'string' } }, additionalProperties: true }), 400, 'HENGE_E_INVALID_SCHEMA');
});

test('schemas - a bad schema name is 400 HENGE_E_INVALID_ID and a body that is not an object is 400 HENGE_E_VALIDATION', async () => {
  const e = expectError(await call('PUT', '/schemas/Bad_Name', SENSOR_V1), 400, 'HENGE_E_INVALID_ID');
  assert.deepEqual(fieldsOf(e), [['id', 'pattern']]);
  expectError(await call('PUT', '/schemas/arr', [1, 2]), 400, 'HENGE_E_VALIDATION');
  expectError(await call('PUT', '/schemas/str', 'text'), 400, 'HENGE_E_VALIDATION');
});

test('schemas - an unknown schema or version is 404 HENGE_E_NOT_FOUND; a bad version is 400', async () => {
  expectError(await call('GET', '/schemas/nope'), 404, 'HENGE_E_NOT_FOUND');
  expectError(await call('GET', '/schemas/nope/versions'), 404, 'HENGE_E_NOT_FOUND');
  assert.equal((await call('PUT', '/schemas/tiny', { properties: { a: { type: 'boolean' } } })).status, 201);
  expectError(await call('GET', '/schemas/tiny?version=9'), 404, 'HENGE_E_NOT_FOUND');
  expectError(await call('GET', '/schemas/tiny?version=0'), 400, 'HENGE_E_VALIDATION');
  expectError(await call('GET', '/schemas/tiny?version=abc'), 400, 'HENGE_E_VALIDATION');
  expectError(await call('GET', '/schemas/tiny?other=1'), 400, 'HENGE_E_VALIDATION');
});

const METER_V1 = {
  type: 'object',
  properties: {
    max: { type: 'integer', minimum: 0, maximum: 1000, default: 10 },
    unit: { enum: ['w', 'kw'], default: 'w' },
    note: { type: 'string' },
  },
};

test('schemas - a version that breaks bound devices is refused with 409 HENGE_E_SCHEMA_CONFLICT listing every device', async () => {
  assert.equal((await call('PUT', '/schemas/meter', METER_V1)).status, 201);
  for (const [id, labels, values] of [
    ['m-1', {}, { max: 500 }],
    ['m-2', {}, { max: 800, note: 'n' }],
    ['m-3', { plant: 'big' }, {}],
    ['m-4', {}, { max: 50 }],
  ] as const) {
    assert.equal((await call('POST', '/devices', { id, labels, values, schema: 'meter' })).status, 201);
  }
  assert.equal((await call('POST', '/devices', { id: 'm-free', values: { max: 5000 } })).status, 201);
  assert.equal((await call('PUT', '/groups/big-plant', { selector: 'plant=big', values: { unit: 'kw' } })).status, 200);
  const before = await Promise.all(['m-1', 'm-2', 'm-3', 'm-4'].map(config));

  const v2 = { type: 'object', properties: { max: { type: 'integer', minimum: 0, maximum: 100, default: 10 }, unit: { enum: ['w'], default: 'w' } } };
  const e = expectError(await call('PUT', '/schemas/meter', v2), 409, 'HENGE_E_SCHEMA_CONFLICT');
  const violations = e.details.violations ?? [];
  assert.deepEqual(
    violations.map((v) => [v.device, v.field, v.rule]).sort(),
    [
      ['m-1', 'values.max', 'maximum'],
      ['m-2', 'values.max', 'maximum'],
      ['m-2', 'values.note', 'unknown'],
      ['m-3', 'values.unit', 'enum'],
    ],
    'every conflicting device, and only those bound to the schema',
  );
  assert.equal(e.details['total'], 4);
  assert.match(e.message, /3 device/);
  assert.match(e.message, /v2/);

  const versions = await call<{ versions: SchemaSummary[] }>('GET', '/schemas/meter/versions');
  assert.deepEqual(versions.body.versions.map((v) => v.version), [1]);
  assert.deepEqual(await Promise.all(['m-1', 'm-2', 'm-3', 'm-4'].map(config)), before);

  // A compatible version goes through and moves the bound devices whose config changes.
  const v2ok = { ...METER_V1, properties: { ...METER_V1.properties, phase: { type: 'integer', default: 1 } } };
  const published = await call<PublishReply>('PUT', '/schemas/meter', v2ok);
  assert.deepEqual([published.status, published.body.version], [201, 2]);
  const m4 = await config('m-4');
  assert.deepEqual(m4.schema, { name: 'meter', version: 2 });
  assert.deepEqual(m4.values, { max: 50, unit: 'w', phase: 1 });
  assert.equal(m4.version, published.body.seq, 'the new default changed the config: the snapshot version moved');
});
