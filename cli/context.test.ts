import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { normalizeFingerprint } from './client.ts';
import { resolveTrust } from './context.ts';
import { CliError, ExitCode } from './exit.ts';

const FP = 'A1:70:1E:AF:F5:E8:44:EC:32:A3:DD:3A:0A:2D:0A:35:01:C9:A0:9C:4D:58:BA:10:1B:05:BE:5B:B7:95:F3:05';
const OTHER = '00:'.repeat(31) + '00';
const URL_ = 'https://127.0.0.1:7683';
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
let dir = '';
let caFile = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'henge-trust-'));
  caFile = join(dir, 'ca.pem');
  await writeFile(caFile, PEM);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('trust - a fingerprint is read with or without colons, in any case, and printed as openssl does', () => {
  assert.equal(normalizeFingerprint(FP.replaceAll(':', '').toLowerCase()), FP);
  assert.equal(normalizeFingerprint(`sha256:${FP}`), FP);
  assert.equal(normalizeFingerprint('AB:CD'), null);
  assert.equal(normalizeFingerprint(`${FP}:00`), null);
});

test('trust - order: --ca, HENGE_CA, --fingerprint, HENGE_FINGERPRINT, the CLI config for its own URL, the system CAs', async () => {
  const file = { url: URL_, fingerprint: FP };
  assert.deepEqual(await resolveTrust(URL_, { ca: caFile, fingerprint: OTHER }, { HENGE_CA: 'x', HENGE_FINGERPRINT: OTHER }, file, 'cli.json'), { kind: 'ca', pem: PEM, source: `--ca ${caFile}` });
  assert.equal((await resolveTrust(URL_, { fingerprint: OTHER }, { HENGE_CA: caFile }, file, 'cli.json')).kind, 'ca');
  assert.deepEqual(await resolveTrust(URL_, { fingerprint: OTHER }, { HENGE_FINGERPRINT: FP }, file, 'cli.json'), { kind: 'fingerprint', fingerprint: OTHER, source: '--fingerprint' });
  assert.deepEqual(await resolveTrust(URL_, {}, { HENGE_FINGERPRINT: OTHER }, file, 'cli.json'), { kind: 'fingerprint', fingerprint: OTHER, source: 'HENGE_FINGERPRINT' });
  assert.deepEqual(await resolveTrust(`${URL_}/`, {}, {}, file, 'cli.json'), { kind: 'fingerprint', fingerprint: FP, source: 'the CLI config cli.json' });
  assert.deepEqual(await resolveTrust('https://127.0.0.1:9999', {}, {}, file, 'cli.json'), { kind: 'system' }, 'the stored pin is for its own URL only');
  assert.deepEqual(await resolveTrust(URL_, {}, {}, {}, 'cli.json'), { kind: 'system' });
});

test('trust - a malformed pin, an unreadable CA, or a pin for a plain http URL is a usage error', async () => {
  const usage = (err: unknown): boolean => err instanceof CliError && err.exitCode === ExitCode.Usage;
  await assert.rejects(resolveTrust(URL_, { fingerprint: 'AB:CD' }, {}, {}, 'c'), usage);
  await assert.rejects(resolveTrust(URL_, { ca: join(dir, 'none.pem') }, {}, {}, 'c'), usage);
  await assert.rejects(resolveTrust('http://127.0.0.1:7683', { fingerprint: FP }, {}, {}, 'c'), usage);
  await assert.rejects(resolveTrust('http://127.0.0.1:7683', {}, { HENGE_CA: caFile }, {}, 'c'), usage);
  assert.deepEqual(await resolveTrust('http://127.0.0.1:7683', {}, {}, { url: 'http://127.0.0.1:7683', fingerprint: FP }, 'c'), { kind: 'system' }, 'a stored pin with a plain URL is ignored');
});
