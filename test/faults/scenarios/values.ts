/** Random config values for the fault scenarios: text with any code point (no lone surrogates), numbers, booleans. */

export type Value = string | number | boolean;

const RANGES: ReadonlyArray<readonly [number, number]> = [
  [0x20, 0x7e], // ASCII
  [0x00, 0x1f], // control characters
  [0xa0, 0x7ff], // two-byte UTF-8
  [0x800, 0xd7ff], // three-byte, below the surrogates
  [0xe000, 0xfffd], // three-byte, above them
  [0x1_0000, 0x10_ffff], // four-byte (emoji and beyond)
];

/** A string of up to `maxChars` code points drawn from every UTF-8 length. */
export function randomText(random: () => number, maxChars = 40): string {
  const n = Math.floor(random() * (maxChars + 1));
  let s = '';
  for (let i = 0; i < n; i++) {
    const range = RANGES[Math.floor(random() * RANGES.length)] ?? [0x20, 0x7e];
    s += String.fromCodePoint(range[0] + Math.floor(random() * (range[1] - range[0] + 1)));
  }
  return s;
}

/** Text, a safe integer, a finite double (never -0: JSON cannot carry it) or a boolean. */
export function randomConfigValue(random: () => number): Value {
  const kind = Math.floor(random() * 5);
  if (kind <= 1) return randomText(random);
  if (kind === 2) return Math.floor((random() - 0.5) * 2 * Number.MAX_SAFE_INTEGER);
  if (kind === 3) return (random() - 0.5) * 10 ** Math.floor(random() * 30 - 10) || 0;
  return random() < 0.5;
}
