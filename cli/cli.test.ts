/** The real `henge` binary against a real hub process, each in a temp folder. */
import assert from 'node:assert/strict';
import { stat, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createSocket } from 'node:dgram';
import { Level } from 'level';
import { makeSandbox, runCli, startHubProcess } from '../test/helpers/processes.ts';
import type { HubProcess, Sandbox } from '../test/helpers/processes.ts';

const SCHEMA_YAML = `title: thermostat
description: A room thermostat
type: object
properties:
  setpoint: { type: number, minimum: 5, maximum: 30, default: 20 }
  mode: { enum: [off, heat, auto], default: auto }
  label: { type: string, maxLength: 20 }
  led: { type: boolean, default: false }
`;

describe('cli', () => {
  let sb: Sandbox;
  let hub: HubProcess;
  const henge = (...args: string[]) => runCli(sb, args);

  before(async () => {
    sb = await makeSandbox('henge-cli-');
    hub = await startHubProcess(sb);
    await writeFile(join(sb.dir, 'thermo.yaml'), SCHEMA_YAML);
  });

  after(async () => {
    await hub.stop();
    await sb.cleanup();
  });

  test('cli - hub prints its URL and a first-run token, and writes a 0600 CLI config', async () => {
    assert.match(hub.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(hub.token ?? '', /^hgt_[0-9a-f]{16}_/);
    const path = join(sb.dir, 'config', 'henge', 'cli.json');
    const cfg = JSON.parse(await readFile(path, 'utf8')) as { url: string; token: string };
    assert.equal(cfg.url, hub.url);
    assert.equal(cfg.token, hub.token);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });

  test('cli - schema apply from YAML, list and show', async () => {
    const applied = await henge('schema', 'apply', join(sb.dir, 'thermo.yaml'));
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /published schema thermostat v1 \(4 fields\)/);
    const again = await henge('schema', 'apply', join(sb.dir, 'thermo.yaml'));
    assert.match(again.stdout, /unchanged/);
    const list = await henge('--json', 'schema', 'list');
    const schemas = JSON.parse(list.stdout) as Array<{ name: string; version: number }>;
    assert.deepEqual(schemas.map((s) => [s.name, s.version]), [['thermostat', 1]]);
    const show = await henge('schema', 'show', 'thermostat');
    assert.match(show.stdout, /setpoint\s+number\s+20\s+minimum=5 maximum=30/);
  });

  test('cli - device add, list, show, label and rm', async () => {
    const add = await henge('device', 'add', 'kitchen', '-l', 'site=home', '-l', 'floor=1', '-s', 'thermostat', '--set', 'setpoint=21');
    assert.equal(add.code, 0, add.stderr);
    const list = JSON.parse((await henge('--json', 'device', 'list', '--selector', 'site=home')).stdout) as Array<{ id: string; labels: Record<string, string> }>;
    assert.deepEqual(list.map((d) => d.id), ['kitchen']);
    const label = await henge('device', 'label', 'kitchen', 'floor-', 'room=k');
    assert.equal(label.code, 0, label.stderr);
    assert.match(label.stdout, /kitchen: site=home,room=k/);
    const show = await henge('device', 'show', 'kitchen');
    assert.match(show.stdout, /setpoint = 21/);
    assert.match(show.stdout, /schema\s+thermostat/);
    await henge('device', 'add', 'spare');
    assert.equal((await henge('device', 'rm', 'spare')).code, 0);
    assert.equal((await henge('device', 'show', 'spare')).code, 3);
  });

  test('cli - set, unset and get with provenance, at device and group layers', async () => {
    const set = await henge('--reason', 'winter', 'set', 'kitchen', 'setpoint=22.5', 'mode=heat', 'label=123');
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /setpoint: 21 -> 22.5/);
    const group = await henge('set', '--group', 'site=home', '--priority', '5', 'led=true');
    assert.equal(group.code, 0, group.stderr);
    assert.match(group.stderr, /created group site-home/);
    const prov = JSON.parse((await henge('--json', 'get', 'kitchen', '--provenance')).stdout) as {
      values: Record<string, unknown>;
      provenance: Record<string, { layer: string; group?: string }>;
    };
    assert.deepEqual(prov.values, { setpoint: 22.5, mode: 'heat', label: '123', led: true });
    assert.equal(prov.provenance['led']?.group, 'site-home');
    assert.equal(prov.provenance['setpoint']?.layer, 'device');
    const unset = await henge('unset', 'kitchen', 'setpoint');
    assert.equal(unset.code, 0, unset.stderr);
    const get = await henge('get', 'kitchen', '--provenance');
    assert.match(get.stdout, /setpoint\s+20\s+default/);
    const byName = await henge('set', '--group', 'site-home', 'mode=off');
    assert.equal(byName.code, 0, byName.stderr);
  });

  test('cli - history filters by device and key, newest first, with the reason', async () => {
    const r = JSON.parse((await henge('--json', 'history', '--device', 'kitchen', '--key', 'setpoint')).stdout) as {
      events: Array<{ seq: number; reason?: string; data: { changes: Array<{ key: string }> } }>;
    };
    assert.ok(r.events.length >= 3);
    assert.ok(r.events.every((e) => e.data.changes.some((c) => c.key === 'setpoint')));
    assert.ok(r.events.every((e, i, a) => i === 0 || (a[i - 1]?.seq ?? 0) > e.seq));
    assert.ok(r.events.some((e) => e.reason === 'winter'));
    const table = await henge('history', '-n', '2');
    assert.match(table.stdout, /more: --before \d+/);
  });

  test('cli - exit codes mean something', async () => {
    const notFound = await henge('get', 'nope');
    assert.equal(notFound.code, 3);
    assert.match(notFound.stderr, /HENGE_E_NOT_FOUND/);
    const invalid = await henge('set', 'kitchen', 'setpoint=99');
    assert.equal(invalid.code, 4);
    assert.match(invalid.stderr, /values\.setpoint \[maximum\]/);
    const badType = await henge('set', 'kitchen', 'setpoint=warm');
    assert.equal(badType.code, 4);
    const conflict = await henge('device', 'add', 'kitchen');
    assert.equal(conflict.code, 7);
    const usage = await henge('device', 'add');
    assert.equal(usage.code, 2);
    const unauthorized = await henge('--token', 'hgt_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'status');
    assert.equal(unauthorized.code, 5);
    const unreachable = await henge('--url', 'http://127.0.0.1:9', 'status');
    assert.equal(unreachable.code, 6);
    assert.match(unreachable.stderr, /cannot reach the hub/);
  });

  test('cli - tokens: create, use through env, revoke, and a revoked token is refused', async () => {
    const created = await henge('token', 'create', 'ci');
    assert.equal(created.code, 0, created.stderr);
    const token = created.stdout.trim();
    const env = { HENGE_URL: hub.url, HENGE_TOKEN: token, XDG_CONFIG_HOME: join(sb.dir, 'nowhere') };
    const status = await runCli(sb, ['status'], env);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /devices/);
    const list = JSON.parse((await henge('--json', 'token', 'list')).stdout) as Array<{ id: string; name: string }>;
    const id = list.find((t) => t.name === 'ci')?.id ?? '';
    assert.equal((await henge('token', 'revoke', id)).code, 0);
    const refused = await runCli(sb, ['status'], env);
    assert.equal(refused.code, 5);
  });

  test('cli - status and a second hub on the same data folder is refused clearly', async () => {
    const status = await henge('status');
    assert.match(status.stdout, /store healthy/);
    assert.match(status.stdout, /fleet: \d+ converged, \d+ pending, 0 failed; 0 online, \d+ offline/);
    assert.match(status.stdout, /DEVICE\s+SYNC\s+DESIRED\s+APPLIED/);
    const second = await runCli(sb, ['hub', '--data', hub.dataDir, '--port', '0', '--coaps-port', '0', '--no-mdns']);
    assert.equal(second.code, 6);
    assert.match(second.stderr, /in use by another henge process/);
  });

  test('cli - a start that fails on a busy port is a clear error and still leaves the first token to show', async () => {
    const other = await makeSandbox('henge-cli-busy-');
    const sock = createSocket('udp6');
    await new Promise<void>((resolve) => sock.bind(0, '::', () => resolve()));
    try {
      const port = sock.address().port;
      const busy = await runCli(other, ['hub', '--data', join(other.dir, 'data'), '--port', '0', '--coaps-port', String(port), '--no-mdns']);
      assert.equal(busy.code, 6);
      assert.match(busy.stderr, /port \d+ \(EADDRINUSE\)/);
      const ok = await startHubProcess(other);
      assert.match(ok.token ?? '', /^hgt_/, 'the admin token is made and shown on the first start that succeeds');
      await ok.stop();
    } finally {
      sock.close();
      await other.cleanup();
    }
  });

  test('cli - hub --verify is clean after a graceful stop and finds a corrupted view', async () => {
    assert.equal(await hub.stop(), 0);
    const clean = await henge('hub', '--verify', '--data', hub.dataDir);
    assert.equal(clean.code, 0, clean.stdout + clean.stderr);
    assert.match(clean.stdout, /views match the log/);
    const db = new Level<string, string>(join(hub.dataDir, 'store'));
    const device = JSON.parse(await db.get('d!kitchen') ?? '{}') as Record<string, unknown>;
    await db.put('d!kitchen', JSON.stringify({ ...device, name: 'tampered' }));
    await db.close();
    const dirty = await henge('hub', '--verify', '--data', hub.dataDir);
    assert.equal(dirty.code, 8);
    assert.match(dirty.stdout, /different d!kitchen/);
    const restarted = await startHubProcess(sb);
    assert.equal(restarted.token, null, 'no new token on a second start');
    hub = restarted;
  });
});
