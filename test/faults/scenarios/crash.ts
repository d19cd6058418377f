/**
 * Fault scenario 1, crash durability: a real hub process is killed with SIGKILL at a random moment while
 * CLIENTS concurrent clients write through the REST API, then `henge hub --verify` checks the store and
 * the hub restarts on the same data. Every write answered 2xx must be there, byte for byte; a write that
 * got no answer may be there or not, but whole (each PATCH sets two keys: both or neither).
 *
 * Each client owns one device per round: it adds it (POST /devices with a first value), then PATCHes
 * two fresh keys at a time until the hub dies or it has written WRITES_PER_CLIENT times. Keys are never
 * rewritten, so every acknowledged write stays checkable, and every round re-checks all earlier rounds.
 */
import { rng } from '../../helpers/rng.ts';
import { makeSandbox, runCli, startHubProcess } from '../../helpers/processes.ts';
import type { HubProcess } from '../../helpers/processes.ts';
import { randomConfigValue } from './values.ts';
import type { Value } from './values.ts';
import { checkWrites } from './writes.ts';
import type { Write } from './writes.ts';

export interface CrashOptions {
  readonly rounds: number;
  readonly clients: number;
  /**
   * Upper bound of PATCHes per client per round (the kill comes first, as a rule). Each adds two keys to
   * a device without a schema: at most 127, or the hub's 256-value limit would refuse the rest.
   */
  readonly writesPerClient: number;
  /** The kill comes this long after the writers start: uniform in [min, max] ms. */
  readonly killAfterMs: readonly [number, number];
  readonly seed: number;
  readonly progress?: (line: string) => void;
}

export interface CrashResult {
  readonly rounds: number;
  readonly clients: number;
  readonly seed: number;
  /** Writes answered 2xx (device adds and PATCHes), over all rounds. */
  readonly ackedWrites: number;
  /** Of them, PATCHes (two keys each); and the rounds whose kill caught a PATCH in flight. */
  readonly ackedPatches: number;
  readonly roundsKilledMidPatch: number;
  /** Writes with no answer when the hub died: present whole, or absent. */
  readonly unansweredWrites: number;
  readonly unansweredPresent: number;
  readonly lost: number;
  readonly altered: number;
  /** Unanswered PATCHes with one key of two present. */
  readonly torn: number;
  /** Rounds whose `henge hub --verify` exited 0. */
  readonly verifyClean: number;
  /** Answers other than 2xx while the hub was up (there should be none). */
  readonly unexpectedStatus: number;
  readonly killAfterMs: readonly number[];
  /** SIGKILL → the restarted hub's API answers, ms. */
  readonly restartMs: readonly number[];
  /** Acked writes per second while the clients ran, per round. */
  readonly writesPerSecond: readonly number[];
  /** The first problems found, for the failure message. */
  readonly problems: readonly string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function crashDurability(opts: CrashOptions): Promise<CrashResult> {
  const random = rng(opts.seed);
  const log = opts.progress ?? ((): void => undefined);
  const sandbox = await makeSandbox('henge-fault-crash-');
  const writes: Write[] = [];
  const problems: string[] = [];
  const killAt: number[] = [];
  const restartMs: number[] = [];
  const rates: number[] = [];
  let verifyClean = 0;
  let roundsKilledMidPatch = 0;
  let unexpectedStatus = 0;
  let hub: HubProcess = await startHubProcess(sandbox, ['--log-level', 'error']);
  const token = hub.token ?? '';
  try {
    for (let round = 0; round < opts.rounds; round++) {
      const url = hub.url;
      const send = async (method: string, path: string, body: unknown): Promise<number> => {
        const res = await fetch(`${url}${path}`, {
          method,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        await res.arrayBuffer();
        return res.status;
      };
      let acked = 0;
      const client = async (i: number): Promise<void> => {
        const device = `r${round}-c${i}`;
        const ops: Array<{ method: string; path: string; body: unknown; values: Record<string, Value> }> = [];
        const first = { init: randomConfigValue(random) };
        ops.push({ method: 'POST', path: '/devices', body: { id: device, values: first }, values: first });
        for (let j = 0; j < opts.writesPerClient; j++) {
          const values = { [`a${j}`]: randomConfigValue(random), [`b${j}`]: randomConfigValue(random) };
          ops.push({ method: 'PATCH', path: `/devices/${device}/values`, body: { values }, values });
        }
        for (const op of ops) {
          let status: number;
          try {
            status = await send(op.method, op.path, op.body);
          } catch {
            writes.push({ device, values: op.values, outcome: 'unanswered' });
            return; // the hub is gone
          }
          if (status >= 200 && status < 300) {
            writes.push({ device, values: op.values, outcome: 'acked' });
            acked++;
          } else {
            unexpectedStatus++;
            if (problems.length < 20) problems.push(`round ${round}: ${op.method} ${op.path} answered ${status} while the hub was up`);
            return;
          }
        }
      };
      const delay = Math.round(opts.killAfterMs[0] + random() * (opts.killAfterMs[1] - opts.killAfterMs[0]));
      killAt.push(delay);
      const started = performance.now();
      const clients = Array.from({ length: opts.clients }, (_, i) => client(i));
      await sleep(delay);
      const killedAt = performance.now();
      rates.push(Math.round((acked / (killedAt - started)) * 1000));
      await hub.stop('SIGKILL');
      await Promise.all(clients);

      const verify = await runCli(sandbox, ['hub', '--verify', '--data', hub.dataDir], {}, 120_000);
      if (verify.code === 0) verifyClean++;
      else if (problems.length < 20) problems.push(`round ${round}: henge hub --verify exited ${String(verify.code)}: ${verify.stdout}${verify.stderr}`.slice(0, 2000));

      hub = await startHubProcess(sandbox, ['--log-level', 'error']);
      restartMs.push(Math.round(performance.now() - killedAt));
      if (writes.some((w) => w.outcome === 'unanswered' && w.device.startsWith(`r${round}-`) && !Object.hasOwn(w.values, 'init'))) roundsKilledMidPatch++;
      const check = await checkWrites(hub.url, token, writes);
      problems.push(...check.problems.slice(0, Math.max(0, 20 - problems.length)));
      log(`round ${round + 1}/${opts.rounds}: killed after ${delay} ms, ${acked} writes acked (${writes.filter((w) => w.outcome === 'acked').length} in all), verify ${verify.code === 0 ? 'clean' : 'FAILED'}, ${check.lost} lost, ${check.altered} altered, ${check.torn} torn`);
      if (round === opts.rounds - 1) {
        return {
          rounds: opts.rounds,
          clients: opts.clients,
          seed: opts.seed,
          ackedWrites: writes.filter((w) => w.outcome === 'acked').length,
          ackedPatches: writes.filter((w) => w.outcome === 'acked' && !Object.hasOwn(w.values, 'init')).length,
          roundsKilledMidPatch,
          unansweredWrites: writes.filter((w) => w.outcome === 'unanswered').length,
          unansweredPresent: check.unansweredPresent,
          lost: check.lost,
          altered: check.altered,
          torn: check.torn,
          verifyClean,
          unexpectedStatus,
          killAfterMs: killAt,
          restartMs,
          writesPerSecond: rates,
          problems,
        };
      }
    }
    throw new Error('rounds must be at least 1');
  } finally {
    await hub.stop('SIGKILL');
    await sandbox.cleanup();
  }
}
