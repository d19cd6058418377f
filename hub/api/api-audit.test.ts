/** REST API: failed authentications are audited as events (never the token) and limited per address. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useApiHub } from '../../test/helpers/api.ts';
import { FailureBudget } from '../security/failure-budget.ts';
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

test('rate limit - failed authentications are limited per address, on every path; then even a right token waits', async () => {
  let limited: Awaited<ReturnType<typeof call>> | undefined;
  for (let i = 0; i < AUTH_FAILURES_PER_MINUTE + 5 && !limited; i++) {
    // Unknown paths count too: there, 401 against 404 would otherwise tell a good guess from a bad one.
    const r = await call('GET', i % 2 === 0 ? '/devices' : `/no-such-path-${i}`, undefined, { token: null });
    if (r.status === 429) limited = r;
    else assert.equal(r.status, 401);
  }
  assert.ok(limited, `429 within ${AUTH_FAILURES_PER_MINUTE + 5} requests`);
  const e = expectError(limited, 429, 'HENGE_E_RATE_LIMITED');
  assert.equal(typeof e.details['retryAfterS'], 'number');
  // Past the budget no token is even checked (a right guess must not show), so a valid one waits too;
  // the health checks do not.
  expectError(await call('GET', '/devices'), 429, 'HENGE_E_RATE_LIMITED');
  assert.equal((await call('GET', '/healthz', undefined, { token: null })).status, 200);
  const before = api.hub.core.state.seq;
  await new Promise((r) => setTimeout(r, 300));
  const settled = api.hub.core.state.seq;
  expectError(await call('GET', '/devices', undefined, { token: null }), 429, 'HENGE_E_RATE_LIMITED');
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(settled >= before);
  assert.equal(api.hub.core.state.seq, settled, 'a refused (429) request writes no event: the log cannot be flooded');
});

test('failure budget - counts failures per address in one-minute windows', () => {
  let t = 0;
  const b = new FailureBudget(3, () => t);
  for (let i = 0; i < 3; i++) {
    assert.equal(b.waitMs('a'), 0);
    b.fail('a');
  }
  assert.equal(b.waitMs('a'), 60_000);
  assert.equal(b.waitMs('b'), 0, 'another address has its own budget');
  t = 59_000;
  assert.equal(b.waitMs('a'), 1_000);
  t = 60_000;
  assert.equal(b.waitMs('a'), 0, 'a new minute, a new budget');
});
