import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff } from './backoff.ts';

test('the ceiling doubles from the base up to the cap, and reset starts over', () => {
  const b = new Backoff({ baseMs: 500, capMs: 60_000, random: () => 0.999999 });
  const delays = Array.from({ length: 10 }, () => b.next());
  assert.deepEqual(delays.slice(0, 8), [499, 999, 1999, 3999, 7999, 15_999, 31_999, 59_999]);
  assert.equal(delays[9], 59_999, 'capped');
  assert.equal(b.attempts, 10);
  b.reset();
  assert.equal(b.attempts, 0);
  assert.equal(b.next(), 499);
});

test('full jitter: every delay is uniform in [0, ceiling) and may be 0', () => {
  const b = new Backoff({ baseMs: 1000, capMs: 8000, random: () => 0 });
  assert.equal(b.next(), 0);
  const real = new Backoff({ baseMs: 100, capMs: 5000 });
  for (let i = 0; i < 200; i++) {
    const ceiling = real.ceiling();
    const d = real.next();
    assert.ok(d >= 0 && d < ceiling && ceiling <= 5000, `${d} in [0, ${ceiling})`);
  }
  // A thousand attempts do not overflow the ceiling.
  assert.equal(real.ceiling(), 5000);
});

test('bad parameters are refused', () => {
  assert.throws(() => new Backoff({ capMs: -1 }), RangeError);
  assert.throws(() => new Backoff({ capMs: 10, baseMs: 0 }), RangeError);
});
