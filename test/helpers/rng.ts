/** Deterministic pseudo-random numbers in [0, 1) (a 32-bit LCG), so a failing generated case can be replayed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 0x1_0000_0000;
  };
}
