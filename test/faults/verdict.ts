/**
 * The one-line verdict every fault scenario prints: `VERDICT <scenario> PASS|FAIL key=value ...`,
 * the same figures `npm run bench:faults` writes as JSON.
 */
import { randomInt } from 'node:crypto';

/** A seed for this run's random choices: HENGE_FAULTS_SEED replays one (every verdict prints its seed). */
export function faultSeed(): number {
  const env = process.env['HENGE_FAULTS_SEED'];
  return env !== undefined && /^\d+$/.test(env) ? Number(env) : randomInt(1, 2 ** 31);
}

export type Figures = Readonly<Record<string, string | number | boolean | readonly number[]>>;

export function verdictLine(scenario: string, pass: boolean, figures: Figures): string {
  const parts = Object.entries(figures).map(([k, v]) => `${k}=${Array.isArray(v) ? `[${v.join(',')}]` : String(v)}`);
  return `VERDICT ${scenario} ${pass ? 'PASS' : 'FAIL'} ${parts.join(' ')}`;
}
