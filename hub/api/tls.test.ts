/** HTTPS for the API: the certificate on disk, a real hub over real TLS sockets on 127.0.0.1, and the CLI's client. */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startHub } from '../hub.ts';
import type { RunningHub } from '../hub.ts';
import { GENERATED_VALIDITY_DAYS, TLS_CONFIG_ERROR, TlsConfigError, fingerprintOf, loadOrCreateCertificate } from './tls.ts';
import { HubClient } from '../../cli/client.ts';
import type { Trust } from '../../cli/client.ts';
import { CliError, ExitCode } from '../../cli/exit.ts';

const FINGERPRINT = /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/;
const DAY_MS = 86_400_000;

let root = '';
const dirs: string[] = [];
async function tempDir(name: string): Promise<string> {
  const d = join(root, `${name}-${dirs.length}`);
  dirs.push(d);
  return d;
}

/** A second, independent pair made in its own folder: what a user would bring with --tls-cert/--tls-key. */
async function pairElsewhere(name: string): Promise<{ certFile: string; keyFile: string; fingerprint: string }> {
  const made = await loadOrCreateCertificate(await tempDir(name));
  return { certFile: made.certFile, keyFile: join(made.certFile, '..', 'key.pem'), fingerprint: made.fingerprint };
}

async function rejectsWithTlsConfig(p: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof TlsConfigError, `a TlsConfigError, got ${String(err)}`);
    assert.equal(err.code, 'HENGE_E_TLS_CONFIG');
    assert.match(err.message, message);
    return true;
  });
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'henge-tls-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('tls - the error code is pinned (a rename is a visible break)', () => {
  assert.equal(TLS_CONFIG_ERROR, 'HENGE_E_TLS_CONFIG');
  assert.equal(new TlsConfigError('x', { file: 'f' }).code, 'HENGE_E_TLS_CONFIG');
});

