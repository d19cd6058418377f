/**
 * Fault scenario 5, bad admin input: property-based tests (fast-check) of the REST API against the
 * schema rules. Random edits (PATCH, PUT and DELETE of device and group values, with valid and invalid
 * keys, types, ranges, lengths, patterns, lone surrogates, texts around the 4,096-byte limit) go to a
 * real in-process hub. Each must either apply whole (2xx, and every layer and effective config equals
 * the model in scenarios/config-model.ts) or be refused whole (4xx `{code: HENGE_E_*, message, details}`,
 * nothing changed anywhere), and the model must agree on which. Never a 5xx.
 * HENGE_FAULTS_SEED=<n> replays a run; the seed is in the verdict.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { useApiHub } from '../helpers/api.ts';
import { applyEdit, deviceValid, effective, generalProblem } from './scenarios/config-model.ts';
import type { Field, ModelDevice, ModelState, Value, Values } from './scenarios/config-model.ts';
import { faultSeed, verdictLine } from './verdict.ts';

const api = useApiHub('henge-fault-props-');

const SCHEMA: Readonly<Record<string, Field>> = {
  mode: { type: 'enum', enum: ['heat', 'cool', 'off'], default: 'off' },
  target: { type: 'number', minimum: 5, maximum: 35 },
  count: { type: 'integer', required: true, minimum: 0, maximum: 100 },
  label: { type: 'string', minLength: 1, maxLength: 8, pattern: '^[a-z][a-z0-9 ]*$' },
  flag: { type: 'boolean' },
  note: { type: 'string' },
};
const DEVICES: Readonly<Record<string, ModelDevice>> = {
  s1: { schema: SCHEMA, groups: ['ga'] },
  s2: { schema: SCHEMA, groups: ['gb'] },
  f1: { schema: null, groups: ['ga'] },
};
const GROUPS = ['ga', 'gb'] as const;
const FREE_KEYS = ['x', 'y', 'Zed_9', 'a-b'];
const BAD_KEYS = ['', '9lives', 'has space', '__proto__', 'k'.repeat(65), 'é', 'a.b'];

function jsonSchema(): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(SCHEMA)) {
    const { required: _r, type, ...rest } = f;
    properties[k] = type === 'enum' ? { type: 'string', ...rest } : { type, ...rest };
  }
  return { type: 'object', properties, required: Object.entries(SCHEMA).filter(([, f]) => f.required).map(([k]) => k), additionalProperties: false };
}

let ready = false;
async function setUp(): Promise<void> {
  if (ready) return;
  const ok = (r: { status: number; body: unknown }): void => assert.ok(r.status < 300, JSON.stringify(r.body));
  ok(await api.call('PUT', '/schemas/thermo', jsonSchema()));
  ok(await api.call('PUT', '/groups/ga', { selector: 'site=a', priority: 10 }));
  ok(await api.call('PUT', '/groups/gb', { selector: 'site=b', priority: 5 }));
  ok(await api.call('POST', '/devices', { id: 's1', labels: { site: 'a' }, schema: 'thermo', values: { count: 1 } }));
  ok(await api.call('POST', '/devices', { id: 's2', labels: { site: 'b' }, schema: 'thermo', values: { count: 2 } }));
  ok(await api.call('POST', '/devices', { id: 'f1', labels: { site: 'a' }, values: {} }));
  ready = true;
}

/** What the hub holds now: every layer. */
async function readState(): Promise<ModelState> {
  const devices: Record<string, Values> = {};
  const groups: Record<string, Values> = {};
  for (const id of Object.keys(DEVICES)) devices[id] = (await api.call<{ values: Values }>('GET', `/devices/${id}/values`)).body.values;
  for (const g of GROUPS) groups[g] = (await api.call<{ values: Values }>('GET', `/groups/${g}/values`)).body.values;
  return { devices, groups };
}

type Edit =
  | { readonly kind: 'patch' | 'put'; readonly layer: 'devices' | 'groups'; readonly id: string; readonly values: Record<string, Value | null> }
  | { readonly kind: 'delete'; readonly layer: 'devices' | 'groups'; readonly id: string; readonly key: string };

