/** `henge hub --https` and the CLI against it: real processes, real TLS on 127.0.0.1, each in a temp folder. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HENGE_BIN, makeSandbox, runCli } from '../test/helpers/processes.ts';
import type { Sandbox } from '../test/helpers/processes.ts';

interface HttpsHub {
  readonly url: string;
  readonly fingerprint: string;
  readonly stdout: string;
  stop(): Promise<void>;
}

/** `henge hub` with `args` on free ports and no mDNS, until its banner shows an https API and a fingerprint. */
async function startHttpsHub(sb: Sandbox, args: readonly string[], timeoutMs = 20_000): Promise<HttpsHub> {
  const child = spawn(process.execPath, [HENGE_BIN, 'hub', '--data', join(sb.dir, 'data'), '--port', '0', '--coaps-port', '0', '--no-mdns', '--log-level', 'warn', ...args], {
    env: sb.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const [url, fingerprint] = await new Promise<[string, string]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hub did not start in ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`)), timeoutMs);
    child.stdout.on('data', () => {
      const u = /API:\s+(https:\/\/\S+)/.exec(out)?.[1];
      const f = /TLS:\s+certificate SHA-256 (\S+)/.exec(out)?.[1];
      // The banner is one write; the config file is written before it.
      if (u && f && out.includes('mDNS:')) {
        clearTimeout(timer);
        resolve([u, f]);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`hub exited before starting\nstdout: ${out}\nstderr: ${err}`));
    });
  });
  return {
    url,
    fingerprint,
    get stdout() {
      return out;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
      await exited;
    },
  };
}

describe('https', () => {
  let sb: Sandbox;
  let hub: HttpsHub;
  const configFile = (): string => join(sb.dir, 'config', 'henge', 'cli.json');

  before(async () => {
    sb = await makeSandbox('henge-https-');
    hub = await startHttpsHub(sb, ['--host', '127.0.0.1', '--https']);
  });

  after(async () => {
    await hub.stop();
    await sb.cleanup();
  });

  test('https - henge hub --https prints the certificate fingerprint and writes it to the CLI config', async () => {
    assert.match(hub.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(hub.fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.match(hub.stdout, /self-signed, GENERATED NOW: .*tls\/cert\.pem/);
    const cfg = JSON.parse(await readFile(configFile(), 'utf8')) as { url: string; fingerprint: string };
    assert.equal(cfg.url, hub.url);
    assert.equal(cfg.fingerprint, hub.fingerprint);
    assert.equal((await stat(join(sb.dir, 'data', 'tls', 'key.pem'))).mode & 0o777, 0o600);
  });

  test('https - the CLI on the same machine trusts the hub through its config file', async () => {
    const status = await runCli(sb, ['status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /store healthy/);
    const add = await runCli(sb, ['device', 'add', 'porch']);
    assert.equal(add.code, 0, add.stderr);
    const list = await runCli(sb, ['--json', 'device', 'list']);
    assert.deepEqual((JSON.parse(list.stdout) as Array<{ id: string }>).map((d) => d.id), ['porch']);
  });

  test('https - the CLI refuses a hub whose certificate fingerprint differs', async () => {
    const wrong = '00'.repeat(32);
    const r = await runCli(sb, ['status'], { HENGE_FINGERPRINT: wrong });
    assert.equal(r.code, 6, r.stderr);
    assert.ok(r.stderr.includes(hub.fingerprint), `names the fingerprint seen: ${r.stderr}`);
    assert.match(r.stderr, /not the one pinned by HENGE_FINGERPRINT/);
    assert.match(r.stderr, /nothing was sent/i);
  });

  test('https - without the config file the CLI trusts no self-signed hub, until told with --fingerprint or --ca', async () => {
    const token = (JSON.parse(await readFile(configFile(), 'utf8')) as { token: string }).token;
    const elsewhere = { HENGE_CONFIG: join(sb.dir, 'nowhere.json'), HENGE_URL: hub.url, HENGE_TOKEN: token };
    const untrusted = await runCli(sb, ['status'], elsewhere);
    assert.equal(untrusted.code, 6);
    assert.match(untrusted.stderr, /no system CA vouches for/);
    assert.ok(untrusted.stderr.includes(hub.fingerprint));
    const pinned = await runCli(sb, ['--fingerprint', hub.fingerprint.replaceAll(':', '').toLowerCase(), 'status'], elsewhere);
    assert.equal(pinned.code, 0, pinned.stderr);
    const ca = await runCli(sb, ['--ca', join(sb.dir, 'data', 'tls', 'cert.pem'), 'status'], elsewhere);
    assert.equal(ca.code, 0, ca.stderr);
    const plain = await runCli(sb, ['--url', hub.url.replace('https:', 'http:'), '--fingerprint', hub.fingerprint, 'status'], elsewhere);
    assert.equal(plain.code, 2, 'a pin with a plain http URL is a usage error');
  });

  test('https - a restart keeps the fingerprint, and the CLI config follows the new port', async () => {
    await hub.stop();
    hub = await startHttpsHub(sb, ['--host', '127.0.0.1', '--https']);
    const cfg = JSON.parse(await readFile(configFile(), 'utf8')) as { url: string; fingerprint: string };
    assert.match(hub.stdout, /made on an earlier start/);
    assert.equal(cfg.fingerprint, hub.fingerprint);
    assert.equal(cfg.url, hub.url);
    const status = await runCli(sb, ['status']);
    assert.equal(status.code, 0, status.stderr);
  });
});

describe('https - the hub command line', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await makeSandbox('henge-https-flags-');
  });
  after(async () => {
    await sb.cleanup();
  });

  test('https - plain HTTP beyond loopback is refused without --insecure', async () => {
    const r = await runCli(sb, ['hub', '--data', join(sb.dir, 'data'), '--host', '0.0.0.0', '--no-https', '--port', '0', '--no-mdns']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--no-https on 0\.0\.0\.0: admin tokens would cross the network in clear/);
  });

  test('hub flags - --handshakes-per-address outside 1..256 is refused before anything starts', async () => {
    for (const bad of ['0', '257', 'x']) {
      const r = await runCli(sb, ['hub', '--data', join(sb.dir, 'data-hpa'), '--handshakes-per-address', bad, '--port', '0', '--coaps-port', '0', '--no-mdns']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /--handshakes-per-address must be 1\.\.256/);
    }
  });

  test('https - --tls-cert and --tls-key go together', async () => {
    const r = await runCli(sb, ['hub', '--data', join(sb.dir, 'data'), '--tls-cert', join(sb.dir, 'c.pem'), '--port', '0', '--no-mdns']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--tls-cert and --tls-key go together/);
  });

  test('https - a certificate file that does not exist stops the hub with HENGE_E_TLS_CONFIG', async () => {
    const r = await runCli(sb, ['hub', '--data', join(sb.dir, 'data'), '--tls-cert', join(sb.dir, 'c.pem'), '--tls-key', join(sb.dir, 'k.pem'), '--port', '0', '--coaps-port', '0', '--no-mdns']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /HENGE_E_TLS_CONFIG: the certificate file .*c\.pem does not exist/);
  });
});
