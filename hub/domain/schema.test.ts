import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, InvalidSchemaError } from '../errors.ts';
import type { Violation } from '../errors.ts';
import { FieldType, checkValue, parseSchemaDocument, sameFields, toJsonSchema, validateConfig } from './schema.ts';
import type { FieldDef, SchemaRecord } from './schema.ts';

/** The violations parseSchemaDocument reports for `doc`; fails when it accepts it. */
function violationsOf(doc: unknown): Violation[] {
  try {
    parseSchemaDocument(doc);
  } catch (e) {
    assert.ok(e instanceof InvalidSchemaError, `expected InvalidSchemaError, got ${String(e)}`);
    assert.equal(e.code, ErrorCode.InvalidSchema);
    assert.equal(e.status, 400);
    const v = e.details.violations;
    assert.ok(v && v.length > 0, 'violations are attached');
    for (const one of v) assert.equal(typeof one.message, 'string');
    return [...v];
  }
  assert.fail(`schema was accepted: ${JSON.stringify(doc)}`);
}

const pairs = (vs: readonly Violation[]): string[] => vs.map((v) => `${v.field} ${v.rule}`).sort();

function field(def: Partial<FieldDef> & Pick<FieldDef, 'type'>): FieldDef {
  return { name: 'f', required: false, ...def };
}

function record(fields: FieldDef[], extra: Partial<SchemaRecord> = {}): SchemaRecord {
  return { name: 'thermostat', version: 3, fields, publishedAt: 1700000000000, ...extra };
}

// --- parseSchemaDocument: accepted documents -------------------------------------------------

test('schema - parseSchemaDocument accepts every supported keyword and type', () => {
  const doc = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'urn:henge:thermostat',
    title: 'thermostat',
    description: 'room controller',
    type: 'object',
    'x-henge-version': 2,
    additionalProperties: false,
    required: ['setpoint', 'mode'],
    properties: {
      setpoint: { type: 'number', minimum: 5, maximum: 30.5, default: 21, description: 'target °C', title: 'Setpoint' },
      interval: { type: 'integer', minimum: 1, maximum: 3600, default: 60 },
      name: { type: 'string', minLength: 1, maxLength: 32, pattern: '^[a-z]+$', default: 'hall' },
      enabled: { type: 'boolean', default: true },
      mode: { enum: ['eco', 'comfort'], default: 'eco' },
      fan: { type: 'string', enum: ['auto', 'on'] },
    },
  };
  const parsed = parseSchemaDocument(doc);
  assert.equal(parsed.description, 'room controller');
  assert.deepStrictEqual(parsed.fields, [
    { name: 'enabled', type: FieldType.Boolean, required: false, default: true },
    { name: 'fan', type: FieldType.Enum, required: false, enum: ['auto', 'on'] },
    { name: 'interval', type: FieldType.Integer, required: false, minimum: 1, maximum: 3600, default: 60 },
    { name: 'mode', type: FieldType.Enum, required: true, enum: ['eco', 'comfort'], default: 'eco' },
    { name: 'name', type: FieldType.String, required: false, minLength: 1, maxLength: 32, pattern: '^[a-z]+$', default: 'hall' },
    { name: 'setpoint', type: FieldType.Number, required: true, description: 'target °C', minimum: 5, maximum: 30.5, default: 21 },
  ]);
});

test('schema - parseSchemaDocument accepts an empty document and gives no fields', () => {
  assert.deepStrictEqual(parseSchemaDocument({}), { fields: [] });
  assert.deepStrictEqual(parseSchemaDocument({ type: 'object', properties: {}, required: [] }), { fields: [] });
});

test('schema - parseSchemaDocument sorts fields by name', () => {
  const parsed = parseSchemaDocument({ properties: { b: { type: 'string' }, B: { type: 'string' }, a: { type: 'string' }, _z: { type: 'string' } } });
  assert.deepEqual(
    parsed.fields.map((f) => f.name),
    ['B', '_z', 'a', 'b'],
  );
});

