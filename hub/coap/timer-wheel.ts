/**
 * One hashed timer wheel for every retransmission timer: scheduling and cancelling are O(1), and the
 * process holds one Node timer (and only while something is scheduled), not one per message.
 */

export interface WheelClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): { unref?(): unknown };
  clearTimeout(handle: { unref?(): unknown }): void;
}

export const realClock: WheelClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** A scheduled item; pass it to cancel(). */
export interface WheelTimer<T> {
  readonly item: T;
  /** Whole turns of the wheel still to wait. */
  rounds: number;
  cancelled: boolean;
}

export class TimerWheel<T> {
  private readonly slots: Array<Array<WheelTimer<T>>>;
  private cursor = 0;
  private lastTick: number;
  private live = 0;
  private timer: { unref?(): unknown } | null = null;

  /**
   * @param tickMs resolution: a timer fires within one tick after its delay
   * @param slotCount slots per turn; delays beyond tickMs * slotCount wait whole turns
   */
  constructor(
    private readonly tickMs: number,
    slotCount: number,
    private readonly onExpire: (item: T) => void,
    private readonly clock: WheelClock = realClock,
  ) {
    this.slots = Array.from({ length: slotCount }, () => []);
    this.lastTick = clock.now();
  }

  get size(): number {
    return this.live;
  }

  schedule(delayMs: number, item: T): WheelTimer<T> {
    if (!Number.isFinite(delayMs) || delayMs < 0) throw new RangeError(`timer delay must be a finite number >= 0, got ${delayMs}`);
    const now = this.clock.now();
    if (this.live === 0) this.lastTick = now;
    // Counted from the last processed tick, which may lag `now` (a busy event loop, or a catch-up pass
    // calling back into schedule): the timer must not fire before now + delay.
    const ticks = Math.max(1, Math.ceil((now + delayMs - this.lastTick) / this.tickMs));
    const n = this.slots.length;
    const timer: WheelTimer<T> = { item, rounds: Math.floor((ticks - 1) / n), cancelled: false };
    this.slots[(this.cursor + ticks) % n]?.push(timer);
    this.live++;
    this.arm();
    return timer;
  }

  cancel(timer: WheelTimer<T>): void {
    if (timer.cancelled) return;
    timer.cancelled = true;
    this.live--;
    if (this.live === 0 && this.timer) {
      this.clock.clearTimeout(this.timer);
      this.timer = null;
    }
  }

  /** Drops every timer; nothing fires afterwards. */
  close(): void {
    for (const slot of this.slots) {
      for (const t of slot) t.cancelled = true;
      slot.length = 0;
    }
    this.live = 0;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(): void {
    if (this.timer || this.live === 0) return;
    const due = this.lastTick + this.tickMs - this.clock.now();
    const t = this.clock.setTimeout(() => {
      this.timer = null;
      this.advance();
      this.arm();
    }, Math.max(0, due));
    t.unref?.();
    this.timer = t;
  }

  /** Processes every tick that has passed since the last one (catching up after a slow event loop). */
  private advance(): void {
    const now = this.clock.now();
    const n = this.slots.length;
    while (now - this.lastTick >= this.tickMs && this.live > 0) {
      this.lastTick += this.tickMs;
      this.cursor = (this.cursor + 1) % n;
      const slot = this.slots[this.cursor];
      if (!slot || slot.length === 0) continue;
      const keep: Array<WheelTimer<T>> = [];
      const due: Array<WheelTimer<T>> = [];
      for (const t of slot) {
        if (t.cancelled) continue;
        if (t.rounds > 0) {
          t.rounds--;
          keep.push(t);
        } else due.push(t);
      }
      this.slots[this.cursor] = keep;
      for (const t of due) {
        t.cancelled = true;
        this.live--;
        this.onExpire(t.item);
      }
    }
    if (this.live === 0) this.lastTick = now;
  }
}