const textArb = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.stringMatching(/^[a-z][a-z0-9 ]{0,9}$/),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.constantFrom('heat', 'cool', 'off', 'HEAT', ''),
  fc.constantFrom('\ud800', 'a\udc00b', '\udbff\udfff'), // lone surrogates, and a valid pair
  fc.integer({ min: 4090, max: 4100 }).map((n) => 'a'.repeat(n)),
  fc.integer({ min: 1363, max: 1367 }).map((n) => '€'.repeat(n)), // 3 bytes each: 4,089..4,101 bytes
);
const valueArb: fc.Arbitrary<Value> = fc.oneof(
  textArb,
  fc.integer({ min: -10, max: 120 }),
  fc.double({ min: -10, max: 50, noNaN: true }),
  fc.oneof(fc.constant(Number.MAX_SAFE_INTEGER + 2), fc.constant(1e300), fc.constant(-0)),
  fc.boolean(),
);
const keyArb = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...Object.keys(SCHEMA)) }, { weight: 3, arbitrary: fc.constantFrom(...FREE_KEYS) }, { weight: 1, arbitrary: fc.constantFrom(...BAD_KEYS) });
const targetArb = fc.oneof(
  fc.record({ layer: fc.constant('devices' as const), id: fc.constantFrom(...Object.keys(DEVICES)) }),
  fc.record({ layer: fc.constant('groups' as const), id: fc.constantFrom(...GROUPS) }),
);
const editArb: fc.Arbitrary<Edit> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(targetArb, fc.dictionary(keyArb, fc.option(valueArb, { freq: 5 }), { minKeys: 1, maxKeys: 4 })).map(([t, values]): Edit => ({ kind: 'patch', ...t, values })) },
  { weight: 2, arbitrary: fc.tuple(targetArb, fc.dictionary(keyArb, valueArb, { maxKeys: 4 })).map(([t, values]): Edit => ({ kind: 'put', ...t, values })) },
  { weight: 1, arbitrary: fc.tuple(targetArb, keyArb).map(([t, key]): Edit => ({ kind: 'delete', ...t, key })) },
);

/** The model's verdict on an edit: the state after it, or null when the hub must refuse it. */
function predict(state: ModelState, edit: Edit): ModelState | null {
  const e = JSON.parse(JSON.stringify(edit)) as Edit; // what the hub receives (-0 is sent as 0)
  const patch: Record<string, Value | null> = e.kind === 'delete' ? { [e.key]: null } : e.values;
  for (const [k, v] of Object.entries(patch)) {
    if (e.kind === 'put' && v === null) return null;
    if (generalProblem(k, v) !== undefined) return null;
  }
  const layer = state[e.layer][e.id] ?? {};
  const next: ModelState = { ...state, [e.layer]: { ...state[e.layer], [e.id]: applyEdit(layer, patch, e.kind === 'put') } };
  for (const [id, d] of Object.entries(DEVICES)) if (!deviceValid(next, d, id)) return null;
  return next;
}

async function send(e: Edit): Promise<{ status: number; body: unknown }> {
  if (e.kind === 'delete') return api.call('DELETE', `/${e.layer}/${e.id}/values/${encodeURIComponent(e.key)}`);
  return api.call(e.kind === 'put' ? 'PUT' : 'PATCH', `/${e.layer}/${e.id}/values`, { values: e.values });
}

test('faults admin input - a random edit applies whole or is refused whole with a code, as the schema rules say', { timeout: 300_000 }, async (t) => {
  await setUp();
  const seed = faultSeed();
  const tally = { edits: 0, applied: 0, refused: 0, codes: new Set<string>() };
  const failure = await fc.check(
    fc.asyncProperty(fc.array(editArb, { minLength: 1, maxLength: 8 }), async (edits) => {
      let state = await readState();
      for (const e of edits) {
        const expected = predict(state, e);
        const res = await send(e);
        tally.edits++;
        const what = `${JSON.stringify(e).slice(0, 300)} → ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`;
        assert.ok(res.status < 500, `a 5xx: ${what}`);
        const after = await readState();
        if (res.status < 300) {
          tally.applied++;
          assert.ok(expected, `applied, but the rules refuse it: ${what}`);
          assert.ok(isDeepStrictEqual(after, expected), `not applied whole: ${what}\nhub ${JSON.stringify(after).slice(0, 600)}\nmodel ${JSON.stringify(expected).slice(0, 600)}`);
          for (const [id, d] of Object.entries(DEVICES)) {
            const cfg = (await api.call<{ values: Values }>('GET', `/devices/${id}/config`)).body.values;
            assert.ok(isDeepStrictEqual(cfg, effective(after, d, id)), `effective config of ${id} differs from the model after ${what}`);
          }
        } else {
          tally.refused++;
          const b = res.body as { code?: unknown; message?: unknown; details?: unknown };
          assert.ok(typeof b.code === 'string' && /^HENGE_E_[A-Z_]+$/.test(b.code), `refused without a code: ${what}`);
          assert.ok(typeof b.message === 'string' && b.message.length > 0 && typeof b.details === 'object' && b.details !== null, `not {code, message, details}: ${what}`);
          tally.codes.add(`${res.status} ${b.code}`);
          assert.equal(expected, null, `refused, but the rules accept it: ${what}`);
          assert.ok(isDeepStrictEqual(after, state), `refused, yet something changed: ${what}`);
        }
        state = after;
      }
    }),
    { seed, numRuns: 80, endOnFailure: false },
  );
  const pass = !failure.failed;
  t.diagnostic(verdictLine('admin-input', pass, { seed, runs: failure.numRuns, edits: tally.edits, applied: tally.applied, refused: tally.refused, codes: [...tally.codes].sort().join('|').replaceAll(' ', '_') }));
  if (failure.failed) assert.fail(`${fc.defaultReportMessage(failure) ?? `failed (seed ${seed})`}\n${String(failure.errorInstance)}`);
  assert.ok(tally.applied > 50 && tally.refused > 50, `too one-sided to prove anything: ${tally.applied} applied, ${tally.refused} refused`);
});
