/** One-time enrollment tokens on a real keystore (LevelDB, master key): one use, an expiry, kept sealed. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnrollmentToken } from '../../protocol/enroll.ts';
import { Enrollments } from './enrollment.ts';
import { Keystore } from './keystore.ts';

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function open(): Promise<{ dir: string; ks: Keystore; en: Enrollments }> {
  const dir = await mkdtemp(join(tmpdir(), 'henge-enroll-'));
  dirs.push(dir);
  const ks = await Keystore.open(dir);
  return { dir, ks, en: await Enrollments.load(ks) };
}

test('enrollment - a token is its own PSK until used once; it survives a restart sealed, and used it is gone', async () => {
  const { dir, ks, en } = await open();
  const t = await en.create('lamp');
  const parsed = parseEnrollmentToken(t.token);
  assert.ok(parsed);
  assert.equal(parsed.id, t.id);
  assert.deepEqual(en.pskFor(`enroll.${t.id}`), Buffer.from(parsed.secret, 'ascii'));
  assert.equal(en.pskFor('lamp'), null, 'a device identity is not an enrollment');
  assert.equal(en.pskFor('enroll.0000000000000000'), null);
  await ks.close();
  const files = await readdir(join(dir, 'keys'));
  const raw = Buffer.concat(await Promise.all(files.map((f) => readFile(join(dir, 'keys', f)).catch(() => Buffer.alloc(0)))));
  assert.ok(!raw.includes(Buffer.from(parsed.secret)), 'the secret is sealed at rest');

  const ks2 = await Keystore.open(dir);
  const en2 = await Enrollments.load(ks2);
  assert.deepEqual(en2.pskFor(`enroll.${t.id}`), Buffer.from(parsed.secret, 'ascii'), 'it survives a restart');
  assert.equal(await en2.consume(t.id), 'lamp');
  assert.equal(en2.pskFor(`enroll.${t.id}`), null, 'used once, it is gone');
  assert.equal(await en2.consume(t.id), undefined, 'a second use gets nothing');
  await ks2.close();
  const ks3 = await Keystore.open(dir);
  assert.equal((await Enrollments.load(ks3)).pskFor(`enroll.${t.id}`), null, 'and stays gone after a restart');
  await ks3.close();
});

test('enrollment - an expired token is no PSK and enrolls nothing', async () => {
  const { ks, en } = await open();
  const t = await en.create('lamp', 0.1 / 3600);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(en.pskFor(`enroll.${t.id}`), null);
  assert.equal(await en.consume(t.id), undefined);
  await ks.close();
});

test('enrollment - tokens parse only in their own shape', () => {
  for (const bad of ['', 'hgt_0123456789abcdef_' + 'A'.repeat(43), 'hge_0123456789abcde_' + 'A'.repeat(43), 'hge_0123456789abcdef_' + 'A'.repeat(42)]) {
    assert.equal(parseEnrollmentToken(bad), undefined, bad);
  }
  assert.ok(parseEnrollmentToken(` hge_0123456789abcdef_${'A'.repeat(43)}\n`));
});