test('schema - parseSchemaDocument keeps a default that sits exactly on its bounds', () => {
  const parsed = parseSchemaDocument({
    properties: {
      lo: { type: 'integer', minimum: 0, maximum: 10, default: 0 },
      hi: { type: 'number', minimum: 0, maximum: 1.5, default: 1.5 },
      s: { type: 'string', minLength: 2, maxLength: 2, default: '😀😀' },
    },
  });
  assert.deepEqual(
    parsed.fields.map((f) => [f.name, f.default]),
    [
      ['hi', 1.5],
      ['lo', 0],
      ['s', '😀😀'],
    ],
  );
});

test('schema - parseSchemaDocument accepts minimum equal to maximum and minLength equal to maxLength', () => {
  const parsed = parseSchemaDocument({ properties: { n: { type: 'integer', minimum: 4, maximum: 4 }, s: { type: 'string', minLength: 0, maxLength: 0 } } });
  assert.equal(parsed.fields.length, 2);
});

// --- parseSchemaDocument: refused documents --------------------------------------------------

test('schema - parseSchemaDocument refuses a document that is not an object', () => {
  for (const doc of [null, [], 'schema', 5, true, undefined]) {
    assert.deepEqual(pairs(violationsOf(doc)), [' type'], JSON.stringify(doc) ?? 'undefined');
  }
});

test('schema - parseSchemaDocument reports every problem with field path and rule', () => {
  const doc = {
    type: 'array',
    additionalProperties: true,
    description: 5,
    allOf: [],
    required: ['ghost', 'a'],
    properties: {
      a: { type: 'string', format: 'email' },
      b: { type: 'float' },
      c: { type: 'integer', minimum: 10, maximum: 1 },
      d: { type: 'string', pattern: '(' },
      e: { type: 'integer', minimum: 0, maximum: 10, default: 11 },
      f: { type: 'string', minLength: 5, maxLength: 2 },
      g: { enum: [] },
      h: { enum: ['x'], type: 'integer' },
      '9bad': { type: 'string' },
      i: 'string',
      j: { type: 'string', minimum: 1 },
      k: { type: 'integer', minLength: 1 },
      l: { type: 'integer', pattern: 'x' },
      m: { type: 'number', minimum: '0' },
      n: { type: 'string', maxLength: -1 },
      o: { type: 'string', maxLength: 1.5 },
      p: { type: 'boolean', default: 'yes' },
      q: { enum: ['a', 'b'], default: 'c' },
      r: { type: 'string', pattern: '^[a-z]+$', default: 'ABC' },
      s: { type: 'string', description: 7 },
      t: { type: 'integer', default: 1.5 },
      u: { type: 'string', minLength: 3, default: 'ab' },
      v: { type: 'string', pattern: 5 },
      w: { type: 'number', minimum: -1, default: -2 },
      x: { type: 'string', maxLength: 2, default: 'abc' },
      y: { enum: ['a', 1] },
      z: {},
    },
  };
  const violations = violationsOf(doc);
  assert.deepEqual(
    pairs(violations),
    [
      'additionalProperties const',
      'allOf unsupported-keyword',
      'description type',
      'properties.9bad pattern',
      'properties.a.format unsupported-keyword',
      'properties.b.type enum',
      'properties.c.minimum range',
      'properties.d.pattern syntax',
      'properties.e.default maximum',
      'properties.f.minLength range',
      'properties.g.enum type',
      'properties.h.type const',
      'properties.i type',
      'properties.j.minimum applies-to',
      'properties.k.minLength applies-to',
      'properties.l.pattern applies-to',
      'properties.m.minimum type',
      'properties.n.maxLength type',
      'properties.o.maxLength type',
      'properties.p.default type',
      'properties.q.default enum',
      'properties.r.default pattern',
      'properties.s.description type',
      'properties.t.default type',
      'properties.u.default minLength',
      'properties.v.pattern type',
      'properties.w.default minimum',
      'properties.x.default maxLength',
      'properties.y.enum type',
      'properties.z.type enum',
      'required.ghost unknown',
      'type const',
    ].sort(),
  );
});

