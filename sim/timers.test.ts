/** The simulator's shared timer wheel: entries fire in order, not before their delay, within about a tick. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { SharedTimer } from './timers.ts';

test('sim timers - entries fire in order, never early, across whole turns of the wheel', async () => {
  const t0 = performance.now();
  const fired: Array<{ name: string; kind: number; gen: number; at: number }> = [];
  const wheel = new SharedTimer<string>(10, 8, (name, kind, gen) => fired.push({ name, kind, gen, at: performance.now() - t0 }));
  // 8 slots of 10 ms: 250 ms is three turns and more.
  wheel.schedule(250, 'late', 1, 3);
  wheel.schedule(25, 'first', 0, 1);
  wheel.schedule(60, 'second', 0, 2);
  assert.equal(wheel.size, 3);
  await new Promise((r) => setTimeout(r, 400));
  assert.deepEqual(
    fired.map((f) => [f.name, f.kind, f.gen]),
    [
      ['first', 0, 1],
      ['second', 0, 2],
      ['late', 1, 3],
    ],
  );
  const wanted = [25, 60, 250];
  fired.forEach((f, i) => assert.ok(f.at >= (wanted[i] ?? 0) - 1, `${f.name} fired at ${f.at.toFixed(1)} ms, not before ${wanted[i]} ms`));
  assert.equal(wheel.size, 0);
  wheel.close();
});
