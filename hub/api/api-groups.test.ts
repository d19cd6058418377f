/** REST API, groups: PUT/GET/DELETE, selectors and their warnings and errors, priority, member checks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useApiHub } from '../../test/helpers/api.ts';
import type { EffectiveConfig, GroupRecord, Warning } from '../domain/index.ts';

// One hub on loopback in a temp folder for this file.
const { call, expectError, fieldsOf } = useApiHub('henge-api-groups-');

interface GroupReply {
  readonly group: GroupRecord & { members: string[] };
  readonly seq: number | null;
  readonly warnings: readonly Warning[];
}

async function addDevice(body: Record<string, unknown>): Promise<void> {
  const r = await call('POST', '/devices', body);
  assert.equal(r.status, 201, JSON.stringify(r.body));
}

async function config(id: string): Promise<EffectiveConfig> {
  const r = await call<EffectiveConfig>('GET', `/devices/${id}/config`);
  assert.equal(r.status, 200);
  return r.body;
}

test('groups - create, get, list, change and remove a group', async () => {
  await addDevice({ id: 'grp-1', labels: { team: 'blue' } });
  await addDevice({ id: 'grp-2', labels: { team: 'red' } });
  const put = await call<GroupReply>('PUT', '/groups/blue', { selector: 'team=blue', priority: 3, values: { x: 1 } });
  assert.equal(put.status, 200);
  assert.equal(typeof put.body.seq, 'number');
  assert.deepEqual(put.body.warnings, []);
  const g = put.body.group;
  assert.deepEqual([g.name, g.selector, g.priority, g.values, g.members], ['blue', 'team=blue', 3, { x: 1 }, ['grp-1']]);
  assert.deepEqual((await call<GroupReply>('GET', '/groups/blue')).body.group, g);
  assert.equal((await call('PUT', '/groups/low', { selector: '*' })).status, 200);

  const list = await call<{ groups: Array<GroupRecord & { members: number }> }>('GET', '/groups');
  assert.equal(list.status, 200);
  assert.deepEqual(
    list.body.groups.filter((x) => x.name === 'blue' || x.name === 'low').map((x) => [x.name, x.priority]),
    [
      ['blue', 3],
      ['low', 0],
    ],
    'highest priority first; priority defaults to 0',
  );
  assert.equal(list.body.groups.find((x) => x.name === 'blue')?.members, 1);

  // Changing the selector keeps the priority and values when they are not given.
  const widened = await call<GroupReply>('PUT', '/groups/blue', { selector: 'team in (blue|red)' });
  assert.deepEqual([widened.body.group.priority, widened.body.group.values, widened.body.group.members], [3, { x: 1 }, ['grp-1', 'grp-2']]);
  assert.equal((await config('grp-2')).provenance['x']?.group, 'blue');
  const same = await call<GroupReply>('PUT', '/groups/blue', { selector: 'team in (red|blue)', priority: 3 });
  assert.equal(same.body.seq, null, 'the same selector spelled differently changes nothing');
  const replaced = await call<GroupReply>('PUT', '/groups/blue', { selector: 'team in (blue|red)', values: { y: 2 } });
  assert.deepEqual(replaced.body.group.values, { y: 2 }, 'values, when given, replace the group values');

  const removed = await call<{ seq: number }>('DELETE', '/groups/blue');
  assert.equal(removed.status, 200);
  assert.equal(typeof removed.body.seq, 'number');
  expectError(await call('GET', '/groups/blue'), 404, 'HENGE_E_NOT_FOUND');
  expectError(await call('DELETE', '/groups/blue'), 404, 'HENGE_E_NOT_FOUND');
  assert.deepEqual((await config('grp-1')).values, {});
  assert.deepEqual((await config('grp-1')).groups, ['low']);
});

test('groups - a selector that matches nothing is a warning HENGE_W_SELECTOR_MATCHES_NOTHING, not an error', async () => {
  const r = await call<GroupReply>('PUT', '/groups/nobody', { selector: 'team=nobody', values: { a: 1 } });
  assert.equal(r.status, 200);
  assert.equal(r.body.warnings.length, 1);
  assert.equal(r.body.warnings[0]?.code, 'HENGE_W_SELECTOR_MATCHES_NOTHING');
  assert.equal(r.body.warnings[0]?.field, 'selector');
  assert.match(r.body.warnings[0]?.message ?? '', /team=nobody/);
  assert.deepEqual(r.body.group.members, []);
  const v = await call<{ warnings: Warning[] }>('PATCH', '/groups/nobody/values', { values: { b: 2 } });
  assert.equal(v.status, 200);
  assert.equal(v.body.warnings[0]?.code, 'HENGE_W_SELECTOR_MATCHES_NOTHING');
  // A device that comes later joins it.
  await addDevice({ id: 'late', labels: { team: 'nobody' } });
  assert.deepEqual((await config('late')).provenance['a'], { value: 1, layer: 'group', group: 'nobody' });
  assert.deepEqual((await call<GroupReply>('GET', '/groups/nobody')).body.group.members, ['late']);
});

test('groups - an invalid selector is refused with 400 HENGE_E_INVALID_SELECTOR', async () => {
  for (const selector of ['team=a b', '=x', 'Bad Key=1', 'team in ()', 'team=ok,,x']) {
    const e = expectError(await call('PUT', '/groups/badsel', { selector }), 400, 'HENGE_E_INVALID_SELECTOR');
    assert.deepEqual(fieldsOf(e), [['selector', 'syntax']], selector);
  }
  expectError(await call('GET', '/groups/badsel'), 404, 'HENGE_E_NOT_FOUND');
});

test('groups - a group id that breaks the id rules is refused with 400 HENGE_E_INVALID_ID', async () => {
  const e = expectError(await call('PUT', '/groups/Bad_Group', { selector: '*' }), 400, 'HENGE_E_INVALID_ID');
  assert.deepEqual(fieldsOf(e), [['id', 'pattern']]);
});

test('groups - priority must be an integer: "5" as a string or 1.5 is refused, not coerced', async () => {
  const str = expectError(await call('PUT', '/groups/prio', { selector: '*', priority: '5' }), 400, 'HENGE_E_VALIDATION');
  assert.deepEqual(fieldsOf(str), [['body.priority', 'type']]);
  const frac = expectError(await call('PUT', '/groups/prio', { selector: '*', priority: 1.5 }), 400, 'HENGE_E_VALIDATION');
  assert.deepEqual(fieldsOf(frac), [['body.priority', 'type']]);
  const big = expectError(await call('PUT', '/groups/prio', { selector: '*', priority: 2_000_000 }), 400, 'HENGE_E_VALIDATION');
  assert.deepEqual(fieldsOf(big), [['body.priority', 'maximum']]);
  const unknown = expectError(await call('PUT', '/groups/prio', { selector: '*', colour: 'red' }), 400, 'HENGE_E_VALIDATION');
  assert.deepEqual(fieldsOf(unknown), [['body.colour', 'unknown']]);
  const missing = expectError(await call('PUT', '/groups/prio', { priority: 1 }), 400, 'HENGE_E_VALIDATION');
  assert.deepEqual(fieldsOf(missing), [['body.selector', 'required']]);
  expectError(await call('GET', '/groups/prio'), 404, 'HENGE_E_NOT_FOUND');
});

const ZONE = {
  type: 'object',
  properties: { level: { type: 'integer', minimum: 0, maximum: 10, default: 1 }, mode: { enum: ['a', 'b'] } },
  required: ['mode'],
};

test('groups - a group change that would break a member device is refused whole', async () => {
  assert.equal((await call('PUT', '/schemas/zone', ZONE)).status, 201);
  const pre = await call<GroupReply>('PUT', '/groups/gz', { selector: 'zone=g', values: { mode: 'a' } });
  assert.equal(pre.status, 200);
  // The required mode comes from the group.
  await addDevice({ id: 'gm-1', labels: { zone: 'g' }, schema: 'zone' });
  assert.deepEqual((await config('gm-1')).values, { level: 1, mode: 'a' });
  const before = await config('gm-1');

  const bad = expectError(await call('PATCH', '/groups/gz/values', { values: { level: 5, mode: 'zzz' } }), 422, 'HENGE_E_SCHEMA_VIOLATION');
  assert.deepEqual(
    (bad.details.violations ?? []).map((v) => [v.field, v.rule, v.device]),
    [['values.mode', 'enum', 'gm-1']],
  );
  const unset = expectError(await call('DELETE', '/groups/gz/values/mode'), 422, 'HENGE_E_SCHEMA_VIOLATION');
  assert.deepEqual(fieldsOf(unset), [['values.mode', 'required']]);
  expectError(await call('DELETE', '/groups/gz'), 422, 'HENGE_E_SCHEMA_VIOLATION');
  expectError(await call('PUT', '/groups/gz', { selector: 'zone=elsewhere' }), 422, 'HENGE_E_SCHEMA_VIOLATION');
  expectError(await call('PUT', '/groups/gz', { selector: 'zone=g', values: { level: 3 } }), 422, 'HENGE_E_SCHEMA_VIOLATION');
  const outranked = expectError(await call('PUT', '/groups/gz-top', { selector: 'zone=g', priority: 9, values: { level: 11 } }), 422, 'HENGE_E_SCHEMA_VIOLATION');
  assert.deepEqual(fieldsOf(outranked), [['values.level', 'maximum']]);
  expectError(await call('GET', '/groups/gz-top'), 404, 'HENGE_E_NOT_FOUND');

  const g = (await call<GroupReply>('GET', '/groups/gz')).body.group;
  assert.deepEqual([g.selector, g.values, g.members], ['zone=g', { mode: 'a' }, ['gm-1']]);
  assert.deepEqual(await config('gm-1'), before);
});

test('groups - a key that no member schema knows gives a warning HENGE_W_KEY_IGNORED', async () => {
  if ((await call('GET', '/schemas/zone')).status === 404) assert.equal((await call('PUT', '/schemas/zone', ZONE)).status, 201);
  await addDevice({ id: 'ki-1', labels: { ki: 'yes' }, schema: 'zone', values: { mode: 'b' } });
  const r = await call<GroupReply>('PUT', '/groups/ki', { selector: 'ki=yes', values: { level: 2, stray: 'x' } });
  assert.equal(r.status, 200);
  assert.deepEqual(
    r.body.warnings.map((w) => [w.code, w.field]),
    [['HENGE_W_KEY_IGNORED', 'values.stray']],
  );
  const c = await config('ki-1');
  assert.deepEqual(c.values, { level: 2, mode: 'b' }, 'the ignored key does not reach the device');
  assert.equal(c.provenance['stray'], undefined);
});