test('tls - a generated certificate is kept in <data>/tls (folder 0700, key 0600) and keeps its fingerprint across restarts', async () => {
  const data = await tempDir('gen');
  const first = await startHub({ data, port: 0, tls: {} });
  let fingerprint = '';
  try {
    assert.ok(first.tls);
    assert.equal(first.tls.generated, true);
    assert.match(first.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(first.tls.fingerprint, FINGERPRINT);
    assert.equal(first.tls.certFile, join(data, 'tls', 'cert.pem'));
    fingerprint = first.tls.fingerprint;
    assert.equal((await stat(join(data, 'tls'))).mode & 0o777, 0o700);
    assert.equal((await stat(join(data, 'tls', 'key.pem'))).mode & 0o777, 0o600);
    const cert = new X509Certificate(await readFile(first.tls.certFile));
    assert.equal(cert.fingerprint256, fingerprint, 'the fingerprint is the SHA-256 of the certificate on disk');
    assert.equal(cert.publicKey.asymmetricKeyType, 'ec');
    for (const name of ['DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1', `DNS:${hostname()}`]) {
      assert.ok(cert.subjectAltName?.split(', ').includes(name), `${name} in ${cert.subjectAltName ?? ''}`);
    }
    const days = (Date.parse(cert.validTo) - Date.now()) / DAY_MS;
    assert.ok(days > GENERATED_VALIDITY_DAYS - 2 && days <= GENERATED_VALIDITY_DAYS, `valid for about five years, got ${days} days`);
  } finally {
    await first.close();
  }
  const second = await startHub({ data, port: 0, tls: {} });
  try {
    assert.equal(second.tls?.generated, false);
    assert.equal(second.tls?.fingerprint, fingerprint);
  } finally {
    await second.close();
  }
});

test('tls - every generated certificate is valid DER: its serial is positive and minimally encoded', async () => {
  // A serial whose first byte was 0x00 (one in 128) made OpenSSL refuse the whole certificate.
  for (let i = 0; i < 32; i++) {
    const dir = await mkdtemp(join(tmpdir(), 'henge-tls-serial-'));
    try {
      const c = await loadOrCreateCertificate(dir, {});
      const serial = new X509Certificate(c.cert).serialNumber;
      assert.match(serial, /^[4-7][0-9A-F]{31}$/, `serial ${serial}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
});

test('tls - the listen address is among the names of a generated certificate, a wildcard is not', async () => {
  const specific = await loadOrCreateCertificate(await tempDir('names'), { hosts: ['192.0.2.7', 'hub.example'] });
  const names = new X509Certificate(specific.cert).subjectAltName ?? '';
  assert.match(names, /IP Address:192\.0\.2\.7/);
  assert.match(names, /DNS:hub\.example/);
  const wildcard = await loadOrCreateCertificate(await tempDir('names'), { hosts: ['0.0.0.0', '::'] });
  assert.doesNotMatch(new X509Certificate(wildcard.cert).subjectAltName ?? '', /0\.0\.0\.0|IP Address:0:0:0:0:0:0:0:0(,|$)/);
});

test('tls - plain HTTP stays the default: no tls option, no certificate', async () => {
  const data = await tempDir('plain');
  const hub = await startHub({ data, port: 0 });
  try {
    assert.equal(hub.tls, null);
    assert.match(hub.url, /^http:\/\//);
    await assert.rejects(stat(join(data, 'tls')), { code: 'ENOENT' });
  } finally {
    await hub.close();
  }
});

describe('tls - a hub over https and the CLI client', () => {
  let hub: RunningHub;
  let requests = 0;
  let handshakes = 0;
  let connections = 0;
  const client = (trust: Trust, token: string | undefined = hub.firstToken ?? undefined): HubClient => new HubClient({ url: hub.url, token, trust });
  const pinned = (): Trust => ({ kind: 'fingerprint', fingerprint: hub.tls?.fingerprint ?? '', source: 'the test' });

  before(async () => {
    hub = await startHub({ data: await tempDir('https'), port: 0, tls: {} });
    // Counted on the real server: an HTTP request parsed, and a TLS handshake completed.
    hub.app.server.on('request', () => requests++);
    hub.app.server.on('secureConnection', () => handshakes++);
    hub.app.server.on('connection', () => connections++);
  });
  after(async () => {
    await hub.close();
  });

  test('tls - https with the pinned fingerprint works, and later requests reuse the verified connection', async () => {
    const c = client(pinned());
    const h0 = handshakes;
    const status = await c.request<{ hubId: string }>('GET', '/status');
    assert.equal(status.hubId, hub.core.state.meta?.hubId);
    await c.request('GET', '/devices');
    assert.equal(handshakes - h0, 1, 'one handshake for both requests');
  });

  test('tls - https with the hub certificate as CA works', async () => {
    const pem = await readFile(hub.tls?.certFile ?? '', 'utf8');
    const status = await client({ kind: 'ca', pem, source: '--ca cert.pem' }).request<{ hubId: string }>('GET', '/status');
    assert.equal(status.hubId, hub.core.state.meta?.hubId);
  });

  test('tls - a wrong fingerprint is refused after the handshake and before the token is sent', async () => {
    const wrong = 'AB:'.repeat(31) + 'AB';
    const r0 = requests;
    const c0 = connections;
    await assert.rejects(client({ kind: 'fingerprint', fingerprint: wrong, source: '--fingerprint' }).request('GET', '/status'), (err: unknown) => {
      assert.ok(err instanceof CliError);
      assert.equal(err.exitCode, ExitCode.Unavailable);
      assert.ok(err.message.includes(hub.tls?.fingerprint ?? '?'), 'names the fingerprint seen');
      assert.ok(err.message.includes(wrong), 'names the pinned one');
      assert.match(err.message, /nothing was sent/);
      assert.match(err.message, /--fingerprint/);
      return true;
    });
    // The client saw the certificate (the message names it) and hung up at once, possibly before the server
    // even finished its side of the handshake. Give a late request time to show up.
    assert.equal(connections - c0, 1, 'the client connected');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(requests - r0, 0, 'the hub saw no HTTP request, so no token');
    const failed = await client(pinned()).request<{ events: unknown[] }>('GET', '/events?type=auth.failed');
    assert.deepEqual(failed.events, [], 'and audited no failed authentication');
  });

  test('tls - a certificate that no trusted CA vouches for is refused, naming its fingerprint and how to trust it', async () => {
    const r0 = requests;
    await assert.rejects(client({ kind: 'system' }).request('GET', '/status'), (err: unknown) => {
      assert.ok(err instanceof CliError);
      assert.equal(err.exitCode, ExitCode.Unavailable);
      assert.match(err.message, /SELF_SIGNED/);
      assert.ok(err.message.includes(hub.tls?.fingerprint ?? '?'));
      assert.match(err.message, /--fingerprint .*--ca/);
      return true;
    });
    const other = await pairElsewhere('other-ca');
    const pem = await readFile(other.certFile, 'utf8');
    await assert.rejects(client({ kind: 'ca', pem, source: '--ca other.pem' }).request('GET', '/status'), /--ca other\.pem does not vouch for/);
    assert.equal(requests - r0, 0);
  });
});

test('tls - a user-provided certificate and key are used as they are', async () => {
  const pair = await pairElsewhere('provided');
  const data = await tempDir('uses-provided');
  const hub = await startHub({ data, port: 0, tls: { certFile: pair.certFile, keyFile: pair.keyFile } });
  try {
    assert.deepEqual(hub.tls, { fingerprint: pair.fingerprint, certFile: pair.certFile, generated: false });
    await assert.rejects(stat(join(data, 'tls')), { code: 'ENOENT' }, 'nothing generated');
    const c = new HubClient({ url: hub.url, token: hub.firstToken ?? undefined, trust: { kind: 'fingerprint', fingerprint: pair.fingerprint, source: 'the test' } });
    assert.ok(await c.request('GET', '/status'));
  } finally {
    await hub.close();
  }
});

test('tls - a key that is not the certificate\'s is refused with HENGE_E_TLS_CONFIG, and the hub does not start', async () => {
  const a = await pairElsewhere('mismatch-a');
  const b = await pairElsewhere('mismatch-b');
  const data = await tempDir('mismatch');
  await rejectsWithTlsConfig(startHub({ data, port: 0, tls: { certFile: a.certFile, keyFile: b.keyFile } }), /is not the private key of/);
  // Everything it had opened was closed: the same data folder starts at once.
  const hub = await startHub({ data, port: 0 });
  await hub.close();
});

test('tls - a missing file, a file that is not PEM, an expired or not yet valid certificate are refused with HENGE_E_TLS_CONFIG', async () => {
  const pair = await pairElsewhere('bad');
  const data = await tempDir('bad-data');
  const junk = join(root, 'junk.pem');
  await writeFile(junk, 'not a certificate\n');
  await rejectsWithTlsConfig(loadOrCreateCertificate(data, { certFile: join(root, 'nope.pem'), keyFile: pair.keyFile }), /does not exist/);
  await rejectsWithTlsConfig(loadOrCreateCertificate(data, { certFile: junk, keyFile: pair.keyFile }), /not a PEM certificate/);
  await rejectsWithTlsConfig(loadOrCreateCertificate(data, { certFile: pair.certFile, keyFile: junk }), /not a valid PEM private key/);
  await rejectsWithTlsConfig(loadOrCreateCertificate(data, { certFile: pair.certFile }), /go together/);
  const later = new Date(Date.now() + (GENERATED_VALIDITY_DAYS + 1) * DAY_MS);
  await rejectsWithTlsConfig(loadOrCreateCertificate(data, { ...pair, now: later }), /expired on/);
  await rejectsWithTlsConfig(loadOrCreateCertificate(data, { ...pair, now: new Date(Date.now() - 10 * DAY_MS) }), /not valid before/);
  // None of the messages carries the key.
  const key = await readFile(pair.keyFile, 'utf8');
  await assert.rejects(loadOrCreateCertificate(data, { certFile: pair.certFile, keyFile: junk }), (err: Error) => !err.message.includes(key.split('\n')[1] ?? '?'));
});

test('tls - a generated key that others can read is refused; an expired generated certificate is made anew', async () => {
  const data = await tempDir('own');
  const first = await loadOrCreateCertificate(data);
  await chmod(join(data, 'tls', 'key.pem'), 0o644);
  await rejectsWithTlsConfig(loadOrCreateCertificate(data), /can be read by others/);
  await chmod(join(data, 'tls', 'key.pem'), 0o600);
  const later = new Date(Date.now() + (GENERATED_VALIDITY_DAYS + 1) * DAY_MS);
  const renewed = await loadOrCreateCertificate(data, { now: later });
  assert.equal(renewed.generated, true);
  assert.notEqual(renewed.fingerprint, first.fingerprint);
  assert.equal(fingerprintOf(await readFile(renewed.certFile)), renewed.fingerprint);
});

test('tls - a certificate whose key is gone is refused rather than silently replaced', async () => {
  const data = await tempDir('lost-key');
  await loadOrCreateCertificate(data);
  await rm(join(data, 'tls', 'key.pem'));
  await rejectsWithTlsConfig(loadOrCreateCertificate(data), /has no key beside it/);
});
