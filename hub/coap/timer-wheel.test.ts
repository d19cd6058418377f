import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TimerWheel, realClock } from './timer-wheel.ts';
import type { WheelClock } from './timer-wheel.ts';

interface Pending {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

/**
 * A manual clock for the wheel's injection point: time moves only when a test says so, and the
 * callbacks the wheel handed to setTimeout run only from advance()/runDue().
 */
class ManualClock implements WheelClock {
  private t: number;
  private seq = 0;
  private readonly pending = new Map<object, Pending>();
  /** setTimeout calls made so far. */
  calls = 0;
  /** The most timeouts that were ever outstanding at once. */
  peak = 0;

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): { unref?(): unknown } {
    assert.ok(Number.isFinite(ms) && ms >= 0, `setTimeout delay ${ms}`);
    const handle = { unref: (): unknown => handle };
    this.pending.set(handle, { at: this.t + ms, seq: this.seq++, fn });
    this.calls++;
    this.peak = Math.max(this.peak, this.pending.size);
    return handle;
  }

  clearTimeout(handle: { unref?(): unknown }): void {
    this.pending.delete(handle);
  }

  /** Timeouts handed out and neither run nor cleared. */
  get outstanding(): number {
    return this.pending.size;
  }

  /** Moves time to `target`, running each due callback at its own due time, earliest first. */
  advanceTo(target: number): void {
    for (;;) {
      const next = this.earliest(target);
      if (!next) break;
      this.pending.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = Math.max(this.t, target);
  }

  advance(ms: number): void {
    this.advanceTo(this.t + ms);
  }

  /** Moves time without running anything: the event loop was busy. */
  jump(ms: number): void {
    this.t += ms;
  }

  /** Runs what is due now, as a late event loop would, without moving time. */
  runDue(): void {
    this.advanceTo(this.t);
  }

  private earliest(limit: number): [object, Pending] | undefined {
    let best: [object, Pending] | undefined;
    for (const entry of this.pending) {
      const p = entry[1];
      if (p.at > limit) continue;
      if (!best || p.at < best[1].at || (p.at === best[1].at && p.seq < best[1].seq)) best = entry;
    }
    return best;
  }
}

interface Fired {
  readonly item: string;
  readonly at: number;
}

function wheelOn(clock: ManualClock, tickMs: number, slotCount: number): { wheel: TimerWheel<string>; fired: Fired[] } {
  const fired: Fired[] = [];
  const wheel = new TimerWheel<string>(tickMs, slotCount, (item) => fired.push({ item, at: clock.now() }), clock);
  return { wheel, fired };
}

test('timer-wheel - a timer fires no earlier than its delay and within one tick after', () => {
  const tick = 10;
  for (const start of [0, 1234.5]) {
    for (const delay of [0, 1, 5, 9, 10, 11, 25, 40, 79, 80]) {
      const clock = new ManualClock(start);
      const { wheel, fired } = wheelOn(clock, tick, 8);
      wheel.schedule(delay, 'x');
      // Step one millisecond at a time so an early firing would be seen at the moment it happens.
      for (let ms = 1; ms <= delay + 2 * tick; ms++) clock.advanceTo(start + ms);
      assert.equal(fired.length, 1, `delay ${delay} from ${start}: fired once`);
      const elapsed = (fired[0]?.at ?? Number.NaN) - start;
      assert.ok(elapsed >= delay, `delay ${delay}: fired after ${elapsed} ms, too early`);
      assert.ok(elapsed <= Math.max(delay, tick) + tick, `delay ${delay}: fired after ${elapsed} ms, more than a tick late`);
    }
  }
});

test('timer-wheel - a timer scheduled right after another one also fires within its delay plus one tick', () => {
  const clock = new ManualClock();
  const { wheel, fired } = wheelOn(clock, 10, 8);
  wheel.schedule(30, 'a');
  wheel.schedule(50, 'b');
  wheel.schedule(20, 'c');
  clock.advance(19);
  assert.equal(fired.length, 0);
  clock.advance(100);
  assert.deepEqual(fired, [
    { item: 'c', at: 20 },
    { item: 'a', at: 30 },
    { item: 'b', at: 50 },
  ]);
});

test('timer-wheel - timers longer than one turn of the wheel wait the extra rounds', () => {
  const tick = 10;
  const slots = 8; // one turn is 80 ms
  const clock = new ManualClock();
  const { wheel, fired } = wheelOn(clock, tick, slots);
  const delays = [81, 160, 161, 200, 640, 1000, 2000];
  for (const d of delays) wheel.schedule(d, `t${d}`);
  wheel.schedule(40, 'short'); // shares slot 4 with t200 and t1000, but not their round
  for (let ms = 1; ms <= 2100; ms++) clock.advanceTo(ms);
  assert.equal(fired.length, delays.length + 1);
  assert.deepEqual(fired[0], { item: 'short', at: 40 });
  for (const d of delays) {
    const f = fired.find((x) => x.item === `t${d}`);
    assert.ok(f, `t${d} fired`);
    assert.ok(f.at >= d, `t${d} fired at ${f.at}, before its delay`);
    assert.ok(f.at <= d + tick, `t${d} fired at ${f.at}, more than a tick late`);
  }
  assert.deepEqual(
    fired.map((f) => f.item),
    ['short', ...delays.map((d) => `t${d}`)],
  );
  assert.equal(wheel.size, 0);
});

test('timer-wheel - cancel prevents firing and size drops', () => {
  const clock = new ManualClock();
  const { wheel, fired } = wheelOn(clock, 10, 8);
  const a = wheel.schedule(30, 'a');
  const b = wheel.schedule(30, 'b');
  const c = wheel.schedule(500, 'c');
  assert.equal(wheel.size, 3);
  wheel.cancel(a);
  assert.equal(wheel.size, 2);
  wheel.cancel(c);
  assert.equal(wheel.size, 1);
  clock.advance(1000);
  assert.deepEqual(fired, [{ item: 'b', at: 30 }]);
  assert.equal(b.cancelled, true, 'a fired timer counts as done');
  assert.equal(wheel.size, 0);
});

test('timer-wheel - size counts live timers: cancelling twice or after firing changes nothing', () => {
  const clock = new ManualClock();
  const { wheel, fired } = wheelOn(clock, 10, 4);
  assert.equal(wheel.size, 0);
  const early = wheel.schedule(10, 'early');
  const mid = wheel.schedule(50, 'mid');
  wheel.schedule(90, 'late');
  assert.equal(wheel.size, 3);
  clock.advance(10);
  assert.deepEqual(fired.map((f) => f.item), ['early']);
  assert.equal(wheel.size, 2);
  wheel.cancel(early); // already fired
  assert.equal(wheel.size, 2);
  wheel.cancel(mid);
  wheel.cancel(mid);
  assert.equal(wheel.size, 1);
  clock.advance(200);
  assert.deepEqual(fired.map((f) => f.item), ['early', 'late']);
  assert.equal(wheel.size, 0);
});

test('timer-wheel - only one clock timeout is pending at a time, and none while the wheel is empty', () => {
  const clock = new ManualClock();
  const { wheel, fired } = wheelOn(clock, 10, 16);
  assert.equal(clock.outstanding, 0, 'a new wheel holds no timeout');
  assert.equal(clock.calls, 0);

  let seed = 7;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const timers = [];
  for (let i = 0; i < 500; i++) {
    timers.push(wheel.schedule(1 + rand(3000), `i${i}`));
    assert.ok(clock.outstanding <= 1, `after ${i + 1} schedules: ${clock.outstanding} timeouts pending`);
  }
  assert.equal(clock.outstanding, 1);
  for (let i = 0; i < 100; i++) {
    const t = timers[i * 5];
    if (t) wheel.cancel(t);
  }
  assert.equal(wheel.size, 400);
  for (let ms = 0; ms < 3200; ms += 7) {
    clock.advance(7);
    assert.ok(clock.outstanding <= 1, `at ${clock.now()} ms: ${clock.outstanding} timeouts pending`);
    if (wheel.size > 0) assert.equal(clock.outstanding, 1, `at ${clock.now()} ms the wheel has timers but no timeout`);
  }
  assert.equal(fired.length, 400);
  assert.equal(wheel.size, 0);
  assert.equal(clock.outstanding, 0, 'an emptied wheel holds no timeout');
  assert.equal(clock.peak, 1, 'never more than one timeout at once');
});

test('timer-wheel - cancelling the last timer releases the clock timeout', () => {
  const clock = new ManualClock();
  const { wheel, fired } = wheelOn(clock, 10, 8);
  const a = wheel.schedule(100, 'a');
  const b = wheel.schedule(200, 'b');
  assert.equal(clock.outstanding, 1);
  wheel.cancel(a);
  assert.equal(clock.outstanding, 1, 'b is still live');
  wheel.cancel(b);
  assert.equal(clock.outstanding, 0);
  clock.advance(1000);
  assert.equal(fired.length, 0);
  assert.equal(clock.calls, 1, 'an idle wheel does not keep ticking');
});

test('timer-wheel - catching up after the clock jumped fires everything due, in order of due time across slots', () => {
  const clock = new ManualClock();
  // Four slots of 10 ms: the delays below wrap the wheel, so due order is not slot order.
  const { wheel, fired } = wheelOn(clock, 10, 4);
  wheel.schedule(50, 'e'); // slot 1, second round
  wheel.schedule(10, 'a'); // slot 1, first round
  wheel.schedule(40, 'd'); // slot 0
  wheel.schedule(20, 'b'); // slot 2
  wheel.schedule(30, 'c'); // slot 3
  wheel.schedule(45, 'e2'); // tick 5 like e, scheduled later
  wheel.schedule(75, 'late'); // after the jump
  const callsBefore = clock.calls;
  clock.jump(60); // the event loop was blocked for six ticks
  assert.equal(fired.length, 0, 'nothing runs while the loop is blocked');
  clock.runDue();
  assert.deepEqual(
    fired.map((f) => f.item),
    ['a', 'b', 'c', 'd', 'e', 'e2'],
  );
  assert.ok(fired.every((f) => f.at === 60), 'all fired in the one late callback');
  assert.equal(clock.calls, callsBefore + 1, 'one timeout re-armed after the catch-up');
  assert.equal(wheel.size, 1);
  clock.advance(9);
  assert.equal(fired.length, 6, 'late is not due yet');
  clock.advance(11);
  assert.deepEqual(fired.at(-1), { item: 'late', at: 80 });
});

test('timer-wheel - a jump of many turns still fires each timer once', () => {
  const clock = new ManualClock();
  const { wheel, fired } = wheelOn(clock, 5, 4);
  for (const d of [5, 19, 20, 21, 100, 333]) wheel.schedule(d, `t${d}`);
  clock.jump(10_000);
  clock.runDue();
  assert.deepEqual(
    fired.map((f) => f.item),
    ['t5', 't19', 't20', 't21', 't100', 't333'],
  );
  assert.equal(wheel.size, 0);
  assert.equal(clock.outstanding, 0);
  clock.advance(10_000);
  assert.equal(fired.length, 6);
});

test('timer-wheel - a timer scheduled from onExpire on an emptied wheel counts from its own now', () => {
  // The retransmission pattern: the expiry handler schedules the next attempt with a doubled timeout.
  const clock = new ManualClock();
  const fired: Fired[] = [];
  let delay = 20;
  const wheel: TimerWheel<string> = new TimerWheel<string>(
    10,
    8,
    (item) => {
      fired.push({ item, at: clock.now() });
      if (fired.length < 4) {
        delay *= 2;
        wheel.schedule(delay, item);
      }
    },
    clock,
  );
  wheel.schedule(delay, 'msg');
  for (let ms = 1; ms <= 400; ms++) clock.advanceTo(ms);
  // 20, then +40, +80, +160.
  assert.deepEqual(
    fired.map((f) => f.at),
    [20, 60, 140, 300],
  );
  assert.equal(wheel.size, 0);
  assert.equal(clock.outstanding, 0);
});

test('timer-wheel - close() drops everything and releases the clock timeout', () => {
  const clock = new ManualClock();
  const { wheel, fired } = wheelOn(clock, 10, 8);
  const timers = [wheel.schedule(10, 'a'), wheel.schedule(100, 'b'), wheel.schedule(1000, 'c')];
  clock.advance(10);
  assert.deepEqual(fired.map((f) => f.item), ['a']);
  wheel.close();
  assert.equal(wheel.size, 0);
  assert.equal(clock.outstanding, 0);
  for (const t of timers) assert.equal(t.cancelled, true);
  const b = timers[1];
  assert.ok(b);
  wheel.cancel(b); // after close: no effect, size stays 0
  assert.equal(wheel.size, 0);
  clock.advance(5000);
  assert.deepEqual(fired.map((f) => f.item), ['a'], 'nothing fires after close');
});

test('timer-wheel - with the real clock timers fire in order and never early', async () => {
  const fired: Array<{ item: string; at: number }> = [];
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  const wheel = new TimerWheel<string>(
    5,
    8,
    (item) => {
      fired.push({ item, at: realClock.now() });
      if (fired.length === 3) resolveDone();
    },
    realClock,
  );
  const start = realClock.now();
  wheel.schedule(40, 'forty');
  wheel.schedule(20, 'twenty');
  wheel.schedule(60, 'sixty'); // beyond one turn (8 x 5 ms)
  const guard = setTimeout(resolveDone, 900);
  await done;
  clearTimeout(guard);
  wheel.close();
  assert.deepEqual(
    fired.map((f) => f.item),
    ['twenty', 'forty', 'sixty'],
  );
  const delays: Record<string, number> = { twenty: 20, forty: 40, sixty: 60 };
  for (const f of fired) {
    const elapsed = f.at - start;
    assert.ok(elapsed >= (delays[f.item] ?? Number.POSITIVE_INFINITY), `${f.item} fired after ${elapsed.toFixed(2)} ms`);
  }
  assert.ok(realClock.now() - start < 900, 'finished well under a second');
});

test('timer-wheel - a timer scheduled between ticks, or while the loop lags, never fires before its delay', () => {
  const clock = new ManualClock();
  const { wheel, fired } = wheelOn(clock, 10, 8);
  wheel.schedule(1000, 'a');
  clock.advanceTo(9);
  wheel.schedule(10, 'b');
  clock.jump(46); // the loop was busy until 55 ms
  wheel.schedule(20, 'c');
  clock.runDue();
  clock.advanceTo(200);
  const at = (item: string): number | undefined => fired.find((f) => f.item === item)?.at;
  assert.ok((at('b') ?? 0) >= 19, `b fired at ${String(at('b'))}`);
  assert.ok((at('c') ?? 0) >= 75, `c fired at ${String(at('c'))}`);
  assert.throws(() => wheel.schedule(Number.NaN, 'nan'), RangeError);
  assert.throws(() => wheel.schedule(Number.POSITIVE_INFINITY, 'inf'), RangeError);
  wheel.close();
});
