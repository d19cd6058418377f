/**
 * A real disk failure, not an injected one: the hub runs in a child process whose file-size limit
 * (`ulimit -f`) is tiny, so LevelDB's writes fail with EFBIG once its write-ahead log reaches the limit.
 * Writes must then answer 503 HENGE_E_STORE_UNAVAILABLE, reads must go on, /readyz must say 503, and every
 * write that was answered 2xx must still be there, in the running hub and after a kill -9 and restart.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHub } from '../hub.ts';
import type { RunningHub } from '../hub.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HUB_MODULE = fileURLToPath(new URL('../hub.ts', import.meta.url));
/** 512 blocks of 1 KiB: the write-ahead log hits the limit after a few hundred KiB. */
const FILE_SIZE_LIMIT_BLOCKS = 512;
const VALUE_LENGTH = 4096;

let child: ChildProcess | null = null;
let hub: RunningHub | null = null;
let dir = '';

after(async () => {
  await stopChild();
  await hub?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Ends the child this test started, by its pid, and waits for it to exit. */
async function stopChild(): Promise<void> {
  const c = child;
  child = null;
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.once('exit', () => r()));
  if (c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
  await exited;
}

interface Started {
  readonly url: string;
  readonly token: string;
}

/** Starts the hub under a tiny file-size limit and reads its url and first token from stdout. */
async function startLimitedHub(dataDir: string, script: string): Promise<Started> {
  const c = spawn('bash', ['-c', `trap '' XFSZ; ulimit -f ${FILE_SIZE_LIMIT_BLOCKS}; exec "$0" --import tsx "$1"`, process.execPath, script], {
    cwd: ROOT,
    env: { ...process.env, NODE_NO_WARNINGS: '1', HENGE_TEST_DATA: dataDir, HENGE_TEST_HUB: HUB_MODULE },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = c;
  let out = '';
  let err = '';
  c.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
  return new Promise<Started>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the hub did not start in time; stderr: ${err}`)), 30_000);
    c.stdout?.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.slice(0, nl)) as Started);
      } catch (e) {
        reject(new Error(`unexpected output from the hub: ${out} ${String(e)}`));
      }
    });
    c.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the hub exited early (${code ?? signal}); stderr: ${err}`));
    });
  });
}

interface Res {
  readonly status: number;
  readonly body: { code?: string; message?: string; [k: string]: unknown };
}