test('schema - the error message lists every field and rule', () => {
  assert.throws(
    () => parseSchemaDocument({ properties: { a: { type: 'float' }, b: { type: 'integer', minimum: 2, maximum: 1 } }, required: ['c'] }),
    (e: unknown) => {
      assert.ok(e instanceof InvalidSchemaError);
      assert.match(e.message, /^invalid schema: /);
      for (const part of ['required.c (unknown)', 'properties.a.type (enum)', 'properties.b.minimum (range)']) assert.ok(e.message.includes(part), `${e.message} names ${part}`);
      return true;
    },
  );
});

test('schema - a default that breaks its own constraint names the rule in its message', () => {
  const [v] = violationsOf({ properties: { level: { type: 'integer', minimum: 1, default: 0 } } });
  assert.deepEqual(v && { field: v.field, rule: v.rule }, { field: 'properties.level.default', rule: 'minimum' });
  assert.match(v?.message ?? '', /^default must be >= 1, got 0$/);
});

test('schema - parseSchemaDocument refuses properties that is not an object', () => {
  assert.deepEqual(pairs(violationsOf({ properties: [] })), ['properties type']);
  assert.deepEqual(pairs(violationsOf({ properties: 'a', foo: 1 })), ['foo unsupported-keyword', 'properties type']);
});

test('schema - parseSchemaDocument refuses required that is not a list of names', () => {
  assert.deepEqual(pairs(violationsOf({ properties: { a: { type: 'string' } }, required: 'a' })), ['required type']);
  assert.deepEqual(pairs(violationsOf({ properties: { a: { type: 'string' } }, required: ['a', 1] })), ['required type']);
});

