/** REST API: failed authentications are audited as events (never the token) and limited per address. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useApiHub } from '../../test/helpers/api.ts';
import { AUTH_FAILURES_PER_MINUTE } from './server.ts';

const api = useApiHub('henge-api-audit-');
const { call, expectError } = api;

interface Ev {
  readonly type: string;
  readonly actor: string;
  readonly data: Record<string, unknown>;
}

test('audit - a failed authentication is an auth.failed event with address and reason, never the token', async () => {
  const wrong = 'hgt_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
  expectError(await call('GET', '/devices', undefined, { token: wrong }), 401, 'HENGE_E_UNAUTHORIZED');
  expectError(await call('GET', '/devices', undefined, { token: null }), 401, 'HENGE_E_UNAUTHORIZED');
  // The event is written after the 401 went out (the refusal does not wait for the disk): wait for it.
  let events = await call<{ events: Ev[] }>('GET', '/events?type=auth.failed');
  for (let i = 0; i < 100 && events.body.events.length < 2; i++) {
    await new Promise((r) => setTimeout(r, 20));
    events = await call<{ events: Ev[] }>('GET', '/events?type=auth.failed');
  }
  assert.equal(events.status, 200);
  const reasons = events.body.events.map((e) => e.data['reason']);
  assert.ok(reasons.includes('invalid or revoked token') && reasons.includes('no token'), JSON.stringify(reasons));
  for (const e of events.body.events) {
    assert.equal(e.actor, 'hub');
    assert.equal(e.data['path'], '/devices');
    assert.match(String(e.data['ip']), /127\.0\.0\.1/);
    assert.ok(!JSON.stringify(e).includes(wrong.slice(4)), 'the presented token is not in the event');
  }
});

test('rate limit - requests without a valid token are limited per address; valid tokens and health checks are not', async () => {
  let limited: Awaited<ReturnType<typeof call>> | undefined;
  for (let i = 0; i < AUTH_FAILURES_PER_MINUTE + 5 && !limited; i++) {
    const r = await call('GET', '/devices', undefined, { token: null });
    if (r.status === 429) limited = r;
    else assert.equal(r.status, 401);
  }
  assert.ok(limited, `429 within ${AUTH_FAILURES_PER_MINUTE + 5} requests`);
  const e = expectError(limited, 429, 'HENGE_E_RATE_LIMITED');
  assert.equal(typeof e.details['retryAfterS'], 'number');
  // The same address with a valid token, and the health checks, still get through.
  assert.equal((await call('GET', '/devices')).status, 200);
  assert.equal((await call('GET', '/healthz', undefined, { token: null })).status, 200);
  const count = async (): Promise<number> => (await call<{ events: Ev[] }>('GET', '/events?type=auth.failed&limit=1000')).body.events.length;
  // The 401s' events land after their answers: wait until the count holds still.
  let before = await count();
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const now = await count();
    if (now === before) break;
    before = now;
  }
  expectError(await call('GET', '/devices', undefined, { token: null }), 429, 'HENGE_E_RATE_LIMITED');
  await new Promise((r) => setTimeout(r, 100));
  const after = await count();
  assert.equal(after, before, 'a refused (429) request writes no event: the log cannot be flooded');
});
