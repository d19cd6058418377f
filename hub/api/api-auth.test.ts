/** REST API, auth and tokens: bearer tokens, 401s, create/list/revoke, the last token. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useApiHub } from '../../test/helpers/api.ts';
import type { Res } from '../../test/helpers/api.ts';
import { EventType } from '../domain/index.ts';
import { generateToken } from '../domain/tokens.ts';

// One hub on loopback in a temp folder for this file.
const api = useApiHub('henge-api-auth-');
const { call, expectError, fieldsOf } = api;

interface TokenInfo {
  readonly id: string;
  readonly name: string;
  readonly createdAt: number;
  readonly revokedAt: number | null;
}
interface Created {
  readonly id: string;
  readonly name: string;
  readonly token: string;
  readonly seq: number;
}

const idOf = (token: string): string => /^hgt_([0-9a-f]{16})_/.exec(token)?.[1] ?? '';

function expectUnauthorized(res: Res<unknown>): void {
  expectError(res, 401, 'HENGE_E_UNAUTHORIZED');
  assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
}

test('auth - a request without a token is refused with 401 HENGE_E_UNAUTHORIZED and changes nothing', async () => {
  expectUnauthorized(await call('GET', '/devices', undefined, { token: null }));
  expectUnauthorized(await call('POST', '/devices', { id: 'sneaky' }, { token: null }));
  expectUnauthorized(await call('GET', '/metrics', undefined, { token: null }));
  expectUnauthorized(await call('GET', '/status', undefined, { token: null }));
  expectUnauthorized(await call('GET', '/tokens', undefined, { token: null }));
  expectUnauthorized(await call('GET', '/no/such/route', undefined, { token: null }));
  expectError(await call('GET', '/devices/sneaky'), 404, 'HENGE_E_NOT_FOUND');
});

test('auth - a malformed or unknown token is refused with 401 HENGE_E_UNAUTHORIZED', async () => {
  const secret = api.adminToken.slice(api.adminToken.lastIndexOf('_') + 1);
  const wrongSecret = `${api.adminToken.slice(0, api.adminToken.lastIndexOf('_') + 1)}${secret.startsWith('A') ? 'B' : 'A'}${secret.slice(1)}`;
  for (const header of [
    'Bearer nope',
    'Bearer ',
    'Bearer',
    `Basic ${Buffer.from(`admin:${api.adminToken}`).toString('base64')}`,
    api.adminToken,
    `Bearer ${api.adminToken}x`,
    `Bearer hgt_0123456789abcdef_${secret}`,
    `Bearer ${wrongSecret}`,
    `Bearer ${api.adminToken} extra`,
  ]) {
    const r = await call('GET', '/devices', undefined, { token: null, headers: { authorization: header } });
    expectUnauthorized(r);
  }
  assert.equal((await call('GET', '/devices', undefined, { token: null, headers: { authorization: `bearer ${api.adminToken}` } })).status, 200, 'the scheme is case-insensitive');
});

test('auth - the health checks and the API description need no token', async () => {
  for (const path of ['/healthz', '/readyz', '/openapi.json']) {
    assert.equal((await call('GET', path, undefined, { token: null })).status, 200, path);
  }
});

test('tokens - create, list, use and revoke a token; a revoked token is refused', async () => {
  const created = await call<Created>('POST', '/tokens', { name: 'ci-bot' });
  assert.equal(created.status, 201);
  assert.match(created.body.token, /^hgt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  assert.equal(created.body.id, idOf(created.body.token));
  assert.equal(created.body.name, 'ci-bot');
  assert.equal(typeof created.body.seq, 'number');

  const list = await call<{ tokens: TokenInfo[] }>('GET', '/tokens');
  assert.equal(list.status, 200);
  const mine = list.body.tokens.find((t) => t.id === created.body.id);
  assert.deepEqual([mine?.name, mine?.revokedAt], ['ci-bot', null]);
  assert.ok(list.body.tokens.some((t) => t.id === idOf(api.adminToken) && t.name === 'admin'));
  for (const t of list.body.tokens) assert.deepEqual(Object.keys(t).sort(), ['createdAt', 'expiresAt', 'id', 'name', 'revokedAt', 'role'], 'no secret or hash is listed');
  assert.ok(!JSON.stringify(list.body).includes(created.body.token.slice(-43)));

  // The new token works, and its name is the actor of what it changes.
  const added = await call<{ seq: number }>('POST', '/devices', { id: 'by-bot' }, { token: created.body.token });
  assert.equal(added.status, 201);
  const ev = await call<{ events: Array<{ actor: string }> }>('GET', `/events?after=${added.body.seq - 1}&limit=1`);
  assert.equal(ev.body.events[0]?.actor, 'ci-bot');

  const revoked = await call<{ seq: number }>('DELETE', `/tokens/${created.body.id}`);
  assert.equal(revoked.status, 200);
  assert.equal(typeof revoked.body.seq, 'number');
  expectUnauthorized(await call('GET', '/devices', undefined, { token: created.body.token }));
  expectUnauthorized(await call('POST', '/devices', { id: 'by-bot-2' }, { token: created.body.token }));
  const after = await call<{ tokens: TokenInfo[] }>('GET', '/tokens');
  assert.equal(typeof after.body.tokens.find((t) => t.id === created.body.id)?.revokedAt, 'number');
  expectError(await call('DELETE', `/tokens/${created.body.id}`), 404, 'HENGE_E_NOT_FOUND');
  expectError(await call('DELETE', '/tokens/0123456789abcdef'), 404, 'HENGE_E_NOT_FOUND');
});

test('tokens - the last valid token cannot be revoked: 409 HENGE_E_LAST_TOKEN', async () => {
  const list = await call<{ tokens: TokenInfo[] }>('GET', '/tokens');
  for (const t of list.body.tokens) {
    if (t.revokedAt === null && t.id !== idOf(api.adminToken)) assert.equal((await call('DELETE', `/tokens/${t.id}`)).status, 200);
  }
  const e = expectError(await call('DELETE', `/tokens/${idOf(api.adminToken)}`), 409, 'HENGE_E_LAST_TOKEN');
  assert.equal(e.details['token'], idOf(api.adminToken));
  assert.equal((await call('GET', '/devices')).status, 200, 'the last token still works');

  // With a second token, the first one can go; the second one is then the last.
  const second = await call<Created>('POST', '/tokens', { name: 'second' });
  assert.equal((await call('DELETE', `/tokens/${idOf(api.adminToken)}`, undefined, { token: second.body.token })).status, 200);
  expectUnauthorized(await call('GET', '/devices'));
  expectError(await call('DELETE', `/tokens/${second.body.id}`, undefined, { token: second.body.token }), 409, 'HENGE_E_LAST_TOKEN');
  api.adminToken = second.body.token;
});

test('tokens - a token name that breaks the rules is refused with 400 HENGE_E_VALIDATION', async () => {
  const before = (await call<{ tokens: TokenInfo[] }>('GET', '/tokens')).body.tokens.length;
  for (const [body, field, rule] of [
    [{ name: '' }, 'body.name', 'minLength'],
    [{ name: 'has space' }, 'body.name', 'pattern'],
    [{ name: 'x'.repeat(65) }, 'body.name', 'maxLength'],
    [{ name: 5 }, 'body.name', 'type'],
    [{}, 'body.name', 'required'],
    [{ name: 'ok', admin: true }, 'body.admin', 'unknown'],
  ] as const) {
    const e = expectError(await call('POST', '/tokens', body), 400, 'HENGE_E_VALIDATION');
    assert.deepEqual(fieldsOf(e), [[field, rule]], JSON.stringify(body));
  }
  assert.equal((await call<{ tokens: TokenInfo[] }>('GET', '/tokens')).body.tokens.length, before);
});

test('roles - a viewer reads, an operator also sets values, only an admin adds devices and manages tokens', async () => {
  assert.equal((await call('POST', '/devices', { id: 'role-dev', values: { a: 1 } })).status, 201);
  assert.ok((await call('PUT', '/groups/role-grp', { selector: 'x=y', values: {} })).status < 300);
  const make = async (role: string): Promise<string> => {
    const r = await call<Created & { role: string; expiresAt: number }>('POST', '/tokens', { name: `t-${role}`, role, days: 7 });
    assert.equal(r.status, 201);
    assert.equal(r.body.role, role);
    const days = (r.body.expiresAt - Date.now()) / 86_400_000;
    assert.ok(days > 6.9 && days <= 7, `expires in 7 days, not ${days}`);
    return r.body.token;
  };
  const viewer = await make('viewer');
  const operator = await make('operator');
  const forbidden = (res: Res<unknown>): void => void expectError(res, 403, 'HENGE_E_FORBIDDEN');

  for (const token of [viewer, operator]) {
    assert.equal((await call('GET', '/devices', undefined, { token })).status, 200);
    assert.equal((await call('GET', '/devices/role-dev/config', undefined, { token })).status, 200);
    assert.equal((await call('GET', '/events', undefined, { token })).status, 200);
    forbidden(await call('POST', '/devices', { id: 'role-new' }, { token }));
    forbidden(await call('DELETE', '/devices/role-dev', undefined, { token }));
    forbidden(await call('POST', '/tokens', { name: 'escalate' }, { token }));
    forbidden(await call('GET', '/tokens', undefined, { token }));
  }
  forbidden(await call('PATCH', '/devices/role-dev/values', { values: { a: 2 } }, { token: viewer }));
  assert.equal((await call('PATCH', '/devices/role-dev/values', { values: { a: 2 } }, { token: operator })).status, 200);
  assert.equal((await call('PATCH', '/groups/role-grp/values', { values: { b: 1 } }, { token: operator })).status, 200);
  assert.equal((await call('GET', '/devices/role-new', undefined, {})).status, 404, 'nothing was made by a refused request');
  const list = await call<{ tokens: Array<TokenInfo & { role: string; expiresAt: number | null }> }>('GET', '/tokens');
  assert.deepEqual(list.body.tokens.filter((t) => t.name.startsWith('t-')).map((t) => t.role).sort(), ['operator', 'viewer']);
});

test('roles - a role or a lifetime out of range is refused with 400', async () => {
  expectError(await call('POST', '/tokens', { name: 'x', role: 'root' }), 400, 'HENGE_E_VALIDATION');
  expectError(await call('POST', '/tokens', { name: 'x', days: 0 }), 400, 'HENGE_E_VALIDATION');
  expectError(await call('POST', '/tokens', { name: 'x', days: 3651 }), 400, 'HENGE_E_VALIDATION');
});

test('roles - an expired token is refused with 401, and says when it expired', async () => {
  // A token as the log would hold it once its day has passed (the API gives at least one day).
  const t = generateToken();
  await api.hub.core.commit({ actor: 'test' }, [{ type: EventType.TokenCreated, data: { token: t.id, name: 'old', hash: t.hash, role: 'admin', expiresAt: Date.now() - 1000 } }]);
  const e = expectError(await call('GET', '/devices', undefined, { token: t.token }), 401, 'HENGE_E_UNAUTHORIZED');
  assert.match(e.message, /expired on \d{4}-/);
  assert.equal(e.details['token'], t.id);
});

test('roles - operators and viewers do not see token or auth events; nobody sees a token hash', async () => {
  const viewer = (await call<Created>('POST', '/tokens', { name: 'v-events', role: 'viewer', days: 1 })).body.token;
  const asViewer = await call<{ events: Array<{ type: string }> }>('GET', '/events?limit=1000', undefined, { token: viewer });
  assert.equal(asViewer.status, 200);
  assert.ok(asViewer.body.events.length > 0);
  assert.ok(!asViewer.body.events.some((e) => e.type.startsWith('token.') || e.type === 'auth.failed'), 'no admin history for a viewer');
  const asAdmin = await call<{ events: Array<{ type: string; data: { hash?: string } }> }>('GET', '/events?type=token.created&limit=1000');
  assert.ok(asAdmin.body.events.length > 0, 'an admin sees token events');
  assert.ok(asAdmin.body.events.every((e) => e.data.hash === ''), 'but never a hash');
});