test('schema - parseSchemaDocument refuses more than 256 fields', () => {
  const props = (n: number): Record<string, unknown> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${i}`, { type: 'boolean' }]));
  assert.equal(parseSchemaDocument({ properties: props(256) }).fields.length, 256);
  assert.deepEqual(pairs(violationsOf({ properties: props(257) })), ['properties maxProperties']);
});

test('schema - field names must be config keys', () => {
  for (const name of ['9a', '-a', 'a.b', 'a b', 'é', 'a'.repeat(65), '']) {
    assert.deepEqual(pairs(violationsOf({ properties: { [name]: { type: 'string' } } })), [`properties.${name} pattern`], name);
  }
  assert.equal(parseSchemaDocument({ properties: { ['a'.repeat(64)]: { type: 'string' }, _x: { type: 'string' }, 'A-1_b': { type: 'string' } } }).fields.length, 3);
});

// --- checkValue ------------------------------------------------------------------------------

test('schema - checkValue: integer bounds are inclusive', () => {
  const f = field({ type: FieldType.Integer, minimum: -5, maximum: 10 });
  assert.equal(checkValue(f, -5), undefined);
  assert.equal(checkValue(f, 10), undefined);
  assert.equal(checkValue(f, 0), undefined);
  assert.deepEqual(checkValue(f, -6), { rule: 'minimum', message: 'must be >= -5, got -6' });
  assert.deepEqual(checkValue(f, 11), { rule: 'maximum', message: 'must be <= 10, got 11' });
});

test('schema - checkValue: number bounds are inclusive to the last bit', () => {
  const f = field({ type: FieldType.Number, minimum: 0.1, maximum: 0.3 });
  assert.equal(checkValue(f, 0.1), undefined);
  assert.equal(checkValue(f, 0.3), undefined);
  assert.equal(checkValue(f, 0.1 - 2 ** -56)?.rule, 'minimum'); // the double just below 0.1
  assert.equal(checkValue(f, 0.1 + 0.2)?.rule, 'maximum'); // 0.30000000000000004
});

test('schema - checkValue: integer refuses fractions, unsafe integers and non-numbers', () => {
  const f = field({ type: FieldType.Integer });
  assert.equal(checkValue(f, 3.0), undefined);
  assert.equal(checkValue(f, -0), undefined);
  assert.equal(checkValue(f, Number.MAX_SAFE_INTEGER), undefined);
  assert.equal(checkValue(f, Number.MIN_SAFE_INTEGER), undefined);
  for (const v of [1.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN, Number.POSITIVE_INFINITY, '3', true, null, undefined, 3n, {}]) {
    assert.equal(checkValue(f, v)?.rule, 'type', String(v));
  }
  assert.equal(checkValue(f, 1.5)?.message, 'must be an integer, got 1.5');
  assert.equal(checkValue(f, '3')?.message, 'must be a integer, got "3"');
});

test('schema - checkValue: number takes fractions and integers but not NaN, infinities or strings', () => {
  const f = field({ type: FieldType.Number });
  for (const v of [0, -0, 1.5, -1e300, Number.MAX_VALUE, Number.MIN_VALUE]) assert.equal(checkValue(f, v), undefined, String(v));
  for (const v of [Number.NaN, Number.NEGATIVE_INFINITY, '1.5', false, null]) assert.equal(checkValue(f, v)?.rule, 'type', String(v));
});

test('schema - checkValue: boolean takes only true and false', () => {
  const f = field({ type: FieldType.Boolean });
  assert.equal(checkValue(f, true), undefined);
  assert.equal(checkValue(f, false), undefined);
  for (const v of ['true', 0, 1, null, undefined]) assert.equal(checkValue(f, v)?.rule, 'type', String(v));
  assert.equal(checkValue(f, 'true')?.message, 'must be a boolean, got "true"');
});

test('schema - checkValue: minLength and maxLength count code points, not UTF-16 units', () => {
  const f = field({ type: FieldType.String, minLength: 2, maxLength: 3 });
  assert.equal(checkValue(f, 'ab'), undefined);
  assert.equal(checkValue(f, 'abc'), undefined);
  assert.equal(checkValue(f, '😀😀'), undefined); // 4 UTF-16 units, 2 code points
  assert.equal(checkValue(f, '😀😀😀'), undefined); // 6 units, 3 code points
  assert.equal(checkValue(f, 'e\u0301'), undefined); // decomposed é: 2 code points
  assert.deepEqual(checkValue(f, '😀'), { rule: 'minLength', message: 'must have at least 2 characters, got 1' });
  assert.deepEqual(checkValue(f, '😀😀😀😀'), { rule: 'maxLength', message: 'must have at most 3 characters, got 4' });
  assert.equal(checkValue(f, 'abcd')?.rule, 'maxLength');
  assert.equal(checkValue(f, '')?.rule, 'minLength');
});

test('schema - checkValue: pattern is a unicode regular expression that is not anchored unless it says so', () => {
  const loose = field({ type: FieldType.String, pattern: 'ab' });
  assert.equal(checkValue(loose, 'xaby'), undefined);
  assert.deepEqual(checkValue(loose, 'ba'), { rule: 'pattern', message: 'must match ab' });
  const anchored = field({ type: FieldType.String, pattern: '^[a-z]+$' });
  assert.equal(checkValue(anchored, 'abc'), undefined);
  assert.equal(checkValue(anchored, 'abc1')?.rule, 'pattern');
  assert.equal(checkValue(anchored, '')?.rule, 'pattern');
  const oneChar = field({ type: FieldType.String, pattern: '^.$' });
  assert.equal(checkValue(oneChar, '😀'), undefined);
  const letters = field({ type: FieldType.String, pattern: '^\\p{L}+$' });
  assert.equal(checkValue(letters, 'héllo'), undefined);
  assert.equal(checkValue(letters, 'h3llo')?.rule, 'pattern');
});

test('schema - checkValue: length is checked before pattern', () => {
  const f = field({ type: FieldType.String, maxLength: 2, pattern: '^[0-9]+$' });
  assert.equal(checkValue(f, 'abc')?.rule, 'maxLength');
  assert.equal(checkValue(f, 'ab')?.rule, 'pattern');
});

test('schema - checkValue: enum takes only its listed strings, case-sensitively', () => {
  const f = field({ type: FieldType.Enum, enum: ['eco', 'comfort'] });
  assert.equal(checkValue(f, 'eco'), undefined);
  assert.equal(checkValue(f, 'comfort'), undefined);
  assert.deepEqual(checkValue(f, 'Eco'), { rule: 'enum', message: 'must be one of eco, comfort, got "Eco"' });
  for (const v of ['', 'off', 0, true, null]) assert.equal(checkValue(f, v)?.rule, 'enum', String(v));
});

test('schema - checkValue: string refuses non-strings', () => {
  const f = field({ type: FieldType.String });
  assert.equal(checkValue(f, ''), undefined);
  for (const v of [1, true, null, ['a'], { a: 1 }]) assert.equal(checkValue(f, v)?.rule, 'type', JSON.stringify(v));
  assert.equal(checkValue(f, { a: 1 })?.message, 'must be a string, got object');
  assert.equal(checkValue(f, null)?.message, 'must be a string, got null');
});

// --- validateConfig ---------------------------------------------------------------------------

const thermostat = record([
  { name: 'mode', type: FieldType.Enum, required: true, enum: ['eco', 'comfort'] },
  { name: 'name', type: FieldType.String, required: false, maxLength: 4 },
  { name: 'setpoint', type: FieldType.Number, required: true, minimum: 5, maximum: 30 },
]);

test('schema - validateConfig gives no violations for a valid config', () => {
  assert.deepEqual(validateConfig(thermostat, { mode: 'eco', setpoint: 21 }), []);
  assert.deepEqual(validateConfig(thermostat, { mode: 'eco', setpoint: 5, name: 'hall' }), []);
});

test('schema - validateConfig reports every missing required field', () => {
  assert.deepEqual(validateConfig(thermostat, {}), [
    { field: 'values.mode', rule: 'required', message: 'mode is required and has no value' },
    { field: 'values.setpoint', rule: 'required', message: 'setpoint is required and has no value' },
  ]);
});

test('schema - validateConfig reports keys that are not fields of the schema', () => {
  assert.deepEqual(validateConfig(thermostat, { mode: 'eco', setpoint: 20, colour: 'red' }), [
    { field: 'values.colour', rule: 'unknown', message: 'colour is not a field of schema thermostat' },
  ]);
});

test('schema - validateConfig reports broken rules next to required and unknown ones', () => {
  const v = validateConfig(thermostat, { mode: 'off', name: 'kitchen', extra: 1 });
  assert.deepEqual(pairs(v), ['values.extra unknown', 'values.mode enum', 'values.name maxLength', 'values.setpoint required']);
  const mode = v.find((x) => x.field === 'values.mode');
  assert.equal(mode?.message, 'mode must be one of eco, comfort, got "off"');
});

test('schema - validateConfig names the device when one is given', () => {
  const v = validateConfig(thermostat, { setpoint: 99, x: true }, 'pico-1');
  assert.equal(v.length, 3);
  for (const one of v) assert.equal(one.device, 'pico-1');
  for (const one of validateConfig(thermostat, { setpoint: 99 })) assert.equal(Object.hasOwn(one, 'device'), false);
});

test('schema - validateConfig does not take inherited properties for values', () => {
  const s = record([{ name: 'constructor', type: FieldType.String, required: true }]);
  assert.deepEqual(pairs(validateConfig(s, {})), ['values.constructor required']);
});

// --- toJsonSchema ------------------------------------------------------------------------------

const fullRecord = record(
  [
    { name: 'enabled', type: FieldType.Boolean, required: false, default: true },
    { name: 'interval', type: FieldType.Integer, required: true, minimum: 1, maximum: 3600, default: 60, description: 'seconds' },
    { name: 'mode', type: FieldType.Enum, required: true, enum: ['eco', 'comfort'], default: 'comfort' },
    { name: 'name', type: FieldType.String, required: false, minLength: 1, maxLength: 8, pattern: '^[a-z]+$' },
    { name: 'ratio', type: FieldType.Number, required: false, minimum: 0, maximum: 1 },
  ],
  { description: 'all kinds' },
);

test('schema - toJsonSchema writes a closed JSON Schema document', () => {
  assert.deepStrictEqual(toJsonSchema(fullRecord), {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'thermostat',
    description: 'all kinds',
    type: 'object',
    properties: {
      enabled: { type: 'boolean', default: true },
      interval: { type: 'integer', description: 'seconds', default: 60, minimum: 1, maximum: 3600 },
      mode: { type: 'string', enum: ['eco', 'comfort'], default: 'comfort' },
      name: { type: 'string', minLength: 1, maxLength: 8, pattern: '^[a-z]+$' },
      ratio: { type: 'number', minimum: 0, maximum: 1 },
    },
    required: ['interval', 'mode'],
    additionalProperties: false,
    'x-henge-version': 3,
  });
});

test('schema - toJsonSchema then parseSchemaDocument gives the same fields', () => {
  const doc = JSON.parse(JSON.stringify(toJsonSchema(fullRecord))) as unknown;
  const parsed = parseSchemaDocument(doc);
  assert.deepStrictEqual(parsed.fields, [...fullRecord.fields]);
  assert.equal(parsed.description, 'all kinds');
});

test('schema - sameFields: re-publishing the exported form of a published schema is no change', () => {
  const published = parseSchemaDocument(toJsonSchema(fullRecord));
  const stored = record(published.fields, published.description !== undefined ? { description: published.description } : {});
  const again = parseSchemaDocument(JSON.parse(JSON.stringify(toJsonSchema(stored))) as unknown);
  assert.equal(sameFields(stored, again.fields, again.description), true);
});

test('schema - parseSchemaDocument then toJsonSchema then parseSchemaDocument is stable', () => {
  const first = parseSchemaDocument({
    properties: { z: { type: 'integer', minimum: -3 }, a: { enum: ['x'] }, m: { type: 'string', default: '' } },
    required: ['z'],
  });
  const again = parseSchemaDocument(toJsonSchema(record(first.fields)));
  assert.deepStrictEqual(again.fields, first.fields);
  assert.equal(again.description, undefined);
});

test('schema - sameFields tells a changed field or description apart', () => {
  const fields = [...fullRecord.fields];
  assert.equal(sameFields(fullRecord, fields, 'all kinds'), true);
  assert.equal(sameFields(fullRecord, fields, 'other'), false);
  assert.equal(sameFields(fullRecord, fields, undefined), false);
  assert.equal(sameFields(fullRecord, fields.slice(1), 'all kinds'), false);
  const changed = fields.map((f) => (f.name === 'ratio' ? { ...f, maximum: 2 } : f));
  assert.equal(sameFields(fullRecord, changed, 'all kinds'), false);
});

test('schema - __proto__ is refused as a field name rather than silently lost', () => {
  const v = violationsOf(JSON.parse('{"properties":{"__proto__":{"type":"string"}}}'));
  assert.equal(v[0]?.field, 'properties.__proto__');
  assert.equal(v[0]?.rule, 'pattern');
});

test('schema - a default or enum value that could not go on the wire is refused: a lone surrogate, over 4,096 UTF-8 bytes', () => {
  const doc = (properties: Record<string, unknown>): unknown => ({ type: 'object', properties });
  assert.deepEqual(pairs(violationsOf(doc({ a: { type: 'string', default: 'x\ud800' } }))), ['properties.a.default utf8']);
  assert.deepEqual(pairs(violationsOf(doc({ a: { type: 'string', default: '€'.repeat(1366) } }))), ['properties.a.default maxBytes']);
  assert.deepEqual(pairs(violationsOf(doc({ a: { enum: ['ok', '\udc00', 'é'.repeat(2049)] } }))), ['properties.a.enum maxBytes', 'properties.a.enum utf8']);
  // At the limit, and a valid surrogate pair, are fine.
  const ok = parseSchemaDocument(doc({ a: { type: 'string', default: '€'.repeat(1365) }, b: { enum: ['😀', 'é'.repeat(2048)] } }));
  assert.equal(ok.fields.length, 2);
});