async function call(base: Started, method: string, path: string, body?: unknown): Promise<Res> {
  const headers: Record<string, string> = { authorization: `Bearer ${base.token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(base.url + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  return { status: r.status, body: (await r.json()) as Res['body'] };
}

test('disk - a full disk answers 503 HENGE_E_STORE_UNAVAILABLE, reads go on, and every acknowledged write is kept', async (t) => {
  dir = await mkdtemp(join(tmpdir(), 'henge-disk-full-'));
  const dataDir = join(dir, 'data');
  const script = join(dir, 'limited-hub.mjs');
  await writeFile(
    script,
    [
      "const { startHub } = await import(process.env.HENGE_TEST_HUB);",
      "const hub = await startHub({ data: process.env.HENGE_TEST_DATA, port: 0 });",
      "process.stdout.write(JSON.stringify({ url: hub.url, token: hub.firstToken }) + '\\n');",
    ].join('\n'),
  );
  const api = await startLimitedHub(dataDir, script);
  assert.match(api.token, /^hgt_/);

  const created = await call(api, 'POST', '/devices', { id: 'big', labels: { kind: 'test' } });
  assert.equal(created.status, 201);

  // Large values, a few keys in turn, until the disk refuses; bounded so a limit that never bites fails.
  const acknowledged: Record<string, string> = {};
  let refused: Res | null = null;
  let refusedValue = '';
  let okWrites = 0;
  for (let i = 0; i < 400 && !refused; i++) {
    const key = `k${i % 8}`;
    const value = `${i}:`.padEnd(VALUE_LENGTH, String.fromCharCode(97 + (i % 26)));
    const r = await call(api, 'PATCH', '/devices/big/values', { values: { [key]: value } });
    if (r.status >= 200 && r.status < 300) {
      acknowledged[key] = value;
      okWrites++;
    } else {
      refused = r;
      refusedValue = value;
    }
  }
  assert.ok(refused, 'the file-size limit made a write fail within 400 writes');
  t.diagnostic(`${okWrites} writes acknowledged, then ${refused.status}: ${refused.body.message ?? ''}`);
  assert.ok(Object.keys(acknowledged).length > 0, 'some writes went through before the limit');
  assert.equal(refused.status, 503, JSON.stringify(refused.body));
  assert.equal(refused.body.code, 'HENGE_E_STORE_UNAVAILABLE');
  assert.match(refused.body.message ?? '', /refused a write/);
  assert.match(refused.body.message ?? '', /File too large|EFBIG/i, 'the message names the cause');
  assert.match(refused.body.message ?? '', /nothing of this change was kept/);

  // The hub reloads its views from the store after a failed write. A read made before that reload has
  // finished can still show the refused change (see committer.test.ts); wait for it, bounded.
  const metricsText = async (): Promise<string> => (await fetch(`${api.url}/metrics`, { headers: { authorization: `Bearer ${api.token}` } })).text();
  for (let i = 0; i < 200 && !/^henge_view_reloads_total [1-9]/m.test(await metricsText()); i++) await new Promise((r) => setTimeout(r, 10));
  assert.match(await metricsText(), /^henge_view_reloads_total [1-9]/m, 'the views were reloaded after the failed write');

  // Reads still answer, with every acknowledged write and nothing of the refused one.
  const device = await call(api, 'GET', '/devices/big');
  assert.equal(device.status, 200);
  assert.deepEqual((device.body['device'] as { values: Record<string, string> }).values, acknowledged);
  const config = await call(api, 'GET', '/devices/big/config');
  assert.equal(config.status, 200);
  assert.deepEqual(config.body['values'], acknowledged);
  assert.ok(!Object.values(config.body['values'] as Record<string, string>).includes(refusedValue));
  assert.equal((await call(api, 'GET', '/devices')).status, 200);
  assert.equal((await call(api, 'GET', '/events?order=desc&limit=5')).status, 200);

  // The hub is alive but not ready, and says why.
  const health = await fetch(`${api.url}/healthz`);
  assert.equal(health.status, 200);
  const ready = await fetch(`${api.url}/readyz`);
  assert.equal(ready.status, 503);
  const readyBody = (await ready.json()) as { code: string; message: string };
  assert.equal(readyBody.code, 'HENGE_E_STORE_UNAVAILABLE');
  assert.match(readyBody.message, /File too large|EFBIG/i);
  const status = await call(api, 'GET', '/status');
  assert.equal((status.body['store'] as { healthy: boolean }).healthy, false);

  const text = await metricsText();
  assert.match(text, /^henge_writes_total\{result="failed"\} [1-9]/m, 'the failed write is counted');
  assert.match(text, /^henge_store_healthy 0$/m);

  // The disk is still full: the next write is refused the same way.
  const again = await call(api, 'PATCH', '/devices/big/values', { values: { other: 'x'.repeat(VALUE_LENGTH) } });
  assert.equal(again.status, 503);
  assert.equal(again.body.code, 'HENGE_E_STORE_UNAVAILABLE');

  // kill -9, then start on the same folder without the limit: every 2xx write survived.
  await stopChild();
  hub = await startHub({ data: dataDir, port: 0 });
  const token = `Bearer ${api.token}`;
  const restarted = await fetch(`${hub.url}/devices/big`, { headers: { authorization: token } });
  assert.equal(restarted.status, 200);
  assert.deepEqual(((await restarted.json()) as { device: { values: Record<string, string> } }).device.values, acknowledged);
  const after2 = await fetch(`${hub.url}/devices/big/values`, {
    method: 'PATCH',
    headers: { authorization: token, 'content-type': 'application/json' },
    body: JSON.stringify({ values: { k0: 'fine again' } }),
  });
  assert.equal(after2.status, 200, 'with room on the disk, writes work again');
  assert.equal((await fetch(`${hub.url}/readyz`)).status, 200);
});
