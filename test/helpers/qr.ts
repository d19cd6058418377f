/** Reads back a QR code printed in the terminal with half blocks (█ ▀ ▄ and space; a glyph's ink is a light module). */
import decodeQR from '@paulmillr/qr/decode.js';

/** The text of the first QR code drawn in `output`, decoded by an independent reader. */
export function readTerminalQr(output: string): string {
  const lines = output.split('\n').filter((l) => /^[█▀▄ ]{21,}$/.test(l));
  if (lines.length === 0) throw new Error('no QR code in the output');
  const width = Math.max(...lines.map((l) => [...l].length));
  const rows: boolean[][] = [];
  for (const l of lines) {
    const chars = [...l.padEnd(width, ' ')];
    rows.push(chars.map((c) => c === '█' || c === '▀'));
    rows.push(chars.map((c) => c === '█' || c === '▄'));
  }
  const scale = 4;
  const quiet = 4;
  const size = (width + 2 * quiet) * scale;
  const height = (rows.length + 2 * quiet) * scale;
  const data = new Uint8Array(size * height * 4).fill(255);
  rows.forEach((row, y) =>
    row.forEach((light, x) => {
      if (light) return;
      for (let dy = 0; dy < scale; dy++) {
        for (let dx = 0; dx < scale; dx++) {
          const i = (((y + quiet) * scale + dy) * size + (x + quiet) * scale + dx) * 4;
          data[i] = data[i + 1] = data[i + 2] = 0;
        }
      }
    }),
  );
  return decodeQR({ width: size, height, data });
}
