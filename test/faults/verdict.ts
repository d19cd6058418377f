/**
 * The one-line verdict every fault scenario prints: `VERDICT <scenario> PASS|FAIL key=value ...`,
 * the same figures `npm run bench:faults` writes as JSON.
 */
export type Figures = Readonly<Record<string, string | number | boolean | readonly number[]>>;

export function verdictLine(scenario: string, pass: boolean, figures: Figures): string {
  const parts = Object.entries(figures).map(([k, v]) => `${k}=${Array.isArray(v) ? `[${v.join(',')}]` : String(v)}`);
  return `VERDICT ${scenario} ${pass ? 'PASS' : 'FAIL'} ${parts.join(' ')}`;
}
