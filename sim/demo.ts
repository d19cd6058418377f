/**
 * `npm run demo`: a hub (in this process, in a temporary data folder) and 50 simulated devices (`henge
 * sim`, in a separate process), then what to try. Ctrl-C stops both and removes the folder.
 *
 *   npm run demo -- --devices 200
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeConfig } from '../cli/config.ts';
import { DEFAULT_API_PORT, DEFAULT_COAPS_PORT } from '../hub/defaults.ts';
import { startHub } from '../hub/hub.ts';
import type { RunningHub } from '../hub/hub.ts';
import { addDevice, defineGroup, publishSchema } from '../hub/domain/index.ts';
import { openFileLimit, SPARE_FILES } from './limits.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const HENGE = join(ROOT, 'bin/henge.mjs');
const ROOMS = ['kitchen', 'living', 'bedroom', 'office', 'bath'];

const THERMOSTAT = {
  type: 'object',
  description: 'demo thermostat',
  properties: {
    mode: { enum: ['off', 'eco', 'comfort'], default: 'eco' },
    setpoint: { type: 'number', minimum: 5, maximum: 30, default: 20.5 },
    interval: { type: 'integer', minimum: 10, maximum: 3600, default: 60 },
  },
  required: ['mode'],
  additionalProperties: false,
};

function usage(): never {
  process.stderr.write('usage: npm run demo -- [--devices N]   (default 50)\n');
  process.exit(2);
}

async function start(dir: string): Promise<RunningHub> {
  // coaps, as a real hub: every simulated device has its own key (the simulator asks the API for them).
  const opts = (api: number, coaps: number) => ({ data: join(dir, 'hub'), host: '127.0.0.1', port: api, coaps: { port: coaps, host: '127.0.0.1' } });
  try {
    return await startHub(opts(DEFAULT_API_PORT, DEFAULT_COAPS_PORT));
  } catch (err) {
    // The usual ports are taken (a hub is running already?): any free ones will do.
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    await rm(join(dir, 'hub'), { recursive: true, force: true });
    return startHub(opts(0, 0));
  }
}

async function main(): Promise<void> {
  let devices = 50;
  try {
    const { values } = parseArgs({ options: { devices: { type: 'string' } }, strict: true });
    if (values.devices !== undefined) devices = Number(values.devices);
  } catch {
    usage();
  }
  if (!Number.isInteger(devices) || devices < 1 || devices > 20_000) usage();
  const limit = openFileLimit();
  if (limit !== null && devices + SPARE_FILES > limit) {
    process.stderr.write(`${devices} devices need ${devices} sockets; raise the open-file limit first: ulimit -n ${devices + 1024}\n`);
    process.exit(2);
  }

  const dir = await mkdtemp(join(tmpdir(), 'henge-demo-'));
  const hub = await start(dir);
  const token = hub.firstToken ?? '';
  const core = hub.core;
  const ctx = { actor: 'demo', reason: 'npm run demo' };
  await publishSchema(core, ctx, 'thermostat', THERMOSTAT);
  const width = Math.max(3, String(devices).length);
  for (let i = 1; i <= devices; i += 100) {
    const adds: Array<Promise<unknown>> = [];
    for (let j = i; j < Math.min(devices + 1, i + 100); j++) {
      const id = `demo-${String(j).padStart(width, '0')}`;
      adds.push(addDevice(core, ctx, { id, schema: 'thermostat', labels: { floor: String(1 + (j % 2)), room: ROOMS[j % ROOMS.length] ?? 'hall' } }));
    }
    await Promise.all(adds);
  }
  // One device nobody simulates, for trying a CoAP client against.
  await addDevice(core, ctx, { id: 'demo-extra', schema: 'thermostat', labels: { floor: '1', room: 'lab' } });
  await defineGroup(core, ctx, 'upstairs', { selector: 'floor=2', values: { setpoint: 19 } });
  const cliConfig = join(dir, 'cli.json');
  await writeConfig({ url: hub.url, token }, cliConfig);

  const coaps = `127.0.0.1:${String(hub.coapsPort)}`;
  // The device nobody simulates gets a key here, for trying libcoap's client against it.
  const extraKey = hub.keystore ? (await hub.keystore.issue('demo-extra')).key : '';
  const sim = spawn(process.execPath, [HENGE, 'sim', '--devices', String(devices), '--prefix', 'demo-', '--hub', coaps, '--coaps', '--every', '0'], {
    cwd: ROOT,
    // The demo's own hub and token, whatever the shell has set.
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'HENGE_URL' && k !== 'HENGE_TOKEN')), HENGE_CONFIG: cliConfig },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [sim.stdout, sim.stderr]) {
    createInterface({ input: stream }).on('line', (l) => process.stdout.write(`  [sim] ${l}\n`));
  }
  const first = `demo-${'1'.padStart(width, '0')}`;
  const henge = 'node bin/henge.mjs';
  process.stdout.write(
    [
      '',
      `henge demo: a hub and ${devices} simulated devices (${first}..) in a separate process`,
      `  API   ${hub.url}   (OpenAPI docs: ${hub.url}/docs)`,
      `  CoAPS coaps://${coaps}   (DTLS 1.2 PSK: each device has its own key)`,
      `  data  ${dir}   (removed when the demo stops)`,
      '',
      'Try, in another terminal in this folder:',
      `  export HENGE_CONFIG=${cliConfig}     # the demo's URL and admin token`,
      `  ${henge} status                            # every device converged and online`,
      `  ${henge} set --group floor=1 setpoint=22.5  # half the devices get it: see the [sim] line here`,
      `  ${henge} set --group upstairs mode=comfort`,
      `  ${henge} set ${first} mode=off`,
      `  ${henge} get ${first} --provenance           # which layer set each value`,
      `  ${henge} history -n 5`,
      `  coap-client-openssl -u demo-extra -k ${extraKey} -m get -s 60 coaps://${coaps}/d/demo-extra/c`,
      `      (Debian package libcoap3-bin: observe a device nobody simulates, with its key; then`,
      `      ${henge} set demo-extra mode=off   and a notification arrives; the payload is CBOR)`,
      '',
      'Ctrl-C stops the demo.',
      '',
    ].join('\n'),
  );

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('stopping the simulated devices and the hub\n');
    if (sim.exitCode === null) sim.kill('SIGINT');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const code = await new Promise<number | null>((resolve) => sim.once('exit', (c) => resolve(c)));
  if (!stopping) process.stderr.write(`the simulator process ended (exit code ${String(code)}); stopping\n`);
  await hub.close();
  await rm(dir, { recursive: true, force: true });
  process.exitCode = stopping ? 0 : 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
