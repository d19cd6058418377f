/** REST API, events: the log with filters (device, key, type, since, until), order, limit, pagination, reasons. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useApiHub } from '../../test/helpers/api.ts';

// One hub on loopback in a temp folder for this file.
const { call, expectError, fieldsOf } = useApiHub('henge-api-events-');

interface ApiEvent {
  readonly seq: number;
  readonly time: number;
  readonly actor: string;
  readonly reason?: string;
  readonly type: string;
  readonly data: { readonly device?: string; readonly group?: string; readonly changes?: ReadonlyArray<{ key: string }> };
}
interface Page {
  readonly events: ApiEvent[];
  readonly next: number | null;
}

async function page(query: string): Promise<Page> {
  const r = await call<Page>('GET', `/events${query}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/** The whole log, read in one page. */
async function everything(): Promise<ApiEvent[]> {
  const p = await page('?limit=1000');
  assert.equal(p.next, null);
  return p.events;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A time between the first and second halves of the fixture. */
let splitTime = 0;
let fixture: Promise<void> | undefined;

/** Makes the same history once for every test of this file (the log is append-only). */
function history(): Promise<void> {
  fixture ??= makeHistory();
  return fixture;
}

async function makeHistory(): Promise<void> {
  const ok = async (method: string, path: string, body?: unknown): Promise<void> => {
    const r = await call(method, path, body);
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  };
  await ok('POST', '/devices', { id: 'ev-1', labels: { site: 'a' } });
  await ok('POST', '/devices', { id: 'ev-2', labels: { site: 'b' } });
  await ok('PATCH', '/devices/ev-1/values', { values: { temp: 20, mode: 'on' } });
  await ok('PATCH', '/devices/ev-2/values', { values: { temp: 18 } });
  await sleep(15);
  splitTime = Date.now();
  await sleep(15);
  await ok('PUT', '/groups/site-a', { selector: 'site=a', values: { temp: 19 } });
  await ok('PATCH', '/devices/ev-1/values', { values: { mode: 'off' } });
  await ok('PATCH', '/devices/ev-1', { labels: { floor: '1' } });
  await ok('DELETE', '/devices/ev-2');
  await ok('PATCH', '/devices/ev-1/values', { values: { temp: 21 } });
}

test('events - the log lists every change in order with seq, time, actor, type and data', async () => {
  await history();
  const all = await everything();
  assert.deepEqual(
    all.map((e) => e.seq),
    all.map((_, i) => i + 1),
    'seq 1, 2, 3, ... with no gap',
  );
  assert.equal(all[0]?.type, 'hub.initialized');
  assert.equal(all[0]?.actor, 'hub');
  assert.equal(all[1]?.type, 'token.created');
  const mine = all.filter((e) => e.seq > 2);
  assert.ok(mine.every((e) => e.actor === 'admin'), 'changes made through the API carry the token name');
  assert.ok(all.every((e, i) => i === 0 || e.time >= (all[i - 1]?.time ?? 0)), 'times never go back');
  assert.deepEqual(
    mine.map((e) => e.type),
    ['device.added', 'device.added', 'values.changed', 'values.changed', 'group.defined', 'values.changed', 'values.changed', 'device.updated', 'device.removed', 'values.changed'],
  );
  const status = await call<{ logLength: number }>('GET', '/status');
  assert.equal(status.body.logLength, all.length);
});

test('events - filters: device, key and type (exact or a prefix)', async () => {
  await history();
  const all = await everything();
  const byDevice = await page('?device=ev-1');
  assert.deepEqual(byDevice.events, all.filter((e) => e.data.device === 'ev-1'));
  assert.equal(byDevice.events.length, 5);
  const removed = await page('?device=ev-2&type=device.removed');
  assert.equal(removed.events.length, 1);

  const byKey = await page('?key=temp');
  assert.deepEqual(byKey.events, all.filter((e) => (e.data.changes ?? []).some((c) => c.key === 'temp')));
  assert.deepEqual(byKey.events.map((e) => e.data.device ?? e.data.group), ['ev-1', 'ev-2', 'site-a', 'ev-1']);
  const keyAndDevice = await page('?key=mode&device=ev-1');
  assert.equal(keyAndDevice.events.length, 2);

  const prefix = await page('?type=device');
  assert.deepEqual(prefix.events.map((e) => e.type), ['device.added', 'device.added', 'device.updated', 'device.removed']);
  const exact = await page('?type=values.changed');
  assert.deepEqual(exact.events, all.filter((e) => e.type === 'values.changed'));
  assert.equal(exact.events.length, 5);
  assert.deepEqual((await page('?type=dev')).events, [], 'a prefix is a whole dotted segment');
  assert.deepEqual((await page('?device=nobody')).events, []);
});

test('events - since and until, as epoch milliseconds or ISO 8601, are inclusive', async () => {
  await history();
  const all = await everything();
  const later = all.filter((e) => e.time >= splitTime);
  const earlier = all.filter((e) => e.time <= splitTime);
  assert.equal(later.length, 6);
  assert.deepEqual((await page(`?since=${splitTime}`)).events, later);
  assert.deepEqual((await page(`?since=${encodeURIComponent(new Date(splitTime).toISOString())}`)).events, later);
  assert.deepEqual((await page(`?until=${splitTime}`)).events, earlier);
  assert.deepEqual((await page(`?until=${encodeURIComponent(new Date(splitTime).toISOString())}`)).events, earlier);
  const t = later[0]?.time ?? 0;
  const exactly = await page(`?since=${t}&until=${t}`);
  assert.ok(exactly.events.length >= 1 && exactly.events.every((e) => e.time === t), 'both bounds are inclusive');
  assert.deepEqual((await page(`?since=${splitTime}&device=ev-1&key=mode`)).events.length, 1);
});

test('events - order, limit, after and before', async () => {
  await history();
  const all = await everything();
  const newest = await page('?order=desc&limit=3');
  assert.deepEqual(newest.events, all.slice(-3).reverse());
  assert.equal(newest.next, all[all.length - 3]?.seq);
  const oldest = await page('?limit=2');
  assert.deepEqual(oldest.events, all.slice(0, 2));
  assert.equal(oldest.next, 2);
  assert.deepEqual((await page('?after=5&limit=2')).events.map((e) => e.seq), [6, 7]);
  assert.deepEqual((await page('?before=5&order=desc&limit=2')).events.map((e) => e.seq), [4, 3]);
  const end = await page(`?after=${all.length}`);
  assert.deepEqual([end.events, end.next], [[], null]);
  const start = await page('?before=1&order=desc');
  assert.deepEqual([start.events, start.next], [[], null]);
  const last = await page(`?after=${all.length - 1}`);
  assert.deepEqual([last.events.length, last.next], [1, null], 'no next page when the log has no more');
});

test('events - following next walks the whole log, both ways, with and without a filter', async () => {
  await history();
  const all = await everything();
  const walk = async (base: string, cursor: 'after' | 'before'): Promise<ApiEvent[]> => {
    const out: ApiEvent[] = [];
    let next: number | null = null;
    for (let i = 0; i < 100; i++) {
      const p: Page = await page(`${base}${next === null ? '' : `&${cursor}=${next}`}`);
      out.push(...p.events);
      if (p.next === null) return out;
      assert.ok(p.events.length > 0 || p.next !== null);
      next = p.next;
    }
    assert.fail('pagination did not end');
  };
  assert.deepEqual(await walk('?limit=4', 'after'), all);
  assert.deepEqual(await walk('?limit=3&order=desc', 'before'), [...all].reverse());
  assert.deepEqual(await walk('?limit=1&device=ev-1', 'after'), all.filter((e) => e.data.device === 'ev-1'));
  assert.deepEqual(await walk('?limit=2&key=temp&order=desc', 'before'), all.filter((e) => (e.data.changes ?? []).some((c) => c.key === 'temp')).reverse());
});

test('events - invalid queries are refused with 400 HENGE_E_VALIDATION', async () => {
  for (const [q, field] of [
    ['?limit=0', 'querystring.limit'],
    ['?limit=1001', 'querystring.limit'],
    ['?limit=abc', 'querystring.limit'],
    ['?order=sideways', 'querystring.order'],
    ['?after=-1', 'querystring.after'],
    ['?before=0', 'querystring.before'],
    ['?since=yesterday', 'querystring.since'],
    ['?until=2024-13-45T99:00:00Z', 'querystring.until'],
    ['?colour=red', 'querystring.colour'],
  ] as const) {
    const e = expectError(await call('GET', `/events${q}`), 400, 'HENGE_E_VALIDATION');
    assert.ok(fieldsOf(e).some(([f]) => f === field), `${q}: ${JSON.stringify(fieldsOf(e))}`);
  }
});

test('events - the reason header is recorded with the events a request makes', async () => {
  const r = await call<{ seq: number }>('POST', '/devices', { id: 'why-1' }, { headers: { 'x-henge-reason': 'replacing a broken unit' } });
  assert.equal(r.status, 201);
  const e = (await page(`?after=${r.body.seq - 1}&limit=1`)).events[0];
  assert.deepEqual([e?.type, e?.reason, e?.actor], ['device.added', 'replacing a broken unit', 'admin']);
  const enc = await call<{ seq: number }>('PATCH', '/devices/why-1', { name: 'x' }, { headers: { 'x-henge-reason': 'caf%C3%A9 r%C3%A9glage' } });
  assert.equal((await page(`?after=${enc.body.seq - 1}&limit=1`)).events[0]?.reason, 'café réglage', 'percent-encoding is decoded');
  const tooLong = expectError(await call('PATCH', '/devices/why-1', { name: 'y' }, { headers: { 'x-henge-reason': 'r'.repeat(501) } }), 400, 'HENGE_E_VALIDATION');
  assert.deepEqual(fieldsOf(tooLong), [['headers.x-henge-reason', 'maxLength']]);
});

test('events - a reason header that is not valid percent-encoding is a client error, not a 500', async () => {
  const before = (await call<{ logLength: number }>('GET', '/status')).body.logLength;
  const r = await call('POST', '/devices', { id: 'why-2' }, { headers: { 'x-henge-reason': '100% sure' } });
  assert.notEqual(r.status, 500, `POST /devices with "x-henge-reason: 100% sure" answered ${r.status} ${JSON.stringify(r.body)}`);
  if (r.status >= 400) {
    const e = expectError(r, 400, 'HENGE_E_VALIDATION');
    assert.equal(fieldsOf(e)[0]?.[0], 'headers.x-henge-reason');
    assert.equal((await call<{ logLength: number }>('GET', '/status')).body.logLength, before);
  } else {
    const last = (await page('?order=desc&limit=1')).events[0];
    assert.equal(last?.reason, '100% sure', 'or the reason is kept as it was sent');
  }
});
