/** REST API, health and generic errors: healthz, readyz, status, metrics, openapi.json; malformed, too large, wrong media type, unknown route. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useApiHub } from '../../test/helpers/api.ts';

// One hub on loopback in a temp folder for this file.
const { call, expectError } = useApiHub('henge-api-health-');

interface Status {
  readonly hubId: string;
  readonly incarnation: string;
  readonly devices: number;
  readonly groups: number;
  readonly schemas: number;
  readonly logLength: number;
  readonly store: { readonly location: string; readonly healthy: boolean; readonly problem: string | null };
}

/** The value of one sample line in Prometheus text, e.g. `henge_devices 3`. */
function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} is in /metrics`);
  return Number(line.slice(name.length + 1));
}

test('health - healthz and readyz answer without a token', async () => {
  const h = await call<{ status: string; hubId: string }>('GET', '/healthz', undefined, { token: null });
  assert.equal(h.status, 200);
  assert.equal(h.body.status, 'ok');
  assert.match(h.body.hubId, /^[0-9a-f]{12}$/);
  const r = await call<{ status: string }>('GET', '/readyz', undefined, { token: null });
  assert.deepEqual([r.status, r.body], [200, { status: 'ready' }]);
});

test('health - status summarises the hub', async () => {
  assert.equal((await call('PUT', '/schemas/st', { properties: { a: { type: 'boolean', default: false } } })).status, 201);
  assert.equal((await call('POST', '/devices', { id: 'st-1', schema: 'st' })).status, 201);
  assert.equal((await call('POST', '/devices', { id: 'st-2' })).status, 201);
  assert.equal((await call('PUT', '/groups/st-g', { selector: '*' })).status, 200);
  const s = await call<Status>('GET', '/status');
  assert.equal(s.status, 200);
  assert.deepEqual([s.body.devices, s.body.groups, s.body.schemas], [2, 1, 1]);
  const events = await call<{ events: Array<{ seq: number }> }>('GET', '/events?order=desc&limit=1');
  assert.equal(s.body.logLength, events.body.events[0]?.seq);
  assert.match(s.body.incarnation, /^[0-9a-f]{16}$/);
  assert.equal(s.body.hubId, (await call<{ hubId: string }>('GET', '/healthz')).body.hubId);
  assert.deepEqual([s.body.store.healthy, s.body.store.problem], [true, null]);
  assert.match(s.body.store.location, /store$/);
});

test('health - metrics expose writes, commit latency, devices and log length', async () => {
  assert.equal((await call('POST', '/devices', { id: 'met-1' })).status, 201);
  assert.equal((await call('PATCH', '/devices/met-1/values', { values: { a: 1 } })).status, 200);
  const r = await call<string>('GET', '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
  const text = r.body;
  const status = (await call<Status>('GET', '/status')).body;
  assert.ok(sample(text, 'henge_writes_total{result="ok"}') >= 2, 'committed writes are counted');
  assert.match(text, /^# TYPE henge_writes_total counter$/m);
  assert.match(text, /^# TYPE henge_commit_latency_seconds histogram$/m);
  assert.ok(sample(text, 'henge_commit_latency_seconds_count') >= 2);
  assert.ok(sample(text, 'henge_commit_latency_seconds_bucket{le="+Inf"}') >= 2);
  assert.equal(sample(text, 'henge_devices'), status.devices);
  assert.equal(sample(text, 'henge_log_length'), status.logLength);
  assert.equal(sample(text, 'henge_store_healthy'), 1);
  assert.match(text, /^henge_commit_batch_commands_count \d+$/m);
});

const ROUTES: ReadonlyArray<[string, string]> = [
  ['/devices', 'get'],
  ['/devices', 'post'],
  ['/devices/{id}', 'get'],
  ['/devices/{id}', 'patch'],
  ['/devices/{id}', 'delete'],
  ['/devices/{id}/config', 'get'],
  ['/devices/{id}/state', 'get'],
  ['/devices/{id}/values', 'get'],
  ['/devices/{id}/values', 'put'],
  ['/devices/{id}/values', 'patch'],
  ['/devices/{id}/values', 'delete'],
  ['/devices/{id}/values/{key}', 'delete'],
  ['/groups', 'get'],
  ['/groups/{id}', 'get'],
  ['/groups/{id}', 'put'],
  ['/groups/{id}', 'delete'],
  ['/groups/{id}/values', 'put'],
  ['/groups/{id}/values', 'patch'],
  ['/groups/{id}/values/{key}', 'delete'],
  ['/schemas', 'get'],
  ['/schemas/{name}', 'get'],
  ['/schemas/{name}', 'put'],
  ['/schemas/{name}/versions', 'get'],
  ['/events', 'get'],
  ['/tokens', 'get'],
  ['/tokens', 'post'],
  ['/tokens/{id}', 'delete'],
  ['/healthz', 'get'],
  ['/readyz', 'get'],
  ['/metrics', 'get'],
  ['/status', 'get'],
];

test('health - openapi.json describes every route', async () => {
  const r = await call<{ openapi: string; info: { title: string }; paths: Record<string, Record<string, unknown>> }>('GET', '/openapi.json', undefined, { token: null });
  assert.equal(r.status, 200);
  assert.match(r.body.openapi, /^3\./);
  assert.equal(r.body.info.title, 'henge hub API');
  for (const [path, method] of ROUTES) assert.ok(r.body.paths[path]?.[method], `${method.toUpperCase()} ${path} is described`);
  const post = r.body.paths['/devices']?.['post'] as { requestBody?: { content?: Record<string, unknown> } } | undefined;
  assert.ok(post?.requestBody?.content?.['application/json'], 'request bodies are described as JSON');
});

test('errors - broken JSON is refused with 400 HENGE_E_MALFORMED_BODY', async () => {
  for (const raw of ['{bad', '{"id": "x",}', '', '{"id": "x"} trailing']) {
    expectError(await call('POST', '/devices', undefined, { raw }), 400, 'HENGE_E_MALFORMED_BODY');
  }
  expectError(await call('PATCH', '/devices/any/values', undefined, { raw: '{"values": {' }), 400, 'HENGE_E_MALFORMED_BODY');
  expectError(await call('GET', '/devices/x'), 404, 'HENGE_E_NOT_FOUND');
});

test('errors - a body over the size limit is refused with 413 HENGE_E_BODY_TOO_LARGE', async () => {
  const big = JSON.stringify({ id: 'too-big', name: 'x'.repeat(300 * 1024) });
  expectError(await call('POST', '/devices', undefined, { raw: big }), 413, 'HENGE_E_BODY_TOO_LARGE');
  expectError(await call('GET', '/devices/too-big'), 404, 'HENGE_E_NOT_FOUND');
});

test('errors - a body that is not JSON is refused with 415 HENGE_E_UNSUPPORTED_MEDIA_TYPE', async () => {
  for (const contentType of ['application/xml', 'application/x-www-form-urlencoded', 'image/png']) {
    expectError(await call('POST', '/devices', undefined, { raw: 'id=x', contentType }), 415, 'HENGE_E_UNSUPPORTED_MEDIA_TYPE');
  }
  expectError(await call('GET', '/devices/x'), 404, 'HENGE_E_NOT_FOUND');
});

test('errors - an unknown route answers 404 HENGE_E_NOT_FOUND as JSON', async () => {
  const r = await call('GET', '/nothing/here');
  const e = expectError(r, 404, 'HENGE_E_NOT_FOUND');
  assert.equal(e.details['method'], 'GET');
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  expectError(await call('POST', '/healthz', {}), 404, 'HENGE_E_NOT_FOUND');
});
