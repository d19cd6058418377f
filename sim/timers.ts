/**
 * One timer for a whole simulator: a hashed wheel holding every retransmission and re-registration
 * deadline of every device, driven by a single Node timer. Cancelling is lazy: an entry carries the
 * generation of the thing it times, and its owner ignores a firing whose generation is stale.
 */

interface Entry<T> {
  readonly target: T;
  readonly kind: number;
  readonly gen: number;
  rounds: number;
}

export class SharedTimer<T> {
  private readonly slots: Array<Array<Entry<T>>>;
  private cursor = 0;
  private lastTick: number;
  private count = 0;
  private handle: NodeJS.Timeout | null = null;
  private closed = false;

  /**
   * @param tickMs resolution: an entry fires within one tick after its delay
   * @param slotCount slots per turn of the wheel; longer delays wait whole turns
   * @param fire called with what was scheduled
   */
  constructor(
    private readonly tickMs: number,
    slotCount: number,
    private readonly fire: (target: T, kind: number, gen: number) => void,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.slots = Array.from({ length: slotCount }, () => []);
    this.lastTick = now();
  }

  /** Entries waiting, stale ones included. */
  get size(): number {
    return this.count;
  }

  schedule(delayMs: number, target: T, kind: number, gen: number): void {
    if (this.closed) return;
    const now = this.now();
    if (this.count === 0) this.lastTick = now;
    const ticks = Math.max(1, Math.ceil((now + Math.max(0, delayMs) - this.lastTick) / this.tickMs));
    const n = this.slots.length;
    this.slots[(this.cursor + ticks) % n]?.push({ target, kind, gen, rounds: Math.floor((ticks - 1) / n) });
    this.count++;
    this.arm();
  }

  close(): void {
    this.closed = true;
    for (const s of this.slots) s.length = 0;
    this.count = 0;
    if (this.handle) clearTimeout(this.handle);
    this.handle = null;
  }

  private arm(): void {
    if (this.handle || this.count === 0 || this.closed) return;
    const due = Math.max(0, this.lastTick + this.tickMs - this.now());
    this.handle = setTimeout(() => {
      this.handle = null;
      this.advance();
      this.arm();
    }, due);
    this.handle.unref();
  }

  private advance(): void {
    const now = this.now();
    const n = this.slots.length;
    while (now - this.lastTick >= this.tickMs && this.count > 0) {
      this.lastTick += this.tickMs;
      this.cursor = (this.cursor + 1) % n;
      const slot = this.slots[this.cursor];
      if (!slot || slot.length === 0) continue;
      const keep: Array<Entry<T>> = [];
      const due: Array<Entry<T>> = [];
      for (const e of slot) {
        if (e.rounds > 0) {
          e.rounds--;
          keep.push(e);
        } else due.push(e);
      }
      this.slots[this.cursor] = keep;
      this.count -= due.length;
      for (const e of due) {
        if (this.closed) return;
        this.fire(e.target, e.kind, e.gen);
      }
    }
    if (this.count === 0) this.lastTick = now;
  }
}
